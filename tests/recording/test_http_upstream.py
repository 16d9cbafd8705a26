"""End to end over a real socket: a tiny HTTP upstream on loopback, called through the recorder with httpx."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from respond.errors import UpstreamError
from respond.recording import CHAT_COMPLETION, CHAT_COMPLETION_CHUNK, OutboundRequest, Recorder
from tests.recording.helpers import chunks, completion


class TinyUpstream:
    """Answers POST /v1/chat/completions: JSON, or SSE when the body says stream; counts requests."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> TinyUpstream:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def base_url(self) -> str:
        assert self.server is not None
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}/v1"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line)
        length = int({k.lower(): v for k, v in headers.items()}["content-length"])
        body = json.loads(await reader.readexactly(length))
        self.requests.append(body)
        if body["messages"][-1]["content"] == "overloaded":
            payload = json.dumps({"error": {"message": "overloaded"}}).encode()
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(payload), payload))
        elif body.get("stream"):
            events = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks("over the wire"))
            events += b"data: [DONE]\n\n"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n%s" % (len(events), events))
        else:
            payload = json.dumps(completion("from the socket", ident="chatcmpl-sock")).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n%s" % (len(payload), payload))
        await writer.drain()
        writer.close()


def _request(base_url: str, content: str, stream: bool = False) -> OutboundRequest:
    body = {"model": "m", "messages": [{"role": "user", "content": content}], **({"stream": True} if stream else {})}
    return OutboundRequest("POST", f"{base_url}/chat/completions", "/v1/chat/completions", body,
                           {"Authorization": "Bearer sk-live-key"}, "m")


async def _post(client: httpx.AsyncClient, req: OutboundRequest) -> dict:
    resp = await client.post(req.url, json=req.body, headers=req.headers)
    if resp.status_code >= 400:
        raise UpstreamError(f"upstream answered {resp.status_code}", upstream_status=resp.status_code,
                            body=resp.json())
    return resp.json()


async def _sse(client: httpx.AsyncClient, req: OutboundRequest) -> AsyncIterator[dict]:
    async with client.stream("POST", req.url, json=req.body, headers=req.headers) as resp:
        async for line in resp.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                yield json.loads(line[6:])


async def test_record_over_http_then_replay_with_the_upstream_gone(rec_dir: Path):
    async with httpx.AsyncClient() as client:
        async with TinyUpstream() as upstream:
            base = upstream.base_url
            recorder = Recorder("record", rec_dir)
            req = _request(base, "hello")
            answer = await recorder.call(req, lambda: _post(client, req), CHAT_COMPLETION)
            sreq = _request(base, "stream", stream=True)
            streamed = [c async for c in recorder.stream(sreq, lambda: _sse(client, sreq), CHAT_COMPLETION_CHUNK)]
            ereq = _request(base, "overloaded")
            with pytest.raises(UpstreamError):
                await recorder.call(ereq, lambda: _post(client, ereq), CHAT_COMPLETION)
            assert len(upstream.requests) == 3
        assert answer["choices"][0]["message"]["content"] == "from the socket"
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in streamed) == "overthewire"

        # the upstream is closed now: replay must not need it
        replayer = Recorder("replay", rec_dir)
        assert await replayer.call(req, lambda: _post(client, req), CHAT_COMPLETION) == answer
        assert [c async for c in replayer.stream(sreq, lambda: _sse(client, sreq), CHAT_COMPLETION_CHUNK)] == streamed
        with pytest.raises(UpstreamError) as info:
            await replayer.call(ereq, lambda: _post(client, ereq), CHAT_COMPLETION)
        assert info.value.upstream_status == 503 and info.value.body == {"error": {"message": "overloaded"}}
        for path in rec_dir.glob("*.json"):
            assert "sk-live-key" not in path.read_text()
