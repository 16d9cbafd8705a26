from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from respond.errors import UpstreamError
from respond.inference.base import ModelInfo
from respond.recording import EMBEDDINGS, Recorder, RecordingNotFound
from respond.recording.provider import RecordingProvider
from tests.recording.helpers import chunks, completion, load, recordings


class FakeProvider:
    """The live side of the seam: a provider that answers from memory and counts every call."""

    id = "fake"
    label = "a fake provider"

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.bodies: list[dict[str, Any]] = []
        self.closed = False

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    async def list_models(self) -> list[ModelInfo]:
        self._count("list_models")
        return [ModelInfo(id="tiny-chat", created=1700000000), ModelInfo(id="tiny-embed", kind="embedding")]

    async def chat_completion(self, body: dict[str, Any]) -> dict[str, Any]:
        self._count("chat_completion")
        self.bodies.append(body)
        if body["messages"][-1]["content"] == "fail":
            raise UpstreamError("rate limited", upstream_status=429, code="rate_limit_exceeded")
        return completion("fake answer", ident="chatcmpl-fake1")

    async def chat_completion_stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        self._count("chat_completion_stream")
        self.bodies.append(body)
        for chunk in chunks("streamed fake answer", ident="chatcmpl-fake2"):
            yield copy.deepcopy(chunk)

    async def embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        self._count("embeddings")
        return {"object": "list", "model": body["model"],
                "data": [{"object": "embedding", "index": 0, "embedding": [0.125, -0.5, 0.25]}],
                "usage": {"prompt_tokens": 2, "total_tokens": 2}}

    async def aclose(self) -> None:
        self.closed = True


BASE = "http://fake.test/v1/"


def _chat(content: str) -> dict[str, Any]:
    return {"model": "tiny-chat", "messages": [{"role": "user", "content": content}]}


async def _exercise(provider: RecordingProvider) -> dict[str, Any]:
    models = await provider.list_models()
    chat = await provider.chat_completion(_chat("hi"))
    streamed = [c async for c in provider.chat_completion_stream(_chat("stream it"))]
    emb = await provider.embeddings({"model": "tiny-embed", "input": "hello"})
    return {"models": models, "chat": chat, "streamed": streamed, "emb": emb}


async def test_record_then_replay_through_the_provider(rec_dir: Path):
    inner = FakeProvider()
    recorded = await _exercise(RecordingProvider(inner, Recorder("record", rec_dir), BASE))
    assert inner.calls == {"list_models": 1, "chat_completion": 1, "chat_completion_stream": 1, "embeddings": 1}
    assert recorded["models"] == [ModelInfo(id="tiny-chat", created=1700000000),
                                  ModelInfo(id="tiny-embed", kind="embedding")]
    assert recorded["chat"]["id"].startswith("rec-") and recorded["chat"]["created"] == 0
    assert inner.bodies[1] == _chat("stream it")  # the inner provider gets the caller's body untouched

    files = {load(p)["request"]["endpoint"]: load(p) for p in recordings(rec_dir)}
    assert set(files) == {"/v1/models", "/v1/chat/completions", "/v1/embeddings"}
    emb = files["/v1/embeddings"]
    assert emb["request"]["url"] == "http://fake.test/v1/embeddings" and emb["request"]["model"] == "tiny-embed"
    assert emb["response"]["body"]["__type__"] == EMBEDDINGS
    streams = [load(p) for p in recordings(rec_dir) if load(p)["response"]["is_streaming"]]
    assert streams[0]["request"]["body"]["stream"] is True  # recorded as the wire request

    replay_inner = FakeProvider()
    provider = RecordingProvider(replay_inner, Recorder("replay", rec_dir), BASE)
    replayed = await _exercise(provider)
    assert replayed == recorded
    assert replay_inner.calls == {}
    assert provider.id == "fake" and provider.label == "a fake provider"
    await provider.aclose()
    assert replay_inner.closed

    with pytest.raises(RecordingNotFound, match="/v1/chat/completions"):
        await provider.chat_completion(_chat("never recorded"))


async def test_provider_errors_are_replayed(rec_dir: Path):
    inner = FakeProvider()
    with pytest.raises(UpstreamError, match="rate limited"):
        await RecordingProvider(inner, Recorder("record-if-missing", rec_dir), BASE).chat_completion(_chat("fail"))
    replayer = RecordingProvider(FakeProvider(), Recorder("replay", rec_dir), BASE)
    with pytest.raises(UpstreamError, match="rate limited") as info:
        await replayer.chat_completion(_chat("fail"))
    assert info.value.upstream_status == 429 and info.value.code == "rate_limit_exceeded"
    assert info.value.status_code == 502


async def test_live_mode_provider_is_transparent(rec_dir: Path):
    inner = FakeProvider()
    provider = RecordingProvider(inner, Recorder("live", None), BASE)
    assert (await provider.chat_completion(_chat("hi")))["id"] == "chatcmpl-fake1"
    assert (await provider.list_models())[0] == ModelInfo(id="tiny-chat", created=1700000000)
    assert recordings(rec_dir) == [] and inner.calls == {"chat_completion": 1, "list_models": 1}
