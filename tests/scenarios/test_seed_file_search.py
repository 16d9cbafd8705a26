"""Seed 000 (a real gpt-4o file_search turn) replayed through Respond's file_search tool.

The seed is the *second* model request of its test: the model had asked `knowledge_search` for "Llama 4
Maverick model number of experts", got two chunks of a PDF, and answered citing the file as
`<|file-9711158333|>`. Respond's own turn differs where it must, so the replayed recordings are built in
two passes and every difference is deliberate:

1. Record pass (record-if-missing, the scripted upstream as gpt-4o): turn 1 is the seed's own tool call
   (same call id and query; the function is Respond's `file_search`); the embedding calls of ingestion
   and search are recorded from the scripted embedding model.
2. The turn-2 recording keeps the request Respond really sent (its search results: our PDF's chunks, our
   file id, our scores) and takes the seed's response unchanged except the cited id: the model cites the
   id it was given, `file-9711158333` there, our file's id here.
3. Replay pass: a fresh server on a fresh data dir, no upstream reachable, same test id (so the same
   deterministic ids): upload, ingest, search and both model turns all come from the recordings, and the
   answer carries a file_citation for the uploaded PDF.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import openai

from respond.config import ProviderConfig, RecordingConfig
from tests.scenarios.test_seed_scenarios import load_seed
from tests.support.retrieval import make_pdf, wait_for_store
from tests.support.upstream import reply, tool_call

SEED_FILE_ID = "file-9711158333"


def providers(upstream_url: str) -> list[ProviderConfig]:
    return [ProviderConfig(id="openai", type="openai", base_url=upstream_url, api_key="sk-never-sent",
                           models=["gpt-4o"], timeout=10),
            ProviderConfig(id="up", type="openai", base_url=upstream_url, api_key="k", models=[],
                           embedding_models=["scripted-embed"], timeout=10)]


def seed_document(seed: dict) -> bytes:
    """A PDF with the seed's document text (the two chunks the seed's search returned)."""
    tool_message = seed["request"]["body"]["messages"][2]
    chunk = tool_message["content"][2]["text"].split("\n", 1)[1]
    text = " ".join(chunk.split())
    return make_pdf([text[i:i + 90] for i in range(0, len(text), 90)])


def cite_as(response: dict, file_id: str) -> dict:
    """The seed's streamed answer with the cited id replaced: the id spans several content deltas, so the
    deltas covering it are merged into the first of them (the others become empty); nothing else changes."""
    response = json.loads(json.dumps(response))
    deltas = [c["__data__"]["choices"][0]["delta"] for c in response["body"] if c["__data__"]["choices"]]
    text = "".join(d.get("content") or "" for d in deltas)
    start = text.index(SEED_FILE_ID)
    end = start + len(SEED_FILE_ID)
    position = 0
    first = None
    for delta in deltas:
        piece = delta.get("content") or ""
        lo, hi = position, position + len(piece)
        position = hi
        if hi <= start or lo >= end or not piece:
            continue
        if first is None:
            first = delta
            delta["content"] = piece[:start - lo] + file_id + (piece[end - lo:] if hi > end else "")
        else:
            delta["content"] = piece[end - lo:] if hi > end else ""
    assert "".join(d.get("content") or "" for d in deltas) == text.replace(SEED_FILE_ID, file_id)
    return response


def run_turn(server, test_id: str, question: str) -> tuple[openai.types.responses.Response, str]:
    client = server.client(test_id)
    file_id = client.files.create(file=("llama_stack_and_models.pdf", seed_document(load_seed("000"))),
                                  purpose="assistants").id
    store = client.vector_stores.create(name="seed-000", file_ids=[file_id],
                                        extra_body={"embedding_model": "up/scripted-embed"})
    assert wait_for_store(client, store.id).file_counts.completed == 1
    response = client.responses.create(model="openai/gpt-4o", input=question,
                                       tools=[{"type": "file_search", "vector_store_ids": [store.id]}])
    return response, file_id


def test_seed_000_file_search_answer_cites_the_file(make_server, tmp_path: Path, upstream) -> None:
    seed = load_seed("000")
    question = seed["request"]["body"]["messages"][0]["content"]
    seed_call = seed["request"]["body"]["messages"][1]["tool_calls"][0]
    query = json.loads(seed_call["function"]["arguments"])["query"]
    recordings = tmp_path / "recordings"
    test_id = seed["test_id"]

    # pass 1: record turn 1 (the seed's tool call) and the embeddings
    upstream.script(reply(tool_call("file_search", {"query": query}, id=seed_call["id"])), reply("placeholder"))
    recorder = make_server(providers(upstream.base_url),
                           recording=RecordingConfig(mode="record-if-missing", dir=str(recordings)))
    first, file_id = run_turn(recorder, test_id, question)
    assert first.output[0].type == "file_search_call" and first.output[0].queries == [query]
    recorder.stop()

    # turn 2: Respond's request, the seed's answer (citing our file id instead of the seed's)
    def is_turn2(path: Path) -> bool:
        messages = json.loads(path.read_text())["request"]["body"].get("messages") or [{}]
        return messages[-1].get("role") == "tool"

    turn2 = [p for p in recordings.glob("*.json") if is_turn2(p)]
    assert len(turn2) == 1
    record = json.loads(turn2[0].read_text())
    sent = record["request"]["body"]
    assert sent["messages"][1]["tool_calls"][0]["id"] == seed_call["id"]
    assert "128 experts" in json.dumps(sent["messages"][2]["content"])  # our search found the seed's fact
    record["response"] = cite_as(seed["response"], file_id)
    turn2[0].write_text(json.dumps(record, indent=2))

    # pass 3: replay everything offline on a fresh server
    replay = make_server(providers("http://127.0.0.1:9/v1"),
                         recording=RecordingConfig(mode="replay", dir=str(recordings)))
    response, replay_file_id = run_turn(replay, test_id, question)
    assert replay_file_id == file_id  # deterministic ids per test id
    assert response.status == "completed", response.error
    call, message = response.output
    assert call.type == "file_search_call" and call.status == "completed" and call.queries == [query]
    text = message.content[0].text
    assert "128 experts" in text and re.search(r"<\|file_\w+\|>", text)
    assert [a.model_dump() for a in message.content[0].annotations] == [
        {"type": "file_citation", "file_id": file_id, "filename": "llama_stack_and_models.pdf",
         "index": text.index("<|")}]
