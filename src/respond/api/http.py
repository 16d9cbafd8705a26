"""Request bodies in, JSON bodies and Server-Sent Events out.

`read_json` is the one place request bodies are read (WebSocket frames go through `parse_json` too):
- size: a body larger than `Config.max_request_bytes` is answered 413 without being buffered whole (the
  Content-Length is checked up front, and a chunked body is counted while it arrives);
- depth: a body nested deeper than MAX_JSON_DEPTH objects/arrays is answered 400. orjson parses 1024
  levels but writes only 254, and respond writes request parts back inside larger documents (the response
  object, SSE events, list pages, stored rows, the upstream request, recordings): a body nested ~250 levels
  would parse, then fail on the way out. 128 leaves 126 levels for that wrapping. Cost: a body of up to
  8 KB with at most 128 brackets cannot be that deep, which two `bytes.count` calls tell (about a
  microsecond for 2 KB); any other body is written once by orjson inside 126 extra levels (C speed, a
  fraction of the parse). Numbers: bench/request_parse.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from respond import jsonutil
from respond.config import DEFAULT_MAX_REQUEST_BYTES
from respond.errors import APIError, InvalidRequest

log = logging.getLogger("respond.api")

T = TypeVar("T")


MAX_JSON_DEPTH = 128  # objects/arrays; far below orjson's 254 even inside what respond wraps around them
_SMALL_BODY = 8192  # up to this size, counting brackets is cheaper than writing the body (bench)


def _orjson_max_depth() -> int:
    """How many nested arrays orjson writes (254 in orjson 3.x), found once by bisection."""
    def writes(depth: int) -> bool:
        value: Any = None
        for _ in range(depth):
            value = [value]
        try:
            jsonutil.dumpb(value)
        except TypeError:
            return False
        return True

    low, high = 1, 4096  # writes(low); not writes(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if writes(middle) else (low, middle)
    return low


_WRAP = _orjson_max_depth() - MAX_JSON_DEPTH  # levels to add so that orjson fails iff a value is too deep


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return jsonutil.dumpb(content)
        except TypeError:  # orjson.JSONEncodeError: e.g. a document stored before the depth limit existed
            if not _is_page(content):
                raise
            return jsonutil.dumpb(_writable_page(content))


def _is_page(content: Any) -> bool:
    return isinstance(content, dict) and content.get("object") == "list" and isinstance(content.get("data"), list)


def _writable_page(page: dict[str, Any]) -> dict[str, Any]:
    """A list page without the entries that cannot be serialized: one bad stored row must not make every
    page containing it fail. The skipped entries are logged."""
    kept = []
    for entry in page["data"]:
        try:
            jsonutil.dumpb({"data": [entry]})  # as deep as it sits in the page
        except TypeError as exc:
            ident = entry.get("id") if isinstance(entry, dict) else None
            log.error("skipped %s in a list page: it cannot be serialized (%s)", ident or "an entry", exc)
            continue
        kept.append(entry)
    return {**page, "data": kept}


class RequestTooLarge(APIError):
    status_code = 413
    error_type = "invalid_request_error"

    def __init__(self, limit: int) -> None:
        size = f"{limit} bytes" + (f" ({limit >> 20} MB)" if limit % (1 << 20) == 0 else "")
        super().__init__(f"The request is too large: the limit is {size} (max_request_bytes).",
                         code="request_too_large")


def max_request_bytes(request: Request) -> int:
    return getattr(request.app.state, "max_request_bytes", DEFAULT_MAX_REQUEST_BYTES)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, or RequestTooLarge as soon as it is known to exceed `limit` (never buffered beyond it)."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise InvalidRequest("Invalid Content-Length header.", code="invalid_request")
        if int(length) > limit:
            raise RequestTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(limit)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def read_json(request: Request) -> Any:
    raw = await read_body(request, max_request_bytes(request))
    if not raw:
        raise InvalidRequest("The request body is empty; expected a JSON object.")
    return parse_json(raw, "request body")


def parse_json(raw: bytes | str, what: str = "request body") -> Any:
    """Parse a request body or WebSocket frame: 400 when it is not JSON or nested deeper than MAX_JSON_DEPTH."""
    try:
        value = jsonutil.loads(raw)
    except ValueError as exc:
        if "depth limit" in str(exc) or "recursion" in str(exc).lower():  # orjson: deeper than 1024
            raise too_deep(what) from None
        raise InvalidRequest(f"The {what} is not valid JSON.", code="invalid_json") from None
    if len(raw) <= _SMALL_BODY:
        # each level needs its own bracket: a body with few brackets cannot be deep (the usual case)
        if isinstance(raw, bytes):
            brackets = raw.count(b"{") + raw.count(b"[")
        else:
            brackets = raw.count("{") + raw.count("[")
        if brackets <= MAX_JSON_DEPTH:
            return value
    if nested_too_deep(value):
        raise too_deep(what)
    return value


def nested_too_deep(value: Any) -> bool:
    """Whether `value` has more than MAX_JSON_DEPTH levels: orjson writes it inside _WRAP more levels only if
    it does not (the Python walk decides only when writing fails for another reason)."""
    wrapped = value
    for _ in range(_WRAP):
        wrapped = [wrapped]
    try:
        jsonutil.dumpb(wrapped)
    except TypeError:
        return nested_deeper_than(value, MAX_JSON_DEPTH)
    return False


def too_deep(what: str) -> InvalidRequest:
    return InvalidRequest(f"The {what} is nested too deeply: at most {MAX_JSON_DEPTH} levels of objects and "
                          "arrays are accepted.", code="json_too_deep")


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` has more than `limit` levels of nested dicts/lists (the value itself is level 1)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


class ClientDisconnected(Exception):
    """The client went away before the answer was ready; its work was cancelled."""


def watch_disconnect(receive: Receive, task: asyncio.Task[Any]) -> tuple[asyncio.Task[None], asyncio.Event]:
    """Start watching the request's `receive` channel: when the client disconnects, `task` is cancelled.
    Returns the watcher (cancel it when done) and an event set on disconnect. The body must be read first."""
    disconnected = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        disconnected.set()
        task.cancel()

    return asyncio.create_task(watch()), disconnected


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it if the client disconnects first (so an abandoned request stops its
    upstream call instead of running to the end)."""
    task = asyncio.ensure_future(work)
    watcher, disconnected = watch_disconnect(request.receive, task)
    try:
        return await task
    except asyncio.CancelledError:
        if disconnected.is_set() and not _current_task_cancelling():
            raise ClientDisconnected() from None
        raise
    finally:
        watcher.cancel()


def _current_task_cancelling() -> bool:
    current = asyncio.current_task()
    return bool(current and current.cancelling())


async def read_json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 envelope."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    return body


def require(body: dict[str, Any], name: str) -> Any:
    """`body[name]`, or the 400 OpenAI gives for a missing required parameter."""
    value = body.get(name)
    if value is None or value == "":
        raise InvalidRequest(f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")
    return value


def require_model(body: dict[str, Any]) -> str:
    model = require(body, "model")
    if not isinstance(model, str):
        raise InvalidRequest("Invalid type for 'model': expected a string.", param="model", code="invalid_type")
    return model


def sse_frame(event: dict[str, Any]) -> bytes:
    return b"event: " + event["type"].encode() + b"\ndata: " + jsonutil.dumpb(event) + b"\n\n"


class EventStreamResponse(Response):
    """An SSE response over an async iterator of frames (bytes).

    A watcher waits for the client's `http.disconnect`; when the client goes away the stream is cancelled
    and the iterator closed, so the work behind it stops and its `finally` blocks (storing) run.
    """

    def __init__(self, frames: AsyncIterator[bytes], status_code: int = 200) -> None:
        # Not calling Response.__init__: there is no body to render, the frames are sent as they come.
        self.frames = frames
        self.status_code = status_code
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.current_task()
        assert streaming is not None
        watcher, disconnected = watch_disconnect(receive, streaming)
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no")]})
            async for frame in self.frames:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not disconnected.is_set():
                raise
            streaming.uncancel()
            log.info("client disconnected mid-stream; stopped its work")
        except OSError:
            log.info("client disconnected mid-stream")
        finally:
            watcher.cancel()
            await self.frames.aclose()  # type: ignore[attr-defined]
