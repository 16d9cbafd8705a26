"""OpenAICompatProvider against the scripted upstream (real HTTP on loopback)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from typing import Any

import pytest

from respond.config import ProviderConfig
from respond.errors import UpstreamError
from respond.inference.openai_compat import OpenAICompatProvider
from tests.support.upstream import (
    chunk,
    chunks,
    completion,
    cut,
    delay,
    error,
    midstream_error,
    raw_stream,
    refusal,
    reply,
    tool_call,
)

MESSAGES = [{"role": "user", "content": "Say hello"}]


def make_provider(base_url: str, **fields: Any) -> OpenAICompatProvider:
    config = {"id": "up", "type": "openai", "base_url": base_url, "api_key": "sk-test", "timeout": 5.0,
              "models": ["gpt-4o"], **fields}
    return OpenAICompatProvider(ProviderConfig(**config))


@pytest.fixture
async def provider(upstream: Any) -> Any:
    p = make_provider(upstream.base_url)
    yield p
    await p.aclose()


async def collect(provider: OpenAICompatProvider, **body: Any) -> list[dict[str, Any]]:
    return [c async for c in provider.chat_completion_stream({"model": "gpt-4o", "messages": MESSAGES, **body})]


def text_of(chunks_: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks_ if c.get("choices"))


def accumulate_tool_calls(chunks_: list[dict[str, Any]]) -> dict[int, dict[str, str]]:
    calls: dict[int, dict[str, str]] = {}
    for c in chunks_:
        for choice in c.get("choices") or []:
            for tc in choice["delta"].get("tool_calls") or []:
                entry = calls.setdefault(tc["index"], {"id": "", "name": "", "arguments": ""})
                entry["id"] += tc.get("id") or ""
                entry["name"] += (tc.get("function") or {}).get("name") or ""
                entry["arguments"] += (tc.get("function") or {}).get("arguments") or ""
    return calls


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- streaming ---------------------------------------------------------------------------------------------

async def test_text_stream_and_request_sent(provider: Any, upstream: Any) -> None:
    upstream.script(reply("Hel", "lo", " world"))
    got = await collect(provider, temperature=0.5, stream_options={"include_usage": True})
    assert text_of(got) == "Hello world"
    assert got[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0]["finish_reason"] for c in got if c["choices"]][-1] == "stop"
    assert got[-1]["choices"] == [] and got[-1]["usage"]["completion_tokens"] == 3
    sent = upstream.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.body == {"model": "gpt-4o", "messages": MESSAGES, "temperature": 0.5, "stream": True,
                         "stream_options": {"include_usage": True}}


async def test_parallel_tool_call_deltas_interleaved(provider: Any, upstream: Any) -> None:
    upstream.script(reply(tool_call("get_weather", {"city": "Paris", "unit": "celsius"}, id="call_a"),
                          tool_call("get_time", '{"timezone": "Europe/Paris"}', id="call_b"), interleave=True))
    got = await collect(provider)
    # The argument deltas of the two calls really alternate on the wire...
    order = [tc["index"] for c in got for tc in (c["choices"][0]["delta"].get("tool_calls") or [])
             if c["choices"] and not tc.get("id")]
    assert order[:4] == [0, 1, 0, 1]
    # ...and accumulate back into two whole calls.
    calls = accumulate_tool_calls(got)
    assert calls[0]["id"] == "call_a" and calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    assert calls[1]["id"] == "call_b" and json.loads(calls[1]["arguments"]) == {"timezone": "Europe/Paris"}
    assert got[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_refusal_deltas(provider: Any, upstream: Any) -> None:
    upstream.script(reply(refusal("I can't ", "help with that.")))
    got = await collect(provider)
    assert "".join(c["choices"][0]["delta"].get("refusal") or "" for c in got) == "I can't help with that."


async def test_sse_parsing_split_frames_crlf_comments(provider: Any, upstream: Any) -> None:
    c1 = json.dumps(chunk({"role": "assistant", "content": "Hi"}))
    c2 = json.dumps(chunk({"content": " there"}))
    c3 = json.dumps(chunk({}, "stop"))
    upstream.script(raw_stream(
        ": keep-alive comment\n\n",
        f"data: {c1[:10]}", f"{c1[10:]}\r\n\r\n",           # one frame split across two writes, CRLF
        f"event: message\ndata:{c2}\n\n",                   # an event: line, no space after data:
        f"data: {c3}\n\ndata: [DO", "NE]\n\n"))
    got = await collect(provider)
    assert text_of(got) == "Hi there"
    assert len(got) == 3


async def test_final_frame_without_trailing_blank_line(provider: Any, upstream: Any) -> None:
    upstream.script(raw_stream(f"data: {json.dumps(chunk({'content': 'x'}, 'stop'))}\n\ndata: [DONE]"))
    got = await collect(provider)
    assert text_of(got) == "x"


async def test_upstream_that_ignores_stream_flag(provider: Any, upstream: Any) -> None:
    upstream.script(completion({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
                                "choices": [{"index": 0, "finish_reason": "stop",
                                             "message": {"role": "assistant", "content": "whole"}}],
                                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}},
                               as_json=True))
    got = await collect(provider)
    assert text_of(got) == "whole"
    assert got[-1]["usage"]["total_tokens"] == 2


async def test_many_concurrent_streams(provider: Any, upstream: Any) -> None:
    upstream.script(*[reply(*[f"{i}."] * 20, chunk_delay=0.005) for i in range(128)])
    results = await asyncio.gather(*(collect(provider) for _ in range(128)))
    texts = sorted(text_of(r) for r in results)
    assert texts == sorted(f"{i}." * 20 for i in range(128))


# -- non-streamed ------------------------------------------------------------------------------------------

async def test_non_streamed_completion(provider: Any, upstream: Any) -> None:
    upstream.script(reply("Hello", tool_call("lookup", {"q": "x"}, id="call_1")))
    result = await provider.chat_completion({"model": "gpt-4o", "messages": MESSAGES})
    message = result["choices"][0]["message"]
    assert message["content"] == "Hello"
    assert message["tool_calls"][0]["function"] == {"name": "lookup", "arguments": '{"q":"x"}'}
    assert result["usage"]["total_tokens"] > 0
    assert "stream" not in upstream.last_chat


async def test_embeddings(provider: Any, upstream: Any) -> None:
    result = await provider.embeddings({"model": "text-embedding-3-small", "input": ["a", "b"]})
    assert [d["index"] for d in result["data"]] == [0, 1]
    assert len(result["data"][0]["embedding"]) == 8
    assert upstream.embedding_bodies == [{"model": "text-embedding-3-small", "input": ["a", "b"]}]


# -- failures ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True])
async def test_500_is_a_502_upstream_error(provider: Any, upstream: Any, stream: bool) -> None:
    upstream.script(error(500, "The server had an error", code="server_error"))
    with pytest.raises(UpstreamError) as info:
        if stream:
            await collect(provider)
        else:
            await provider.chat_completion({"model": "gpt-4o", "messages": MESSAGES})
    exc = info.value
    assert exc.status_code == 502 and exc.upstream_status == 500
    assert "HTTP 500" in exc.message and "The server had an error" in exc.message


@pytest.mark.parametrize("stream", [False, True])
async def test_400_passes_through(provider: Any, upstream: Any, stream: bool) -> None:
    upstream.script(error(400, "Invalid value for 'temperature'.", param="temperature", code="invalid_value"))
    with pytest.raises(UpstreamError) as info:
        if stream:
            await collect(provider, temperature=9)
        else:
            await provider.chat_completion({"model": "gpt-4o", "messages": MESSAGES, "temperature": 9})
    exc = info.value
    assert exc.status_code == 400 and exc.error_type == "invalid_request_error"
    assert exc.param == "temperature" and exc.code == "invalid_value"
    assert "Invalid value for 'temperature'." in exc.message


async def test_error_with_plain_text_body(provider: Any, upstream: Any) -> None:
    upstream.script(error(503, body="upstream overloaded"))
    with pytest.raises(UpstreamError) as info:
        await collect(provider)
    assert info.value.status_code == 502 and "upstream overloaded" in info.value.message


async def test_vllm_style_error_envelope(provider: Any, upstream: Any) -> None:
    upstream.script(error(404, body={"object": "error", "message": "The model `x` does not exist.",
                                     "type": "NotFoundError", "param": None, "code": 404}))
    with pytest.raises(UpstreamError) as info:
        await provider.chat_completion({"model": "x", "messages": MESSAGES})
    assert info.value.status_code == 404 and "The model `x` does not exist." in info.value.message


async def complete(p: Any, stream: bool) -> Any:
    """One chat completion through the provider, streamed (collected) or not."""
    if stream:
        return await collect(p)
    return await p.chat_completion({"model": "gpt-4o", "messages": MESSAGES})


@pytest.mark.parametrize("stream", [False, True])
async def test_connect_refused(stream: bool) -> None:
    p = make_provider(f"http://127.0.0.1:{closed_port()}/v1")
    try:
        with pytest.raises(UpstreamError) as info:
            await complete(p, stream)
        assert info.value.status_code == 502 and info.value.code == "upstream_unreachable"
    finally:
        await p.aclose()


@pytest.mark.parametrize("stream", [False, True])
async def test_timeout_before_answer(upstream: Any, stream: bool) -> None:
    p = make_provider(upstream.base_url, timeout=0.3)
    upstream.script(delay(1.0, reply("late")))
    started = time.monotonic()
    try:
        with pytest.raises(UpstreamError) as info:
            await complete(p, stream)
    finally:
        await p.aclose()
    assert info.value.code == "upstream_timeout" and info.value.status_code == 502
    assert time.monotonic() - started < 0.9


async def test_timeout_mid_stream(upstream: Any) -> None:
    p = make_provider(upstream.base_url, timeout=0.3)
    upstream.script(reply("a", "b", "c", chunk_delay=1.0))
    got: list[dict[str, Any]] = []
    try:
        with pytest.raises(UpstreamError) as info:
            async for c in p.chat_completion_stream({"model": "gpt-4o", "messages": MESSAGES}):
                got.append(c)
    finally:
        await p.aclose()
    assert info.value.code == "upstream_timeout"
    assert len(got) == 1  # the role chunk came, then nothing within the read timeout


@pytest.mark.parametrize("abort", [True, False])
async def test_stream_cut_mid_way(provider: Any, upstream: Any, abort: bool) -> None:
    upstream.script(cut(reply("one", "two", "three"), after=2, abort=abort))
    got: list[dict[str, Any]] = []
    with pytest.raises(UpstreamError) as info:
        async for c in provider.chat_completion_stream({"model": "gpt-4o", "messages": MESSAGES}):
            got.append(c)
    assert text_of(got) == "one"
    assert info.value.code == "upstream_stream_incomplete" and info.value.status_code == 502


async def test_missing_done_after_finish_reason_is_fine(provider: Any, upstream: Any) -> None:
    upstream.script(chunks([chunk({"role": "assistant", "content": "ok"}), chunk({}, "stop")], done=False))
    assert text_of(await collect(provider)) == "ok"


async def test_error_payload_inside_stream(provider: Any, upstream: Any) -> None:
    upstream.script(midstream_error(reply("partial", " text"), after=2, message="Rate limit reached",
                                    code="rate_limit_exceeded"))
    got: list[dict[str, Any]] = []
    with pytest.raises(UpstreamError) as info:
        async for c in provider.chat_completion_stream({"model": "gpt-4o", "messages": MESSAGES}):
            got.append(c)
    assert text_of(got) == "partial"
    assert "Rate limit reached" in info.value.message and info.value.code == "rate_limit_exceeded"


async def test_invalid_json_event(provider: Any, upstream: Any) -> None:
    upstream.script(raw_stream("data: {not json\n\n"))
    with pytest.raises(UpstreamError) as info:
        await collect(provider)
    assert info.value.code == "upstream_invalid_response"


async def test_early_close_closes_upstream_response(provider: Any, upstream: Any) -> None:
    upstream.script(reply(*["tok "] * 200, chunk_delay=0.02))
    stream = provider.chat_completion_stream({"model": "gpt-4o", "messages": MESSAGES})
    got = [await anext(stream), await anext(stream)]
    await stream.aclose()
    assert text_of(got) == "tok "
    gone = await upstream.wait_disconnected(1, timeout=5)
    assert not gone[0].completed


async def test_connection_reused_after_early_close(provider: Any, upstream: Any) -> None:
    upstream.script(reply(*["x"] * 100, chunk_delay=0.01), reply("next"))
    stream = provider.chat_completion_stream({"model": "gpt-4o", "messages": MESSAGES})
    await anext(stream)
    await stream.aclose()
    assert text_of(await collect(provider)) == "next"


# -- models ------------------------------------------------------------------------------------------------

async def test_configured_models_need_no_request(upstream: Any) -> None:
    p = make_provider(upstream.base_url, models=["a", "b"], embedding_models=["e"])
    try:
        models = await p.list_models()
    finally:
        await p.aclose()
    assert [(m.id, m.kind) for m in models] == [("a", "llm"), ("b", "llm"), ("e", "embedding")]
    assert upstream.requests == []


async def test_model_discovery_is_cached(upstream: Any) -> None:
    upstream.models = ["m1", "text-embedding-3-small"]
    p = make_provider(upstream.base_url, models=None)
    try:
        first = await p.list_models()
        second = await p.list_models()
    finally:
        await p.aclose()
    assert [(m.id, m.kind, m.owned_by) for m in first] == [("m1", "llm", "scripted"),
                                                           ("text-embedding-3-small", "embedding", "scripted")]
    assert second == first
    assert [r.path for r in upstream.requests] == ["/v1/models"]
    assert upstream.requests[0].headers["authorization"] == "Bearer sk-test"


async def test_model_discovery_failure_returns_empty(upstream: Any, caplog: pytest.LogCaptureFixture) -> None:
    upstream.script_models(error(503, "down"))
    p = make_provider(upstream.base_url, models=None, embedding_models=["emb"])
    try:
        with caplog.at_level(logging.WARNING, logger="respond.inference.openai_compat"):
            models = await p.list_models()
    finally:
        await p.aclose()
    assert [(m.id, m.kind) for m in models] == [("emb", "embedding")]
    assert "model discovery" in caplog.text and "down" in caplog.text


async def test_model_discovery_unreachable() -> None:
    p = make_provider(f"http://127.0.0.1:{closed_port()}/v1", models=None)
    try:
        assert await p.list_models() == []
    finally:
        await p.aclose()
