"""POST /v1/chat/completions: a pass-through to the provider behind the requested model.

The body goes to the provider as sent, with `model` replaced by the provider's own model name; the result (or
each chunk) comes back as the provider produced it, so `model` in responses is the upstream's (e.g. the dated
snapshot name), as with OpenAI itself.

Streaming: the first chunk is awaited before the response starts, so an upstream failure before any output
is a normal HTTP error envelope; after that, a failure is sent as one `data: {"error": {...}}` frame and the
stream ends (no `[DONE]`). Each chunk is serialized once with orjson; the chunks of one upstream read go out in one write.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response

from respond.api.http import JSON, EventStreamResponse, read_json_object, require, require_model
from respond.api.openapi import CREATE_CHAT_COMPLETION, json_body
from respond.errors import APIError, InvalidRequest
from respond.jsonutil import dumpb

log = logging.getLogger(__name__)

router = APIRouter()

DONE_FRAME = b"data: [DONE]\n\n"


@router.post("/v1/chat/completions", openapi_extra=json_body(CREATE_CHAT_COMPLETION))
async def create_chat_completion(request: Request) -> Response:
    body = await read_json_object(request)
    model = require_model(body)
    messages = require(body, "messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("Invalid 'messages': expected a non-empty array of messages.", param="messages",
                             code="invalid_value" if isinstance(messages, list) else "invalid_type")
    inference = request.app.state.services.router
    provider, upstream_model = await inference.aresolve(model)
    if inference.is_embedding_model(model):
        raise InvalidRequest(f"The model '{model}' is an embedding model and does not support chat completions.",
                             param="model", code="model_not_supported")
    upstream_body = {**body, "model": upstream_model}
    if not body.get("stream"):
        result = await provider.chat_completion(upstream_body)
        for choice in result.get("choices") or ():
            if isinstance(choice.get("message"), dict):
                choice["message"].setdefault("refusal", None)  # OpenAI's shape; some servers leave it out
        return JSON(result)

    batches = provider.chat_completion_batches(upstream_body)
    try:
        first = await anext(batches)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await _close(batches)
        raise
    return EventStreamResponse(_sse(first, batches))


def _frames(batch: list[dict[str, Any]]) -> bytes:
    return b"".join(b"data: " + dumpb(chunk) + b"\n\n" for chunk in batch)


async def _sse(first: list[dict[str, Any]] | None,
               batches: AsyncIterator[list[dict[str, Any]]]) -> AsyncIterator[bytes]:
    stream = batches
    try:
        if first is not None:
            yield _frames(first)
            async for batch in batches:
                yield _frames(batch)  # the chunks of one upstream read: one write
        yield DONE_FRAME
    except APIError as exc:
        yield b"data: " + dumpb(exc.envelope()) + b"\n\n"
    except Exception:
        log.exception("chat completion stream failed")
        yield b"data: " + dumpb({"error": {"message": "The server had an error while streaming the response.",
                                           "type": "server_error", "param": None, "code": None}}) + b"\n\n"
    finally:
        await _close(stream)


async def _close(stream: AsyncIterator[Any]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
