"""THE turn loop: build context -> infer -> (run server tools -> infer again) -> finish.

`run_response` drives one response from `response.created` to its terminal event. Each model turn streams
chat-completion chunks through a `TurnAssembler`, which turns them into output items and events. When the
model asks for tools that only the client can run (function tools), the response ends with those
`function_call` items and the client continues with `function_call_output` + `previous_response_id`.
Upstream failures end the response `failed` with an error object; a cancelled run (client gone) ends
`cancelled`. The response dict is mutated in place: when the generator finishes, it is final.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from respond.errors import APIError, UpstreamError, is_client_fault
from respond.inference.base import Provider
from respond.responses import objects, tokens
from respond.responses.events import Event, EventStream
from respond.responses.turn import TurnAssembler

log = logging.getLogger("respond.loop")

# Substrings by which OpenAI-compatible servers say the prompt is longer than the context window.
_CONTEXT_OVERFLOW = ("context_length_exceeded", "maximum context length", "context window", "too many tokens",
                     "exceeds the context", "context length")


@dataclass
class ResponseRun:
    """Everything the loop needs for one response, prepared (and validated) by the service."""

    response: dict[str, Any]
    provider: Provider
    messages: list[dict[str, Any]]
    make_body: Callable[[list[dict[str, Any]]], dict[str, Any]]
    events: EventStream
    truncation_auto: bool = False
    # Stores the finished response. Awaited *before* the terminal event goes out, so a client that continues
    # the moment it sees `response.completed` always finds the response stored.
    persist: Callable[[], Awaitable[None]] | None = None
    failure: APIError | None = None  # what ended the response `failed`, when it was an APIError

    def rejected(self) -> bool:
        """Whether the upstream refused the request (a client-fault 4xx) before any output: a non-streamed
        create then answers with that HTTP error instead of a `failed` response."""
        exc = self.failure
        return isinstance(exc, UpstreamError) and is_client_fault(exc.upstream_status) \
            and not self.response["output"]


async def run_response(run: ResponseRun) -> AsyncIterator[list[Event]]:
    """Run the response to its end, yielding its stream events in batches (the events one upstream read
    produced travel together; none for non-streamed runs but the terminal event)."""
    response, events = run.response, run.events
    events.response_event("created", objects.snapshot(response))
    events.response_event("in_progress", objects.snapshot(response))
    try:
        yield events.drain()
        async for batch in _model_turns(run):
            yield batch
    except APIError as exc:
        run.failure = exc
        _fail(response, exc)
    except (asyncio.CancelledError, GeneratorExit):  # the client went away: the service stores it cancelled
        response["status"] = "cancelled"
        raise
    except Exception as exc:  # a bug must not leave the response hanging in_progress
        log.exception("response %s failed", response["id"])
        _fail(response, APIError(f"Internal error: {type(exc).__name__}"))
    if response["status"] not in ("completed", "incomplete", "failed"):
        _fail(response, APIError("The response ended without a final status."))
    if response["status"] in ("completed", "incomplete"):
        response["completed_at"] = int(time.time())
    if run.persist is not None:
        await run.persist()
    events.enabled = True  # the terminal event is always delivered
    events.response_event(response["status"], objects.snapshot(response))
    yield events.drain()


# The codes a Response's `error` may carry (openai.types.responses.ResponseError), beyond the generic ones:
# an upstream's own code (OpenAI's, for images) is passed on when it is one of these.
RESPONSE_ERROR_CODES = frozenset((
    "invalid_image", "invalid_image_format", "invalid_base64_image", "invalid_image_url", "image_too_large",
    "image_too_small", "image_parse_error", "image_content_policy_violation", "invalid_image_mode",
    "image_file_too_large", "unsupported_image_media_type", "empty_image_file", "failed_to_download_image",
    "image_file_not_found", "vector_store_timeout", "data_residency_mismatch", "bio_policy",
    "misalignment_policy_violation"))


def _fail(response: dict[str, Any], exc: APIError) -> None:
    """End the response `failed`. The error code says whose fault it was, in OpenAI's vocabulary."""
    status = exc.upstream_status if isinstance(exc, UpstreamError) else exc.status_code
    code = "server_error"  # upstream down, 5xx, timeouts, a bad upstream key (401/403): the operator's side
    if status == 429:
        code = "rate_limit_exceeded"
    elif is_client_fault(status):
        # the upstream rejected what was asked: its own code when OpenAI has it (invalid_base64_image...),
        # else invalid_prompt (too long, bad parameter...)
        code = exc.code if exc.code in RESPONSE_ERROR_CODES else "invalid_prompt"
    response["status"] = "failed"
    response["error"] = {"code": code, "message": exc.message}
    log.warning("response %s failed: %s", response["id"], exc.message)


async def _model_turns(run: ResponseRun) -> AsyncIterator[list[Event]]:
    response, events = run.response, run.events
    messages = run.messages
    while True:
        assembler = TurnAssembler(events, len(response["output"]))
        body = run.make_body(messages)
        try:
            batches = run.provider.chat_completion_batches(body)
            try:
                async for batch in batches:
                    for chunk in batch:
                        assembler.feed(chunk)
                    if events.events:
                        yield events.drain()
            finally:
                await batches.aclose()
        except APIError as exc:
            if run.truncation_auto and not assembler.items and assembler.next_index == len(response["output"]) \
                    and _is_context_overflow(exc):
                shorter = drop_oldest_turn(messages)
                if shorter is not None:
                    log.info("response %s: context overflow, truncating the oldest turn", response["id"])
                    messages = shorter
                    continue
            # keep what was produced before the failure
            response["output"].extend(assembler.finish(incomplete=True))
            raise
        except BaseException:  # cancelled (the client went away): keep what was produced so far
            response["output"].extend(assembler.finish(incomplete=True))
            raise
        finish = assembler.finish_reason
        if finish is None and assembler.usage is None and not assembler.saw_choice:
            response["output"].extend(assembler.finish(incomplete=True))
            raise UpstreamError("The model's stream ended without any output.")
        incomplete_reason = {"length": "max_output_tokens", "content_filter": "content_filter"}.get(finish or "")
        response["output"].extend(assembler.finish(incomplete=incomplete_reason is not None))
        turn_usage = assembler.usage or await asyncio.to_thread(_estimate_usage, messages, assembler.items)
        response["usage"] = objects.add_usage(response["usage"], turn_usage)
        objects.note_service_tier(response, assembler.service_tier)
        if events.events:
            yield events.drain()
        if incomplete_reason is not None:
            response["status"] = "incomplete"
            response["incomplete_details"] = {"reason": incomplete_reason}
            return
        # Function tools are run by the client: the response ends with its function_call items.
        # (Server-side tools will execute here and loop back for another model turn.)
        response["status"] = "completed"
        return


def _estimate_usage(messages: list[dict[str, Any]], items: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """Usage for an upstream that reported none (no stream_options support): counted with tiktoken."""
    output = 0
    for _, item in items:
        if item["type"] == "message":
            output += sum(tokens.count_text(p.get("text") or p.get("refusal") or "") for p in item["content"])
        elif item["type"] == "function_call":
            output += tokens.count_text(item["name"]) + tokens.count_text(item["arguments"])
    return {"prompt_tokens": tokens.count_messages(messages), "completion_tokens": output}


def _is_context_overflow(exc: APIError) -> bool:
    text = f"{exc.code or ''} {exc.message}".lower()
    return any(marker in text for marker in _CONTEXT_OVERFLOW)


def drop_oldest_turn(messages: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Messages without the oldest non-system turn (a user message and what answered it), or None."""
    first = next((i for i, m in enumerate(messages) if m["role"] != "system"), None)
    if first is None:
        return None
    end = first + 1
    while end < len(messages) and messages[end]["role"] in ("assistant", "tool"):
        end += 1
    rest = messages[:first] + messages[end:]
    if not any(m["role"] != "system" for m in rest):
        return None
    return rest
