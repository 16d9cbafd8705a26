"""The benchmark's load generator: one process, uvloop, raw HTTP/1.1 keep-alive connections.

httpx costs ~100-200 us of CPU per request plus more per streamed chunk; on a 2-core machine that would make
the generator, not the server, the bottleneck at 256 concurrent streams. This client is a minimal
`asyncio.Protocol`: it writes a prebuilt request, parses the status line and headers, decodes a
Content-Length or chunked body incrementally, and timestamps the first text delta (a marker found in the
decoded body) and the end of the body. Validation is cheap byte counting plus one JSON parse per response.

Protocol with the parent (bench/run.py): the spec is a JSON argument; after the warm-up the generator prints
`READY` and waits for a line on stdin, then runs the measured requests and prints one JSON line of results
(per-request total and first-delta latencies in seconds, errors, its own CPU seconds, wall time).
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

REQUEST_TIMEOUT = 120.0

# Markers of the first text delta in a decoded body.
MARKERS = {
    "responses": b"event: response.output_text.delta\n",
    "chat": b'"delta":{"content":"',
}


@dataclass
class Spec:
    host: str
    port: int
    path: str
    body: dict[str, Any]
    api: str  # "responses" | "chat"
    stream: bool
    tokens: int
    concurrency: int
    requests: int
    warmup: int

    @classmethod
    def from_json(cls, raw: str) -> Spec:
        return cls(**orjson.loads(raw))


@dataclass
class Result:
    totals: list[float] = field(default_factory=list)
    firsts: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def error(self, why: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(why)


class ClientProtocol(asyncio.Protocol):
    """One keep-alive connection; one request in flight at a time."""

    def __init__(self, marker: bytes | None) -> None:
        self.marker = marker
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self._reset()

    def _reset(self) -> None:
        self.buf = b""
        self.head_done = False
        self.status = 0
        self.chunked = False
        self.remaining = 0  # content-length bytes left, or bytes left in the current chunk (+2 for CRLF)
        self.body: list[bytes] = []
        self.first: float | None = None
        self.tail = b""
        self.done: asyncio.Future[None] | None = None
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError(f"connection lost: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def request(self, data: bytes) -> asyncio.Future[None]:
        self._reset()
        self.done = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(data)
        return self.done

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        buf = self.buf + data if self.buf else data
        if not self.head_done:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            lines = buf[:end].split(b"\r\n")
            self.status = int(lines[0].split(b" ", 2)[1])
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    self.remaining = int(value.strip())
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    self.chunked = True
                elif name == b"connection" and value.strip().lower() == b"close":
                    self.keep_alive = False
            self.head_done = True
            buf = buf[end + 4:]
        if self.chunked:
            self._chunked(buf, now)
        else:
            self._plain(buf, now)

    def _plain(self, buf: bytes, now: float) -> None:
        self.buf = b""
        if buf:
            self._piece(buf[:self.remaining], now)
            self.remaining -= len(buf)
        if self.remaining <= 0:
            self._finish()

    def _chunked(self, buf: bytes, now: float) -> None:
        pos = 0
        n = len(buf)
        while pos < n:
            if self.remaining > 0:  # inside a chunk: data then CRLF
                take = min(self.remaining, n - pos)
                data_len = max(0, min(take, self.remaining - 2))
                if data_len:
                    self._piece(buf[pos:pos + data_len], now)
                self.remaining -= take
                pos += take
                continue
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            size = int(buf[pos:eol].split(b";", 1)[0], 16)
            if size == 0:  # last chunk: wait for the final CRLF (no trailers)
                if n - (eol + 2) >= 2:
                    self.buf = b""
                    self._finish()
                    return
                break  # keep the size line in buf for the next read
            pos = eol + 2
            self.remaining = size + 2
        self.buf = buf[pos:]

    def _piece(self, piece: bytes, now: float) -> None:
        self.body.append(piece)
        if self.first is None and self.marker is not None:
            window = self.tail + piece
            if self.marker in window:
                self.first = now
            else:
                self.tail = window[-len(self.marker):]

    def _finish(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(None)
        if not self.keep_alive and self.transport is not None:
            self.transport.close()


def build_request(spec: Spec) -> bytes:
    body = orjson.dumps(spec.body)
    return (f"POST {spec.path} HTTP/1.1\r\nhost: {spec.host}:{spec.port}\r\ncontent-type: application/json\r\n"
            f"accept: {'text/event-stream' if spec.stream else 'application/json'}\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


def validate(spec: Spec, status: int, body: bytes) -> str | None:
    """None when the response is what the cell expects, else why not."""
    if status != 200:
        return f"HTTP {status}: {body[:200]!r}"
    n = spec.tokens
    try:
        if spec.api == "responses" and not spec.stream:
            obj = orjson.loads(body)
            if obj.get("status") != "completed":
                return f"status {obj.get('status')}: {obj.get('error')}"
            if (obj.get("usage") or {}).get("output_tokens") != n or not obj["output"][0]["content"][0]["text"]:
                return f"unexpected output/usage: {body[:200]!r}"
        elif spec.api == "chat" and not spec.stream:
            obj = orjson.loads(body)
            if not obj["choices"][0]["message"]["content"] or obj["usage"]["completion_tokens"] != n:
                return f"unexpected completion: {body[:200]!r}"
        elif spec.api == "responses":
            deltas = body.count(MARKERS["responses"])
            if deltas != n:
                return f"{deltas} text deltas, expected {n}"
            last = body.rstrip().rsplit(b"\n\n", 1)[-1]
            if not last.startswith(b"event: response.completed\n"):
                return f"terminal event is not response.completed: {last[:200]!r}"
            data = orjson.loads(last.split(b"\ndata: ", 1)[1])
            if data["response"]["usage"]["output_tokens"] != n:
                return "wrong usage in response.completed"
        else:
            deltas = body.count(MARKERS["chat"])
            if deltas != n:
                return f"{deltas} content chunks, expected {n}"
            if not body.endswith(b"data: [DONE]\n\n"):
                return f"stream did not end with [DONE]: {body[-200:]!r}"
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return f"unparsable body ({exc}): {body[:200]!r}"
    return None


async def run(spec: Spec) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    request = build_request(spec)
    marker = MARKERS[spec.api] if spec.stream else None
    state = {"left": 0}
    result = Result()

    async def connect() -> ClientProtocol:
        _, proto = await loop.create_connection(lambda: ClientProtocol(marker), spec.host, spec.port)
        return proto

    async def worker(conn: ClientProtocol, measure: bool) -> ClientProtocol:
        while state["left"] > 0:
            state["left"] -= 1
            try:
                if conn.transport is None:
                    conn = await connect()
                t0 = time.perf_counter()
                await asyncio.wait_for(conn.request(request), REQUEST_TIMEOUT)
                t1 = time.perf_counter()
            except (OSError, TimeoutError) as exc:
                if measure:
                    result.error(f"{type(exc).__name__}: {exc}")
                if conn.transport is not None:
                    conn.transport.close()
                continue
            if not measure:
                continue
            why = validate(spec, conn.status, b"".join(conn.body))
            if why is not None:
                result.error(why)
                continue
            result.totals.append(t1 - t0)
            if conn.first is not None:
                result.firsts.append(conn.first - t0)
        return conn

    conns = list(await asyncio.gather(*(connect() for _ in range(spec.concurrency))))
    state["left"] = spec.warmup
    conns = list(await asyncio.gather(*(worker(c, False) for c in conns)))
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    await loop.run_in_executor(None, sys.stdin.readline)
    state["left"] = spec.requests
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    conns = list(await asyncio.gather(*(worker(c, True) for c in conns)))
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    return {"totals": result.totals, "firsts": result.firsts, "errors": result.errors,
            "error_samples": result.error_samples, "wall": wall, "cpu": cpu}


def main() -> int:
    spec = Spec.from_json(sys.argv[1])
    cpus = os.environ.get("BENCH_LOADGEN_CPUS")
    if cpus:
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    import uvloop

    out = uvloop.run(run(spec))
    sys.stdout.write(orjson.dumps(out).decode() + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
