"""/v1/responses over WebSocket: the protocol of the openai SDK's `client.responses.connect()`.

Client frames are JSON text: `{"type": "response.create", ...the POST /v1/responses body...}`. Each one runs
a response and streams every event as its own text frame (the same events as SSE). Many responses run on
one connection; those sent with the same `stream_id` ("lane", default: none) run one after another in the
order sent, and their events echo that `stream_id`. Different lanes run side by side.

- A client error (bad parameters, unknown model, unknown `previous_response_id`, an unknown frame type,
  invalid JSON, a frame nested too deeply) is answered by one `error` event; the connection stays open for
  the next frame. A frame larger than `max_request_bytes` is refused by the server before it is buffered
  (`respond serve` gives uvicorn `ws_max_size`; the connection closes with 1009); should one reach the app
  anyway (another ASGI server), it is answered by an `error` event with status 413.
- `store: false` responses are kept by the connection (`LocalResponses`), so they can be continued with
  `previous_response_id` on this connection only. A failed continuation evicts its previous response.
- `response.steer` is not supported: it is answered by `response.steer.failed` (`steering_not_supported`).
- When the client goes away, the responses still running are cancelled (and stored as the service decides).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import APIRouter, WebSocket

from respond import jsonutil
from respond.api.auth import charge_usage, principal_of
from respond.api.http import RequestTooLarge, parse_json
from respond.api.owner import request_owner
from respond.config import DEFAULT_MAX_REQUEST_BYTES
from respond.errors import APIError, InvalidRequest, shorten
from respond.responses.events import EventStream
from respond.responses.request import parse_create_request
from respond.responses.service import LocalResponses, ResponseService

log = logging.getLogger("respond.api.ws")

router = APIRouter()

# Fields of a `response.create` frame that are WebSocket envelope, not response parameters.
_ENVELOPE = ("type", "stream_id", "stream")


@router.websocket("/v1/responses")
async def responses_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    services = websocket.app.state.services
    await ResponsesConnection(websocket, services.responses, request_owner(websocket),
                              services.config.strict_parameters).serve()


def error_event(exc: APIError, stream_id: str | None = None) -> dict[str, Any]:
    """An `error` event for a failure outside any response's own stream (numbered 0: it stands alone)."""
    event = EventStream().error(exc.message, exc.code, exc.param, error_type=exc.error_type)
    event["status"] = exc.status_code
    if stream_id is not None:
        event["stream_id"] = stream_id
    return event


def steer_failed_event(frame: dict[str, Any]) -> dict[str, Any]:
    return {"type": "response.steer.failed", "sequence_number": 0,
            "error": {"type": "invalid_request_error", "code": "steering_not_supported",
                      "message": "Steering is not supported by this server: wait for the response to finish, "
                                 "then send `response.create` with `previous_response_id`."},
            "steer": {"input": frame.get("input"), "previous_response_id": frame.get("previous_response_id")}}


class ResponsesConnection:
    """One client connection: reads frames, runs responses on their lanes, writes events."""

    def __init__(self, websocket: WebSocket, service: ResponseService, owner: str, strict: bool = True) -> None:
        self.websocket = websocket
        self.service = service
        self.owner = owner
        self.strict = strict  # unknown parameters are a 400 (config strict_parameters)
        self.local = LocalResponses()
        self.lanes: dict[str | None, asyncio.Queue[dict[str, Any]]] = {}
        self.workers: list[asyncio.Task[None]] = []
        self.closed = False
        self._send_lock = asyncio.Lock()
        self.max_bytes: int = getattr(websocket.app.state, "max_request_bytes", DEFAULT_MAX_REQUEST_BYTES)

    async def serve(self) -> None:
        try:
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                await self.on_frame(message.get("text") if message.get("text") is not None
                                    else message.get("bytes"))
        finally:
            self.closed = True
            for worker in self.workers:
                worker.cancel()
            if self.workers:
                await asyncio.gather(*self.workers, return_exceptions=True)

    # -- frames --------------------------------------------------------------------------------------------
    async def on_frame(self, raw: str | bytes | None) -> None:
        try:
            if raw is not None and len(raw) > self.max_bytes:
                raise RequestTooLarge(self.max_bytes)
            frame = parse_json(raw or b"", "frame")
        except APIError as exc:
            await self.send(error_event(exc))
            return
        if not isinstance(frame, dict):
            await self.send(error_event(InvalidRequest("A frame must be a JSON object with a 'type'.",
                                                       code="invalid_value")))
            return
        kind = frame.get("type")
        if kind == "response.create":
            stream_id = frame.get("stream_id")
            if stream_id is not None and not isinstance(stream_id, str):
                await self.send(error_event(InvalidRequest("'stream_id' must be a string.", param="stream_id",
                                                           code="invalid_type")))
                return
            self._lane(stream_id).put_nowait(frame)
        elif kind == "response.steer":
            await self.send(steer_failed_event(frame))
        else:
            shown = shorten(kind if isinstance(kind, str) else repr(kind))
            await self.send(error_event(InvalidRequest(
                f"Unsupported event type '{shown}': this server accepts 'response.create'.", param="type",
                code="unsupported_event_type")))

    def _lane(self, stream_id: str | None) -> asyncio.Queue[dict[str, Any]]:
        queue = self.lanes.get(stream_id)
        if queue is None:
            queue = self.lanes[stream_id] = asyncio.Queue()
            self.workers.append(asyncio.create_task(self._run_lane(queue), name=f"ws-lane-{stream_id}"))
        return queue

    async def _run_lane(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            frame = await queue.get()
            try:
                await self.create(frame)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in one response must not kill the lane or the connection
                log.exception("websocket response.create failed")
                await self.send(error_event(APIError("The server had an error while processing your request.",
                                                     code="internal_error"), frame.get("stream_id")))

    # -- one response ----------------------------------------------------------------------------------------
    async def create(self, frame: dict[str, Any]) -> None:
        stream_id = frame.get("stream_id")
        body = {k: v for k, v in frame.items() if k not in _ENVELOPE}
        try:
            if body.get("generate") is False:
                raise InvalidRequest("'generate: false' is not supported by this server.", param="generate",
                                     code="unsupported_parameter")
            body.pop("generate", None)
            principal = principal_of(self.websocket.scope)
            if principal.limited:  # quotas: every response.create counts as a request
                self.websocket.app.state.services.auth.admit(principal)
            req = parse_create_request(body, strict=self.strict)
            req.stream = True
            prepared = await self.service.prepare(req, stream=True, owner=self.owner, local=self.local)
        except APIError as exc:
            # a continuation that fails validation evicts what it continued, as one that fails running does
            previous = body.get("previous_response_id")
            if isinstance(previous, str):
                self.local.items.pop(previous, None)
            await self.send(error_event(exc, stream_id))
            return
        batches = self.service.stream(prepared)
        try:
            async for batch in batches:
                for event in batch:  # one JSON frame per event
                    if stream_id is not None:
                        event["stream_id"] = stream_id
                    await self.send(event)
        finally:
            await batches.aclose()
            charge_usage(self.websocket.scope, prepared.run.response)

    async def send(self, event: dict[str, Any]) -> None:
        """Write one event frame; once the client is gone, frames are dropped (the reader then cancels).

        An event that cannot be serialized (a bug) is not skipped silently, which would leave the client
        waiting for events that never come: an `error` event says so and the connection closes with 1011.
        """
        if self.closed:
            return
        async with self._send_lock:
            try:
                text = jsonutil.dumps(event)
            except Exception:
                log.exception("websocket: cannot serialize a %r event; closing the connection", event.get("type"))
                await self._close_on_bug(event.get("stream_id"))
                return
            try:
                await self.websocket.send_text(text)
            except Exception as exc:  # WebSocketDisconnect, OSError, or a send after close
                self.closed = True
                log.info("websocket client went away: %s", type(exc).__name__)

    async def _close_on_bug(self, stream_id: Any) -> None:
        self.closed = True
        error = error_event(APIError("The server had an error while sending an event; the connection is "
                                     "closed.", code="internal_error"), stream_id if isinstance(stream_id, str)
                            else None)
        with contextlib.suppress(Exception):
            await self.websocket.send_text(jsonutil.dumps(error))
        with contextlib.suppress(Exception):
            await self.websocket.close(code=1011, reason="internal error")
