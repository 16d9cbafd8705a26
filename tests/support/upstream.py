"""A scripted OpenAI-compatible upstream on loopback, for tests (pytest plugin; fixture `upstream`).

A real HTTP server (uvicorn + a small Starlette app, in a background thread, on a random 127.0.0.1 port)
serving `/v1/chat/completions` (streamed and not), `/v1/embeddings` and `/v1/models`. One server per test
session (fixture `upstream`, session-scoped, so session fixtures can point a server at it; the underlying
`upstream_server` fixture owns the thread); an autouse fixture resets the script, the request log and the
model list before every test.

Point a provider at `upstream.base_url` ("http://127.0.0.1:PORT/v1") and script what it answers::

    from tests.support.upstream import reply, tool_call, error, cut, delay, chunks, midstream_error

    def test_something(upstream):
        upstream.script(
            reply("Hel", "lo"),                                   # turn 1: text, streamed as 2 deltas
            reply(tool_call("get_weather", {"city": "Paris"}),    # turn 2: two parallel tool calls,
                  tool_call("get_time", '{"tz": "UTC"}'),         #   argument deltas interleaved
                  interleave=True),
            error(500, "boom"),                                   # turn 3: HTTP 500 + OpenAI envelope
        )
        ... run the code under test ...
        assert upstream.chat_bodies[0]["model"] == "gpt-4o"      # what respond sent
        assert upstream.requests[-1].path == "/v1/chat/completions"

Each chat request pops the next scripted turn (FIFO). When the script is empty the upstream answers with a
default echo reply: "echo: <text of the last user message>" (streamed word by word when `stream` is set).

Turns (all work for both streamed and non-streamed requests unless said otherwise):

- `reply(*parts, finish_reason=None, usage=None, model=None, id=None, interleave=False, chunk_delay=0,
  role_chunk=True)`: an assistant turn. `parts` are text pieces (str), `tool_call(...)` and `refusal(...)`
  parts, in order. Streamed: a role chunk, one chunk per text / refusal piece, tool calls as OpenAI sends
  them (a header chunk with id+name, then argument pieces; with `interleave=True` the argument pieces of
  parallel calls alternate across chunks), a finish chunk (`stop`, or `tool_calls` when there are calls),
  then a usage chunk when the request asked `stream_options.include_usage`, then `[DONE]`. Not streamed:
  the same turn as one `ChatCompletion`.
- `tool_call(name, arguments, id=None, pieces=None)`: `arguments` is a str, or a dict (JSON-encoded);
  streamed in pieces of 8 characters, or exactly the given `pieces` (a list of str).
- `refusal(*pieces)`: refusal deltas (`message.refusal` when not streamed).
- `completion(dict, as_json=False)`: a full `ChatCompletion` dict returned verbatim (streamed: turned into
  chunks, or sent as plain JSON with `as_json=True`, like an upstream that ignores `stream`).
- `raw_stream(*pieces, piece_delay=0.01)`: exactly these bytes as the SSE body, one write per piece.
- `chunks(list_of_chunk_dicts, done=True)`: exactly these chunk dicts as SSE frames (streamed requests only),
  then `[DONE]` unless `done=False`. Build chunks with `chunk(delta, finish_reason=..., usage=...)`.
- `error(status, message="...", type=None, code=None, param=None, body=None)`: an HTTP error; the body is
  the OpenAI envelope unless `body` (a dict, or a str sent as text/plain) is given.
- `cut(turn, after=N, abort=True)`: stream only the first N frames of `turn` (a `reply`/`chunks`), then drop
  the TCP connection mid-body (`abort=True`) or end the body cleanly without `[DONE]` (`abort=False`).
- `midstream_error(turn, after=N, message="...", code=None)`: N frames, then a `data: {"error": {...}}` frame.
- `delay(seconds, turn=None)`: wait, then answer with `turn` (or the default echo reply).
- a callable `fn(body) -> turn`: decided from the request body.

Embeddings: `upstream.script_embeddings(*turns)` with `error(...)`, `delay(...)` or a full response dict;
unscripted, it answers deterministic vectors (8 floats, or `dimensions`) derived from each input's hash.
Models: `upstream.models` (list of ids, default `["gpt-4o", "gpt-4o-mini", "text-embedding-3-small"]`)
is what `/v1/models` lists; `upstream.script_models(error(503))` fails the next listing.

Inspection: `upstream.requests` (every `RecordedRequest(method, path, headers, body, disconnected)`),
`upstream.chat_bodies` / `upstream.embedding_bodies` (the JSON bodies), `upstream.last_chat`,
`upstream.pending()` (unconsumed chat turns), `upstream.assert_consumed()`, and
`await upstream.wait_disconnected(n=1)` (a streaming client went away before the stream ended).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

DEFAULT_MODELS = ["gpt-4o", "gpt-4o-mini", "text-embedding-3-small"]
ARG_PIECE = 8


# -- parts and turns -------------------------------------------------------------------------------------

@dataclass
class ToolCallPart:
    name: str
    arguments: str
    id: str
    pieces: list[str]


@dataclass
class RefusalPart:
    pieces: list[str]


_call_counter = [0]  # reset per test (ScriptedUpstream.reset) so default call ids are deterministic


def _next_call_id() -> str:
    _call_counter[0] += 1
    return f"call_scripted{_call_counter[0]:04d}"


def tool_call(name: str, arguments: str | dict[str, Any] = "{}", id: str | None = None,
              pieces: list[str] | None = None) -> ToolCallPart:
    args = arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()
    if pieces is None:
        pieces = [args[i:i + ARG_PIECE] for i in range(0, len(args), ARG_PIECE)] or [""]
    elif "".join(pieces) != args:
        args = "".join(pieces)
    return ToolCallPart(name=name, arguments=args, id=id or _next_call_id(), pieces=pieces)


def refusal(*pieces: str) -> RefusalPart:
    return RefusalPart(list(pieces))


def chunk(delta: dict[str, Any] | None = None, finish_reason: str | None = None, *, usage: dict[str, Any] | None = None,
          id: str = "chatcmpl-scripted", model: str = "gpt-4o", index: int = 0, created: int = 1700000000,
          no_choices: bool = False) -> dict[str, Any]:
    """One `ChatCompletionChunk` dict. `no_choices=True` (or a `usage` without delta) gives a usage-only chunk."""
    out: dict[str, Any] = {"id": id, "object": "chat.completion.chunk", "created": created, "model": model}
    if no_choices or (usage is not None and delta is None and finish_reason is None):
        out["choices"] = []
    else:
        out["choices"] = [{"index": index, "delta": delta or {}, "logprobs": None, "finish_reason": finish_reason}]
    if usage is not None:
        out["usage"] = usage
    return out


@dataclass
class Reply:
    parts: list[str | ToolCallPart | RefusalPart]
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    model: str | None = None
    id: str | None = None
    interleave: bool = False
    chunk_delay: float = 0.0
    role_chunk: bool = True

    def _finish(self) -> str:
        if self.finish_reason:
            return self.finish_reason
        return "tool_calls" if any(isinstance(p, ToolCallPart) for p in self.parts) else "stop"

    def _usage(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.usage is not None:
            return self.usage
        prompt = sum(len(str(m.get("content") or "").split()) + 3 for m in body.get("messages") or [])
        completion_tokens = sum(
            len(p.pieces) + 2 if isinstance(p, ToolCallPart) else len(p.pieces) if isinstance(p, RefusalPart) else 1
            for p in self.parts)
        return {"prompt_tokens": prompt, "completion_tokens": completion_tokens,
                "total_tokens": prompt + completion_tokens}

    def chunks(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        kw = {"id": self.id or "chatcmpl-scripted", "model": self.model or body.get("model") or "gpt-4o"}
        out: list[dict[str, Any]] = []
        if self.role_chunk:
            out.append(chunk({"role": "assistant", "content": "", "refusal": None}, **kw))
        calls = [p for p in self.parts if isinstance(p, ToolCallPart)]
        call_index = {id(c): i for i, c in enumerate(calls)}
        pending_calls: list[ToolCallPart] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(chunk({"content": part}, **kw))
            elif isinstance(part, RefusalPart):
                out.extend(chunk({"refusal": p}, **kw) for p in part.pieces)
            elif self.interleave:
                pending_calls.append(part)
            else:
                out.extend(self._call_chunks([part], call_index, kw))
        if pending_calls:
            out.extend(self._call_chunks(pending_calls, call_index, kw))
        out.append(chunk({}, self._finish(), **kw))
        if (body.get("stream_options") or {}).get("include_usage"):
            out.append(chunk(usage=self._usage(body), no_choices=True, **kw))
        return out

    @staticmethod
    def _call_chunks(calls: list[ToolCallPart], index: dict[int, int], kw: dict[str, Any]) -> list[dict[str, Any]]:
        out = [chunk({"tool_calls": [{"index": index[id(c)], "id": c.id, "type": "function",
                                      "function": {"name": c.name, "arguments": ""}}]}, **kw) for c in calls]
        for step in range(max(len(c.pieces) for c in calls)):
            for c in calls:
                if step < len(c.pieces):
                    out.append(chunk({"tool_calls": [{"index": index[id(c)],
                                                      "function": {"arguments": c.pieces[step]}}]}, **kw))
        return out

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        text = "".join(p for p in self.parts if isinstance(p, str))
        refusals = "".join("".join(p.pieces) for p in self.parts if isinstance(p, RefusalPart))
        calls = [p for p in self.parts if isinstance(p, ToolCallPart)]
        message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": refusals or None}
        if calls:
            message["tool_calls"] = [{"id": c.id, "type": "function",
                                      "function": {"name": c.name, "arguments": c.arguments}} for c in calls]
        return {"id": self.id or "chatcmpl-scripted", "object": "chat.completion", "created": 1700000000,
                "model": self.model or body.get("model") or "gpt-4o",
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": self._finish()}],
                "usage": self._usage(body)}


def reply(*parts: str | ToolCallPart | RefusalPart, finish_reason: str | None = None,
          usage: dict[str, Any] | None = None, model: str | None = None, id: str | None = None,
          interleave: bool = False, chunk_delay: float = 0.0, role_chunk: bool = True) -> Reply:
    return Reply(list(parts), finish_reason=finish_reason, usage=usage, model=model, id=id, interleave=interleave,
                 chunk_delay=chunk_delay, role_chunk=role_chunk)


@dataclass
class Completion:
    body: dict[str, Any]
    as_json: bool = False


def completion(body: dict[str, Any], as_json: bool = False) -> Completion:
    """A full ChatCompletion. Streamed requests get it as chunks, or as plain JSON with `as_json=True`
    (an upstream that ignores `stream: true`)."""
    return Completion(body, as_json)


@dataclass
class RawStream:
    pieces: list[bytes]
    piece_delay: float = 0.01


def raw_stream(*pieces: bytes | str, piece_delay: float = 0.01) -> RawStream:
    """Exactly these bytes as the event-stream body, one write per piece (`piece_delay` apart), for testing
    SSE parsing: frames split across writes, CRLF line ends, comments, `event:` lines..."""
    return RawStream([p.encode() if isinstance(p, str) else p for p in pieces], piece_delay)


@dataclass
class Chunks:
    items: list[dict[str, Any]]
    done: bool = True
    chunk_delay: float = 0.0


def chunks(items: list[dict[str, Any]], done: bool = True, chunk_delay: float = 0.0) -> Chunks:
    return Chunks(list(items), done=done, chunk_delay=chunk_delay)


@dataclass
class HTTPError:
    status: int
    body: dict[str, Any] | str


def error(status: int, message: str = "scripted upstream error", type: str | None = None, code: str | None = None,
          param: str | None = None, body: dict[str, Any] | str | None = None) -> HTTPError:
    if body is None:
        etype = type or ("invalid_request_error" if 400 <= status < 500 else "server_error")
        body = {"error": {"message": message, "type": etype, "param": param, "code": code}}
    return HTTPError(status, body)


@dataclass
class Cut:
    turn: Reply | Chunks
    after: int
    abort: bool = True


def cut(turn: Reply | Chunks, after: int, abort: bool = True) -> Cut:
    return Cut(turn, after, abort)


@dataclass
class MidstreamError:
    turn: Reply | Chunks
    after: int
    error: dict[str, Any]


def midstream_error(turn: Reply | Chunks, after: int, message: str = "scripted mid-stream error",
                    code: str | None = None, type: str = "server_error") -> MidstreamError:
    return MidstreamError(turn, after, {"message": message, "type": type, "param": None, "code": code})


@dataclass
class Delay:
    seconds: float
    turn: Any = None


def delay(seconds: float, turn: Any = None) -> Delay:
    return Delay(seconds, turn)


# -- the server -----------------------------------------------------------------------------------------

@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    disconnected: bool = False  # the client went away before a streamed answer ended
    completed: bool = False  # the whole answer was sent


class _CutConnection(Exception):
    """Raised inside a streaming body to make uvicorn drop the connection mid-body."""


class _QuietCut(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, _CutConnection):
                return False
            if isinstance(exc, BaseExceptionGroup):
                if any(isinstance(e, _CutConnection) for e in exc.exceptions):
                    return False
            exc = exc.__cause__ or exc.__context__
        return True


def _frame(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _last_user_text(body: dict[str, Any]) -> str:
    for msg in reversed(body.get("messages") or []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _fake_vector(text: str, dims: int) -> list[float]:
    raw = b""
    counter = 0
    while len(raw) < dims * 4:
        raw += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    ints = struct.unpack(f"<{dims}I", raw[:dims * 4])
    vec = [(i / 0xFFFFFFFF) * 2 - 1 for i in ints]
    norm = sum(v * v for v in vec) ** 0.5 or 1.0
    return [v / norm for v in vec]


class ScriptedUpstream:
    """The scripted upstream's state and control API (see the module docstring)."""

    def __init__(self) -> None:
        self.base_url = ""
        self._lock = threading.Lock()
        self._chat: collections.deque[Any] = collections.deque()
        self._embeddings: collections.deque[Any] = collections.deque()
        self._models_turns: collections.deque[Any] = collections.deque()
        self.models: list[str] = list(DEFAULT_MODELS)
        self.requests: list[RecordedRequest] = []
        self.app = Starlette(routes=[
            Route("/v1/chat/completions", self._chat_endpoint, methods=["POST"]),
            Route("/v1/embeddings", self._embeddings_endpoint, methods=["POST"]),
            Route("/v1/models", self._models_endpoint, methods=["GET"]),
            Route("/v1/models/{model_id:path}", self._model_endpoint, methods=["GET"]),
        ])

    # -- control --------------------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._chat.clear()
            self._embeddings.clear()
            self._models_turns.clear()
            self.models = list(DEFAULT_MODELS)
            self.requests = []
        _call_counter[0] = 0

    def script(self, *turns: Any) -> ScriptedUpstream:
        """Queue chat-completion turns (FIFO). Also accepts one list of turns."""
        if len(turns) == 1 and isinstance(turns[0], list):
            turns = tuple(turns[0])
        with self._lock:
            self._chat.extend(turns)
        return self

    def script_embeddings(self, *turns: Any) -> ScriptedUpstream:
        with self._lock:
            self._embeddings.extend(turns)
        return self

    def script_models(self, *turns: Any) -> ScriptedUpstream:
        with self._lock:
            self._models_turns.extend(turns)
        return self

    def pending(self) -> int:
        return len(self._chat)

    def assert_consumed(self) -> None:
        assert not self._chat, f"{len(self._chat)} scripted chat turn(s) were never requested: {list(self._chat)!r}"

    @property
    def chat_bodies(self) -> list[dict[str, Any]]:
        return [r.body for r in list(self.requests) if r.path.endswith("/chat/completions")]

    @property
    def embedding_bodies(self) -> list[dict[str, Any]]:
        return [r.body for r in list(self.requests) if r.path.endswith("/embeddings")]

    @property
    def last_chat(self) -> dict[str, Any]:
        bodies = self.chat_bodies
        assert bodies, "the upstream received no chat completion request"
        return bodies[-1]

    async def wait_disconnected(self, n: int = 1, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until `n` requests saw their client go away mid-stream; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            gone = [r for r in list(self.requests) if r.disconnected]
            if len(gone) >= n:
                return gone
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {n} client disconnect(s), saw {len(gone)}")
            await asyncio.sleep(0.02)

    def _pop(self, queue: collections.deque[Any]) -> Any:
        with self._lock:
            return queue.popleft() if queue else None

    async def _record(self, request: Request) -> RecordedRequest:
        raw = await request.body()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        rec = RecordedRequest(request.method, request.url.path, dict(request.headers), body)
        with self._lock:
            self.requests.append(rec)
        return rec

    # -- endpoints ------------------------------------------------------------------------------------

    async def _chat_endpoint(self, request: Request) -> Response:
        rec = await self._record(request)
        body = rec.body if isinstance(rec.body, dict) else {}
        turn = self._pop(self._chat)
        return await self._answer(turn, body, rec)

    async def _answer(self, turn: Any, body: dict[str, Any], rec: RecordedRequest) -> Response:
        while True:
            if callable(turn) and not isinstance(turn, type):
                turn = turn(body)
                continue
            if isinstance(turn, Delay):
                await asyncio.sleep(turn.seconds)
                turn = turn.turn
                continue
            break
        if turn is None:
            words = f"echo: {_last_user_text(body)}".split(" ")
            turn = reply(*[w if i == 0 else " " + w for i, w in enumerate(words)])
        if isinstance(turn, HTTPError):
            rec.completed = True
            if isinstance(turn.body, str):
                return PlainTextResponse(turn.body, status_code=turn.status)
            return JSONResponse(turn.body, status_code=turn.status)
        stream = bool(body.get("stream"))
        if isinstance(turn, Completion) and turn.as_json:
            rec.completed = True
            return JSONResponse(turn.body)
        if isinstance(turn, RawStream):
            return StreamingResponse(self._raw(turn, rec), media_type="text/event-stream")
        if not stream:
            rec.completed = True
            if isinstance(turn, Reply):
                return JSONResponse(turn.completion(body))
            if isinstance(turn, Completion):
                return JSONResponse(turn.body)
            if isinstance(turn, dict):
                return JSONResponse(turn)
            return JSONResponse({"error": {"message": f"scripted turn {turn!r} needs a streamed request",
                                           "type": "server_error", "param": None, "code": None}}, status_code=500)
        return StreamingResponse(self._stream(turn, body, rec), media_type="text/event-stream")

    async def _stream(self, turn: Any, body: dict[str, Any], rec: RecordedRequest) -> Any:
        after: int | None = None
        abort = False
        tail_error: dict[str, Any] | None = None
        if isinstance(turn, Cut):
            after, abort, turn = turn.after, turn.abort, turn.turn
        elif isinstance(turn, MidstreamError):
            after, tail_error, turn = turn.after, turn.error, turn.turn
        if isinstance(turn, Reply):
            items, done, pause = turn.chunks(body), True, turn.chunk_delay
        elif isinstance(turn, Chunks):
            items, done, pause = turn.items, turn.done, turn.chunk_delay
        elif isinstance(turn, Completion | dict):
            from respond.inference.sse import completion_to_chunks
            items, done, pause = completion_to_chunks(turn.body if isinstance(turn, Completion) else turn), True, 0.0
        else:
            raise TypeError(f"cannot stream scripted turn {turn!r}")
        try:
            for i, item in enumerate(items):
                if after is not None and i >= after:
                    break
                if pause and i:
                    await asyncio.sleep(pause)
                yield _frame(item)
            if tail_error is not None:
                yield _frame({"error": tail_error})
            elif after is not None:
                if abort:
                    raise _CutConnection("scripted cut")
            elif done:
                yield b"data: [DONE]\n\n"
            rec.completed = True
        except (asyncio.CancelledError, GeneratorExit, OSError):
            rec.disconnected = True
            raise

    async def _raw(self, turn: RawStream, rec: RecordedRequest) -> Any:
        try:
            for i, piece in enumerate(turn.pieces):
                if i and turn.piece_delay:
                    await asyncio.sleep(turn.piece_delay)
                yield piece
            rec.completed = True
        except (asyncio.CancelledError, GeneratorExit, OSError):
            rec.disconnected = True
            raise

    async def _embeddings_endpoint(self, request: Request) -> Response:
        rec = await self._record(request)
        body = rec.body if isinstance(rec.body, dict) else {}
        turn = self._pop(self._embeddings)
        while isinstance(turn, Delay):
            await asyncio.sleep(turn.seconds)
            turn = turn.turn
        if callable(turn):
            turn = turn(body)
        rec.completed = True
        if isinstance(turn, HTTPError):
            return JSONResponse(turn.body, status_code=turn.status)
        if isinstance(turn, dict):
            return JSONResponse(turn)
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        dims = int(body.get("dimensions") or 8)
        data = []
        for i, text in enumerate(texts):
            vec = _fake_vector(str(text), dims)
            emb: Any = vec
            if body.get("encoding_format") == "base64":
                emb = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()
            data.append({"object": "embedding", "index": i, "embedding": emb})
        tokens = sum(len(str(t).split()) for t in texts)
        return JSONResponse({"object": "list", "data": data, "model": body.get("model", ""),
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def _models_endpoint(self, request: Request) -> Response:
        await self._record(request)
        turn = self._pop(self._models_turns)
        while isinstance(turn, Delay):
            await asyncio.sleep(turn.seconds)
            turn = turn.turn
        if isinstance(turn, HTTPError):
            return JSONResponse(turn.body, status_code=turn.status)
        if isinstance(turn, dict):
            return JSONResponse(turn)
        return JSONResponse({"object": "list", "data": [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "scripted"} for m in self.models]})

    async def _model_endpoint(self, request: Request) -> Response:
        await self._record(request)
        model_id = request.path_params["model_id"]
        if model_id not in self.models:
            return JSONResponse(error(404, f"The model '{model_id}' does not exist", code="model_not_found").body,
                                status_code=404)
        return JSONResponse({"id": model_id, "object": "model", "created": 1700000000, "owned_by": "scripted"})


class UpstreamServer:
    """Runs a `ScriptedUpstream` under uvicorn in a background thread on a random loopback port."""

    def __init__(self, upstream: ScriptedUpstream) -> None:
        self.upstream = upstream
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        upstream.base_url = f"http://127.0.0.1:{self.port}/v1"
        config = uvicorn.Config(upstream.app, log_level="warning", lifespan="off", access_log=False,
                                timeout_graceful_shutdown=1, timeout_keep_alive=30)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="scripted-upstream", daemon=True)
        self._filter = _QuietCut()

    def start(self) -> None:
        logging.getLogger("uvicorn.error").addFilter(self._filter)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the scripted upstream did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        logging.getLogger("uvicorn.error").removeFilter(self._filter)
        self._sock.close()


_running: list[UpstreamServer] = []  # the session's server once some test asked for it


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[UpstreamServer]:
    server = UpstreamServer(ScriptedUpstream())
    server.start()
    _running.append(server)
    try:
        yield server
    finally:
        _running.remove(server)
        server.stop()


@pytest.fixture(scope="session")
def upstream(upstream_server: UpstreamServer) -> ScriptedUpstream:
    """The scripted upstream. Session-wide (so session fixtures such as a server may use it); its script,
    request log and models are reset before every test by `_reset_upstream`."""
    return upstream_server.upstream


@pytest.fixture(autouse=True)
def _reset_upstream() -> Iterator[None]:
    for server in _running:
        server.upstream.reset()
    yield


__all__ = [
    "RecordedRequest", "Reply", "ScriptedUpstream", "UpstreamServer", "chunk", "chunks", "completion",
    "cut", "delay", "error", "midstream_error", "raw_stream", "refusal", "reply", "tool_call",
]
