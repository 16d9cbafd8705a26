"""Response helpers: orjson JSON bodies, and Server-Sent Events written one frame per write."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from respond import jsonutil
from respond.errors import InvalidRequest

log = logging.getLogger("respond.api")

T = TypeVar("T")


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return jsonutil.dumpb(content)


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        raise InvalidRequest("The request body is empty; expected a JSON object.")
    try:
        return jsonutil.loads(raw)
    except ValueError:
        raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from None


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
