"""/v1/models, /v1/chat/completions and /v1/embeddings over HTTP with the official `openai` SDK, against the
real app: the session `server` of tests.support.server, whose providers are the scripted upstream (`up`, models
`scripted` and `scripted-embed`) and the embedded `local`."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.support.server import RunningServer
from tests.support.upstream import cut, error, midstream_error, reply, tool_call

MESSAGES = [{"role": "user", "content": "Say hello"}]


# -- models ------------------------------------------------------------------------------------------------

def test_list_and_retrieve_models(client: openai.OpenAI) -> None:
    models = {m.id: m for m in client.models.list()}
    assert {"up/scripted", "up/scripted-embed", "local/smollm2-135m", "local/all-minilm-l6-v2"} <= set(models)
    assert models["up/scripted"].object == "model" and models["up/scripted"].owned_by == "up"
    assert client.models.retrieve("local/smollm2-135m").id == "local/smollm2-135m"
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("up/nope")
    assert info.value.body["code"] == "model_not_found"


# -- chat completions --------------------------------------------------------------------------------------

def test_chat_non_streamed(client: openai.OpenAI, upstream: Any) -> None:
    upstream.script(reply("Hello", " there"))
    result = client.chat.completions.create(model="up/scripted", messages=MESSAGES, temperature=0.2)
    assert result.choices[0].message.content == "Hello there"
    assert upstream.last_chat == {"model": "scripted", "messages": MESSAGES, "temperature": 0.2}
    assert upstream.requests[-1].headers["authorization"] == "Bearer test-key"


def test_chat_streamed_with_tool_calls(client: openai.OpenAI, upstream: Any) -> None:
    upstream.script(reply("Checking. ", tool_call("get_weather", {"city": "Paris"}, id="call_1"),
                          tool_call("get_time", {"tz": "CET"}, id="call_2"), interleave=True))
    stream = client.chat.completions.create(model="up/scripted", messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True})
    text, calls, finish, usage = "", {}, None, None
    for c in stream:
        if c.usage:
            usage = c.usage
        for choice in c.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
            for tc in choice.delta.tool_calls or []:
                entry = calls.setdefault(tc.index, {"name": "", "arguments": ""})
                entry["name"] += tc.function.name or ""
                entry["arguments"] += tc.function.arguments or ""
    assert text == "Checking. "
    assert calls == {0: {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                     1: {"name": "get_time", "arguments": '{"tz":"CET"}'}}
    assert finish == "tool_calls" and usage is not None and usage.total_tokens > 0
    assert upstream.last_chat["stream"] is True and upstream.last_chat["model"] == "scripted"


def test_chat_unknown_model(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="up/nope", messages=MESSAGES)
    assert info.value.body["code"] == "model_not_found" and info.value.body["param"] == "model"
    assert "Available models:" in info.value.body["message"]


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": MESSAGES}, "model"),
    ({"model": "up/scripted"}, "messages"),
    ({"model": "up/scripted", "messages": []}, "messages"),
    ({"model": "up/scripted", "messages": "hi"}, "messages"),
    ({"model": "local/all-minilm-l6-v2", "messages": MESSAGES}, "model"),
])
def test_chat_invalid_requests(server: RunningServer, body: dict[str, Any], param: str) -> None:
    resp = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=10)
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == param and resp.json()["error"]["type"] == "invalid_request_error"


def test_chat_invalid_json(server: RunningServer) -> None:
    resp = httpx.post(f"{server.base_url}/chat/completions", content=b"{nope", timeout=10,
                      headers={"content-type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_failure_before_first_chunk(client: openai.OpenAI, upstream: Any, stream: bool) -> None:
    upstream.script(error(500, "upstream exploded"))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="up/scripted", messages=MESSAGES, stream=stream)
    assert info.value.status_code == 502 and "upstream exploded" in info.value.body["message"]


def test_upstream_400_passes_through(client: openai.OpenAI, upstream: Any) -> None:
    upstream.script(error(400, "Invalid 'temperature'.", param="temperature", code="invalid_value"))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="up/scripted", messages=MESSAGES, temperature=9)
    assert info.value.body["param"] == "temperature" and "Invalid 'temperature'." in info.value.body["message"]


@pytest.mark.parametrize("turn", [
    midstream_error(reply("par", "tial", " more"), after=3, message="Rate limit reached"),
    cut(reply("par", "tial", " more"), after=3),
])
def test_upstream_failure_mid_stream_is_an_error_frame(server: RunningServer, upstream: Any, turn: Any) -> None:
    upstream.script(turn)
    with httpx.stream("POST", f"{server.base_url}/chat/completions", timeout=10,
                      json={"model": "up/scripted", "messages": MESSAGES, "stream": True}) as resp:
        assert resp.status_code == 200
        frames = [line for line in resp.iter_lines() if line]
    assert frames[-1].startswith('data: {"error":') and "[DONE]" not in "".join(frames)
    assert len(frames) == 4  # role chunk, "par", "tial", then the error frame
    with pytest.raises(openai.APIError):
        upstream.script(turn)
        for _ in server.client().chat.completions.create(model="up/scripted", messages=MESSAGES, stream=True):
            pass


def test_sse_framing(server: RunningServer, upstream: Any) -> None:
    upstream.script(reply("a", "b"))
    with httpx.stream("POST", f"{server.base_url}/chat/completions", timeout=10,
                      json={"model": "up/scripted", "messages": MESSAGES, "stream": True}) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        body = resp.read().decode()
    frames = body.split("\n\n")
    assert frames[-2:] == ["data: [DONE]", ""]
    assert all(f.startswith("data: {") for f in frames[:-2]) and len(frames[:-2]) == 4


async def test_client_disconnect_closes_upstream_stream(server: RunningServer, upstream: Any) -> None:
    upstream.script(reply(*["tok "] * 300, chunk_delay=0.02))
    async with httpx.AsyncClient(timeout=10) as http:
        async with http.stream("POST", f"{server.base_url}/chat/completions",
                               json={"model": "up/scripted", "messages": MESSAGES, "stream": True}) as resp:
            lines = resp.aiter_lines()
            assert (await anext(lines)).startswith("data: {")
    gone = await upstream.wait_disconnected(1, timeout=5)
    assert not gone[0].completed


def test_chat_with_local_model(client: openai.OpenAI) -> None:
    result = client.chat.completions.create(model="local/smollm2-135m", messages=MESSAGES, temperature=0,
                                            max_tokens=5)
    assert result.model == "smollm2-135m" and result.choices[0].message.content
    stream = client.chat.completions.create(model="local/smollm2-135m", messages=MESSAGES, temperature=0,
                                            max_tokens=5, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == \
        result.choices[0].message.content


# -- embeddings --------------------------------------------------------------------------------------------

def test_embeddings_local(client: openai.OpenAI) -> None:
    # The SDK asks for base64 by default and decodes it: this exercises the base64 path end to end.
    result = client.embeddings.create(model="local/all-minilm-l6-v2", input=["hello world", "goodbye"])
    assert [len(d.embedding) for d in result.data] == [384, 384]
    floats = client.embeddings.create(model="local/all-minilm-l6-v2", input="hello world", encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(result.data[0].embedding, abs=1e-5)
    assert result.usage.prompt_tokens > 0


def test_embeddings_upstream(client: openai.OpenAI, upstream: Any) -> None:
    result = client.embeddings.create(model="up/scripted-embed", input="abc", encoding_format="float")
    assert len(result.data[0].embedding) == 8
    assert upstream.embedding_bodies == [{"model": "scripted-embed", "input": "abc", "encoding_format": "float"}]


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "x"}, "model"),
    ({"model": "local/all-minilm-l6-v2"}, "input"),
    ({"model": "local/all-minilm-l6-v2", "input": []}, "input"),
    ({"model": "local/all-minilm-l6-v2", "input": [[1, 2]]}, "input"),
    ({"model": "local/all-minilm-l6-v2", "input": "x", "dimensions": 64}, "dimensions"),
    ({"model": "nope", "input": "x"}, "model"),
])
def test_embeddings_invalid_requests(server: RunningServer, body: dict[str, Any], param: str) -> None:
    resp = httpx.post(f"{server.base_url}/embeddings", json=body, timeout=30)
    assert resp.status_code == 400 and resp.json()["error"]["param"] == param
