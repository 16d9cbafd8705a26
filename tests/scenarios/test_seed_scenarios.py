"""Issue scenarios driven end to end (server + SDK) with the real gpt-4o seeds as the upstream.

The seeds (../shared/seeds) are real recordings made by another tool. Respond's upstream request differs
from the seeds' in a few fields, each a deliberate choice (see docs/recording.md, "Seeds"):
- respond asks for `stream_options: {"include_usage": true}` so it can report real usage (004, 002 lack it);
- respond sends function tools as the Chat Completions schema defines them: no `type` inside `function`,
  and no `strict: null` when the client did not set strict (002 has both).
The tests first show that the unmodified seed misses with exactly those differences (the miss diagnostics
name them), then replay a copy whose request carries respond's body, response untouched.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import openai
import pytest

from respond.config import ProviderConfig, RecordingConfig
from tests.api.wire import create, post_stream
from tests.support.conformance import validate_stream
from tests.support.upstream import reply

SEEDS = next((p for p in (Path(__file__).resolve().parents[3] / "shared" / "seeds", Path("/work/shared/seeds"))
              if p.is_dir()), Path("/work/shared/seeds"))  # beside the repo; /work/shared from a worktree


def load_seed(prefix: str) -> dict:
    return json.loads(next(SEEDS.glob(f"{prefix}_*.json")).read_text())


def openai_provider(base_url: str = "https://api.openai.com/v1") -> ProviderConfig:
    return ProviderConfig(id="openai", type="openai", base_url=base_url, api_key="sk-never-sent",
                          models=["gpt-4o"], timeout=10)


def respond_body(seed: dict) -> dict:
    """The seed's request body as respond sends it (the documented differences applied)."""
    body = copy.deepcopy(seed["request"]["body"])
    body["stream_options"] = {"include_usage": True}
    for tool in body.get("tools", []):
        tool["function"].pop("type", None)
        if tool["function"].get("strict") is None:
            tool["function"].pop("strict", None)
    return body


def write_adapted(seed: dict, directory: Path, name: str) -> None:
    adapted = copy.deepcopy(seed)
    adapted["request"]["body"] = respond_body(seed)
    (directory / name).write_text(json.dumps(adapted, indent=2) + "\n")


def first_turn_recording(seed: dict) -> dict:
    """Turn 1 of seed 004's chat, rebuilt from the seed itself.

    Seed 004 is the *second* request of its test; its messages carry gpt-4o's real first answer. The first
    request was not kept, so its recording is rebuilt here from that answer (one content chunk), and says so.
    """
    user, assistant = seed["request"]["body"]["messages"][:2]
    chunk = {"id": "rec-turn1", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o-2024-08-06",
             "choices": [{"index": 0, "delta": {"role": "assistant", "content": assistant["content"]},
                          "finish_reason": None, "logprobs": None}]}
    finish = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}]}
    typ = "openai.types.chat.chat_completion_chunk.ChatCompletionChunk"
    return {"test_id": seed["test_id"], "note": "rebuilt from seed 004's history (gpt-4o's real first answer)",
            "request": {**seed["request"], "body": {"model": "gpt-4o", "messages": [user], "stream": True,
                                                    "stream_options": {"include_usage": True}}},
            "response": {"body": [{"__type__": typ, "__data__": chunk}, {"__type__": typ, "__data__": finish}],
                         "is_streaming": True}}


@pytest.fixture
def replay_dir(tmp_path: Path) -> Path:
    path = tmp_path / "recordings"
    path.mkdir()
    return path


def test_seed_004_multi_turn_repeat_in_caps(make_server, replay_dir: Path) -> None:
    seed = load_seed("004")
    shutil.copy(next(SEEDS.glob("004_*.json")), replay_dir)
    (replay_dir / "turn1.json").write_text(json.dumps(first_turn_recording(seed), indent=2))
    server = make_server([openai_provider()], recording=RecordingConfig(mode="replay", dir=str(replay_dir)))
    client = server.client(seed["test_id"])
    question = seed["request"]["body"]["messages"][0]["content"]

    r1 = client.responses.create(model="openai/gpt-4o", input=question)
    assert r1.output_text.startswith("The planet with rings around it")

    # the unmodified seed misses, and the diagnostics name exactly the documented difference
    r2 = client.responses.create(model="openai/gpt-4o", input="Repeat your previous response in all caps.",
                                 previous_response_id=r1.id)
    assert r2.status == "failed"
    assert "stream_options" in r2.error.message and "nearest" in r2.error.message.lower()
    assert "messages" not in r2.error.message  # the history respond rebuilt matches the seed's exactly

    write_adapted(seed, replay_dir, "004_adapted.json")
    r2 = create(client, model="openai/gpt-4o", input="Repeat your previous response in all caps.",
                previous_response_id=r1.id)
    assert r2.status == "completed"
    assert r2.output_text.startswith("THE PLANET WITH RINGS AROUND IT AND A NAME STARTING WITH THE LETTER")
    assert "SATURN" in r2.output_text and r2.output_text == r2.output_text.upper()
    assert [i.type for i in r2.output] == ["message"]


def test_seed_002_parallel_function_calls_then_outputs(make_server, replay_dir: Path, upstream) -> None:
    seed = load_seed("002")
    write_adapted(seed, replay_dir, "002_adapted.json")
    # Turn 1 replays the seed. Turn 2 (the function outputs) was never recorded from gpt-4o, so in
    # record-if-missing mode it goes to a stand-in upstream on loopback and is recorded there.
    upstream.script(reply("Los Angeles is warmer today (22°C) than San Francisco (15°C)."))
    server = make_server([openai_provider(upstream.base_url)],
                         recording=RecordingConfig(mode="record-if-missing", dir=str(replay_dir)))
    user = seed["request"]["body"]["messages"][0]["content"]
    function = seed["request"]["body"]["tools"][0]["function"]
    tools = [{"type": "function", "name": function["name"], "description": function["description"],
              "parameters": function["parameters"]}]

    events = post_stream(server.base_url, {"model": "openai/gpt-4o", "input": user, "tools": tools},
                         test_id=seed["test_id"])
    final = validate_stream(events)
    calls = final["output"]
    assert [c["type"] for c in calls] == ["function_call", "function_call"]
    locations = [json.loads(c["arguments"])["location"] for c in calls]
    assert locations == ["San Francisco, USA", "Los Angeles, USA"]
    assert not upstream.chat_bodies  # turn 1 came from the seed, not the stand-in

    client = server.client(seed["test_id"])
    r2 = client.responses.create(model="openai/gpt-4o", previous_response_id=final["id"], tools=tools, input=[
        {"type": "function_call_output", "call_id": calls[0]["call_id"], "output": "15°C, foggy"},
        {"type": "function_call_output", "call_id": calls[1]["call_id"], "output": "22°C, sunny"}])
    assert r2.status == "completed" and "Los Angeles" in r2.output_text
    sent = upstream.last_chat["messages"]
    assert [c["id"] for c in sent[1]["tool_calls"]] == [c["call_id"] for c in calls]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool"]

    # the stand-in's answer is now a recording: the same conversation replays without any upstream
    replay = make_server([openai_provider("http://127.0.0.1:9/v1")],
                         recording=RecordingConfig(mode="replay", dir=str(replay_dir)))
    again = post_stream(replay.base_url, {"model": "openai/gpt-4o", "input": user, "tools": tools},
                        test_id=seed["test_id"])
    assert validate_stream(again)["output"][1]["arguments"] == calls[1]["arguments"]


def test_replay_needs_no_network_and_no_key(make_server, replay_dir: Path) -> None:
    server = make_server([openai_provider("http://127.0.0.1:9/v1")],
                         recording=RecordingConfig(mode="replay", dir=str(replay_dir)))
    r = server.client("no-such-test").responses.create(model="openai/gpt-4o", input="unrecorded")
    assert r.status == "failed" and "recording" in r.error.message.lower()
    with pytest.raises(openai.NotFoundError):
        server.client().responses.retrieve("resp_nope")
