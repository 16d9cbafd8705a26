"""THE turn loop: build context -> infer -> (run server tools -> infer again) -> finish.

`run_response` drives one response from `response.created` to its terminal event. Before the first model
turn the request's tools are set up (`ToolSet.setup`: e.g. MCP servers listed). Each model turn streams
chat-completion chunks through a `TurnAssembler`, which turns them into output items and events. Calls to
server-side tools (MCP, file_search, web_search...) are then run -- concurrently when `parallel_tool_calls`
allows, at most `tools.concurrency` at a time -- their results fed back, and the model runs again, until it
answers, a call awaits the client, or a bound is hit: `max_tool_calls` (further calls are answered to the
model with `Tool call skipped: ...`) or `tools.max_rounds` model turns with tool calls (status
`incomplete`). When the model asks for tools that only the client can run (function tools, MCP approval
requests), the response ends with those items and the client continues with `previous_response_id`.
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
from respond.responses import context, objects, tokens
from respond.responses.events import Event, EventStream
from respond.responses.tools import ToolCall, ToolResult, ToolRun, ToolSet
from respond.responses.turn import TurnAssembler

log = logging.getLogger("respond.loop")

SKIPPED = "Tool call skipped: maximum tool calls limit ({limit}) reached."
# The reason a response stopped by `tools.max_rounds` gives: of the reasons the Responses API's SDK types
# know (max_output_tokens, max_messages, content_filter, steered), the one for "too many turns".
MAX_ROUNDS_REASON = "max_messages"

# Substrings by which OpenAI-compatible servers say the prompt is longer than the context window.
_CONTEXT_OVERFLOW = ("context_length_exceeded", "maximum context length", "context window", "too many tokens",
                     "exceeds the context", "context length")


@dataclass
class ResponseRun:
    """Everything the loop needs for one response, prepared (and validated) by the service."""

    response: dict[str, Any]
    provider: Provider
    messages: list[dict[str, Any]]
    # The chat body for one model turn: (messages, first_turn) -> body (tools offered / forced per turn).
    make_body: Callable[[list[dict[str, Any]], bool], dict[str, Any]]
    events: EventStream
    truncation_auto: bool = False
    tools: ToolSet | None = None  # None: the request has no tools
    tool_run: ToolRun | None = None  # set with `tools`
    max_tool_calls: int | None = None  # across all server-side tools of this response
    parallel_tool_calls: bool = True
    max_rounds: int = 10  # model turns that called server tools, per response
    concurrency: int = 4  # server calls running at once
    # Stores the finished response. Awaited *before* the terminal event goes out, so a client that continues
    # the moment it sees `response.completed` always finds the response stored.
    persist: Callable[[], Awaitable[None]] | None = None
    failure: APIError | None = None  # what ended the response `failed`, when it was an APIError
    # include reasoning.encrypted_content: seals each finished reasoning item (sealing.py)
    seal_reasoning: Callable[[dict[str, Any]], str] | None = None
    replay_reasoning: bool = False  # the provider takes reasoning back (`reasoning_content`)

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
    tools, tool_run = run.tools, run.tool_run
    if tools is not None and tool_run is not None:
        await tools.setup(tool_run)
        if events.events:
            yield events.drain()
        if tool_run.setup_messages:
            messages = messages + tool_run.setup_messages
    annotators = tool_run.annotators if tool_run is not None else None
    rounds = calls_made = 0
    while True:
        assembler = TurnAssembler(events, len(response["output"]), tools, annotators, run.seal_reasoning)
        body = run.make_body(messages, rounds == 0)
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
        turn_items = assembler.finish(incomplete=incomplete_reason is not None)
        response["output"].extend(turn_items)
        turn_usage = assembler.usage or await asyncio.to_thread(_estimate_usage, messages, assembler.items)
        response["usage"] = objects.add_usage(response["usage"], turn_usage)
        objects.note_service_tier(response, assembler.service_tier)
        if events.events:
            yield events.drain()
        failure = next((c.error for c in assembler.calls if c.error is not None), None)
        if failure is not None:  # a call the model made that cannot go on (e.g. it breaks its tool's grammar)
            raise failure
        if incomplete_reason is not None:
            response["status"] = "incomplete"
            response["incomplete_details"] = {"reason": incomplete_reason}
            return
        server_calls = [c for c in assembler.calls if not c.awaits_client]
        if not server_calls:  # the model answered, or only the client can run what it asked for
            response["status"] = "completed"
            return
        assert tool_run is not None and tools is not None
        rounds += 1
        results: dict[int, ToolResult] = {}
        budget = None if run.max_tool_calls is None else max(run.max_tool_calls - calls_made, 0)
        to_run = server_calls if budget is None else server_calls[:budget]
        calls_made += len(to_run)
        try:
            async for batch in _run_calls(run, tool_run, to_run, results):
                yield batch
        except BaseException:  # cancelled while tools ran: what did not finish is incomplete
            for call in server_calls:
                if call.item.get("status") == "in_progress":
                    call.item["status"] = "incomplete"
            raise
        for call in server_calls[len(to_run):]:
            results[id(call)] = call.skip(tool_run, SKIPPED.format(limit=run.max_tool_calls))
        if events.events:
            yield events.drain()
        if any(c.awaits_client for c in assembler.calls):  # server calls ran; the client's are pending
            response["status"] = "completed"
            return
        if rounds >= run.max_rounds:
            log.info("response %s: stopped after %d tool rounds", response["id"], rounds)
            response["status"] = "incomplete"
            response["incomplete_details"] = {"reason": MAX_ROUNDS_REASON}
            return
        messages = messages + _feedback(tools, turn_items, server_calls, results, run.replay_reasoning)


async def _run_calls(run: ResponseRun, tool_run: ToolRun, calls: list[ToolCall],
                     results: dict[int, ToolResult]) -> AsyncIterator[list[Event]]:
    """Run server calls (bounded concurrency; one at a time without parallel_tool_calls), yielding their
    events as they come. A tool that raises ends its call failed: the response goes on."""
    events = run.events
    limit = asyncio.Semaphore(run.concurrency if run.parallel_tool_calls else 1)

    async def one(call: ToolCall) -> None:
        async with limit:
            try:
                results[id(call)] = await call.execute(tool_run)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("tool call %s (%s) failed", call.name, type(call).__name__)
                results[id(call)] = _crashed(tool_run, call, exc)

    tasks = [asyncio.create_task(one(call)) for call in calls]
    try:
        await asyncio.sleep(0)  # let the calls start: their in_progress events go out before they finish
        if events.events:
            yield events.drain()
        pending: set[asyncio.Task[None]] = set(tasks)
        while pending:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if events.events:
                yield events.drain()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _crashed(tool_run: ToolRun, call: ToolCall, exc: Exception) -> ToolResult:
    call.item["status"] = "failed"
    if "error" in call.item:
        call.item["error"] = f"Internal error: {type(exc).__name__}"
    tool_run.events.item_done(call.output_index, call.item)
    return ToolResult(f"The tool failed: internal error ({type(exc).__name__}).")


def _feedback(tools: ToolSet, turn_items: list[dict[str, Any]], calls: list[ToolCall],
              results: dict[int, ToolResult], reasoning: bool = False) -> list[dict[str, Any]]:
    """The chat messages for a turn whose server calls ran: the assistant's text and calls, then one `tool`
    message per call, in the order the model made them. `reasoning`: the turn's reasoning goes along as
    `reasoning_content` (providers with `replay_reasoning`)."""
    text = "".join(part.get("text") or part.get("refusal") or "" for item in turn_items
                   if item["type"] == "message" for part in item["content"])
    assistant = {"role": "assistant", "content": text,
                 "tool_calls": [call.chat_call(tools.chat_name(call)) for call in calls]}
    if reasoning:
        thought = "\n".join(t for t in (context.reasoning_text(i) for i in turn_items if i["type"] == "reasoning")
                            if t)
        if thought:
            assistant["reasoning_content"] = thought
    return [assistant] + [{"role": "tool", "tool_call_id": call.call_id, "content": results[id(call)].content}
                          for call in calls]


def _estimate_usage(messages: list[dict[str, Any]], items: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """Usage for an upstream that reported none (no stream_options support): counted with tiktoken."""
    output = 0
    for _, item in items:
        if item["type"] == "message":
            output += sum(tokens.count_text(p.get("text") or p.get("refusal") or "") for p in item["content"])
        elif item["type"] == "function_call":
            output += tokens.count_text(item["name"]) + tokens.count_text(item["arguments"])
        elif item["type"] == "custom_tool_call":
            output += tokens.count_text(item["name"]) + tokens.count_text(item["input"])
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
