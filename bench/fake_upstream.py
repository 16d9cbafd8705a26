"""A fast fake OpenAI-compatible upstream for the benchmark: `POST /v1/chat/completions` and `GET /v1/models`.

A raw `asyncio.Protocol` HTTP/1.1 server on uvloop (keep-alive, Content-Length request bodies), so that it
costs next to nothing per request and the benchmark measures the server in front of it. Replies are built
once per shape and cached as bytes:

- streamed (`"stream": true`): chunked `text/event-stream` like OpenAI's: a role chunk (`content: ""`), N
  content chunks of one token each, a finish chunk (`finish_reason: "stop"`), a usage chunk when
  `stream_options.include_usage` is set, then `data: [DONE]`. Every SSE event is one HTTP chunk. Chunks
  carry the keys OpenAI sends (`id`, `object`, `created`, `model`, `service_tier`, `system_fingerprint`,
  `choices[{index, delta, logprobs, finish_reason}]`, `usage`, `obfuscation`).
- not streamed: one `ChatCompletion` JSON with the N tokens as the message content.

N is the request's `max_tokens` (or `max_completion_tokens`), default 16. The model always stops by itself at
N tokens (`finish_reason: "stop"`), so a response asked for N tokens completes rather than being cut off.

With `--token-interval-ms X > 0` the tokens of a stream are paced X ms apart (one write per event) instead of
written back to back, to mimic a model producing tokens over time.

Run: `python bench/fake_upstream.py --port 0` prints `PORT <n>` on stdout once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import orjson

MODEL = "fake"
CREATED = 1_735_689_600
WORDS = [b" lorem", b" ipsum", b" dolor", b" sit", b" amet", b" consectetur", b" adipiscing", b" elit"]
DEFAULT_TOKENS = 16
MAX_TOKENS = 100_000


def _chunk(delta: dict, finish_reason: str | None = None, usage: dict | None = None, choices: bool = True,
           include_usage: bool = False) -> dict:
    chunk: dict = {"id": "chatcmpl-bench0000000000000000000000", "object": "chat.completion.chunk",
                   "created": CREATED, "model": MODEL, "service_tier": "default",
                   "system_fingerprint": "fp_bench000",
                   "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
                   if choices else []}
    if include_usage:
        chunk["usage"] = usage
    chunk["obfuscation"] = "aBcDeF"
    return chunk


def _usage(n: int) -> dict:
    return {"prompt_tokens": 12, "completion_tokens": n, "total_tokens": 12 + n,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def _http_chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def stream_frames(n: int, include_usage: bool) -> list[bytes]:
    """The SSE events of a streamed answer of n tokens, each already framed as one HTTP/1.1 chunk."""
    events = [_chunk({"role": "assistant", "content": "", "refusal": None}, include_usage=include_usage)]
    for i in range(n):
        events.append(_chunk({"content": WORDS[i % len(WORDS)].decode()}, include_usage=include_usage))
    events.append(_chunk({}, finish_reason="stop", include_usage=include_usage))
    if include_usage:
        events.append(_chunk({}, choices=False, usage=_usage(n), include_usage=True))
    frames = [_http_chunk(b"data: " + orjson.dumps(e) + b"\n\n") for e in events]
    frames.append(_http_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    return frames


def completion_body(n: int) -> bytes:
    text = b"".join(WORDS[i % len(WORDS)] for i in range(n)).decode()
    return orjson.dumps({
        "id": "chatcmpl-bench0000000000000000000000", "object": "chat.completion", "created": CREATED,
        "model": MODEL, "choices": [{"index": 0, "message": {"role": "assistant", "content": text,
                                                             "refusal": None, "annotations": []},
                                     "logprobs": None, "finish_reason": "stop"}],
        "usage": _usage(n), "service_tier": "default", "system_fingerprint": "fp_bench000"})


STREAM_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
               b"transfer-encoding: chunked\r\ncache-control: no-cache\r\n\r\n")


def json_reply(status: int, body: bytes, close: bool = False) -> bytes:
    reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 411: b"Length Required"}.get(status, b"Error")
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s"
            % (status, reason, len(body), b"connection: close\r\n" if close else b"", body))


def error_reply(status: int, message: str, close: bool = False) -> bytes:
    return json_reply(status, orjson.dumps({"error": {"message": message, "type": "invalid_request_error",
                                                      "param": None, "code": None}}), close)


MODELS_REPLY = json_reply(200, orjson.dumps({"object": "list", "data": [
    {"id": MODEL, "object": "model", "created": CREATED, "owned_by": "bench"}]}))


class Replies:
    """Cached reply bytes per (tokens, stream, include_usage)."""

    def __init__(self) -> None:
        self._streams: dict[tuple[int, bool], list[bytes]] = {}
        self._joined: dict[tuple[int, bool], bytes] = {}
        self._completions: dict[int, bytes] = {}

    def stream(self, n: int, include_usage: bool) -> list[bytes]:
        key = (n, include_usage)
        frames = self._streams.get(key)
        if frames is None:
            frames = self._streams[key] = stream_frames(n, include_usage)
        return frames

    def stream_joined(self, n: int, include_usage: bool) -> bytes:
        key = (n, include_usage)
        data = self._joined.get(key)
        if data is None:
            data = self._joined[key] = STREAM_HEAD + b"".join(self.stream(n, include_usage))
        return data

    def completion(self, n: int) -> bytes:
        data = self._completions.get(n)
        if data is None:
            data = self._completions[n] = json_reply(200, completion_body(n))
        return data


class UpstreamProtocol(asyncio.Protocol):
    def __init__(self, replies: Replies, interval: float) -> None:
        self.replies = replies
        self.interval = interval
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a paced stream is being written: later pipelined requests wait in buf

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf = self.buf + data if self.buf else data
        if not self.busy:
            self._process()

    def _process(self) -> None:
        while self.transport is not None and not self.busy:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end]
            lines = head.split(b"\r\n")
            try:
                method, path, _ = lines[0].split(b" ", 2)
            except ValueError:
                self._fail(400, "bad request line")
                return
            length = 0
            close = False
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value.strip())
                elif name == b"transfer-encoding":
                    self._fail(411, "chunked request bodies are not supported")
                    return
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            total = end + 4 + length
            if len(self.buf) < total:
                return
            body = self.buf[end + 4:total]
            self.buf = self.buf[total:]
            self._handle(method, path, body, close)

    def _fail(self, status: int, message: str) -> None:
        assert self.transport is not None
        self.transport.write(error_reply(status, message, close=True))
        self.transport.close()

    def _handle(self, method: bytes, path: bytes, body: bytes, close: bool) -> None:
        transport = self.transport
        assert transport is not None
        path = path.split(b"?", 1)[0]
        if method == b"GET" and path == b"/v1/models":
            transport.write(MODELS_REPLY)
        elif method == b"POST" and path == b"/v1/chat/completions":
            try:
                req = orjson.loads(body)
                n = int(req.get("max_tokens") or req.get("max_completion_tokens") or DEFAULT_TOKENS)
            except (ValueError, TypeError, AttributeError):
                transport.write(error_reply(400, "invalid JSON body"))
            else:
                n = max(1, min(n, MAX_TOKENS))
                if req.get("stream"):
                    include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
                    if self.interval > 0:
                        self.busy = True
                        asyncio.ensure_future(self._paced(self.replies.stream(n, include_usage), close))
                        return
                    transport.write(self.replies.stream_joined(n, include_usage))
                else:
                    transport.write(self.replies.completion(n))
        else:
            transport.write(error_reply(404, f"no route for {method.decode()} {path.decode()}"))
        if close:
            transport.close()

    async def _paced(self, frames: list[bytes], close: bool) -> None:
        transport = self.transport
        if transport is None:
            return
        transport.write(STREAM_HEAD + frames[0])
        for frame in frames[1:]:
            await asyncio.sleep(self.interval)
            if self.transport is None:
                return
            transport.write(frame)
        self.busy = False
        if close:
            transport.close()
        elif self.buf:
            self._process()


async def serve(host: str, port: int, interval: float) -> None:
    replies = Replies()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: UpstreamProtocol(replies, interval), host, port, backlog=4096,
                                      reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"PORT {bound}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed as 'PORT n')")
    parser.add_argument("--token-interval-ms", type=float, default=0.0,
                        help="pace streamed tokens this many ms apart (default 0: back to back)")
    parser.add_argument("--cpu", type=int, action="append", help="pin to this CPU (repeatable)")
    args = parser.parse_args(argv)
    if args.cpu:
        os.sched_setaffinity(0, set(args.cpu))
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        uvloop = None
    runner = uvloop.run if uvloop is not None else asyncio.run
    try:
        runner(serve(args.host, args.port, args.token_interval_ms / 1000.0))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
