"""The Response object: its full shape in one place, and the usage mapping.

Every key OpenAI and the Open Responses schema require is always present; sampling parameters are echoed
with their effective defaults (never null).
"""

from __future__ import annotations

import time
from typing import Any

from respond.responses import context
from respond.responses.request import CreateResponseRequest


def new_response(req: CreateResponseRequest, *, response_id: str, model: str, tools: list[dict[str, Any]],
                 created_at: int | None = None) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at if created_at is not None else int(time.time()),
        "status": "in_progress",
        "background": bool(req.background),
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": req.instructions,
        "max_output_tokens": req.max_output_tokens,
        "max_tool_calls": req.max_tool_calls,
        "model": model,
        "output": [],
        "parallel_tool_calls": req.parallel_tool_calls if req.parallel_tool_calls is not None else True,
        "previous_response_id": req.previous_response_id,
        "prompt_cache_key": req.prompt_cache_key,
        "prompt_cache_retention": req.prompt_cache_retention,
        "reasoning": {"effort": req.reasoning.effort if req.reasoning else None,
                      "summary": req.reasoning.summary if req.reasoning else None},
        "safety_identifier": req.safety_identifier,
        "service_tier": req.service_tier or "auto",  # until the upstream says which tier served it
        "store": req.store is not False,
        "temperature": req.temperature if req.temperature is not None else 1.0,
        "text": context.echo_text(req),
        "tool_choice": context.echo_tool_choice(req.tool_choice),
        "tools": tools,
        "top_logprobs": req.top_logprobs or 0,
        "top_p": req.top_p if req.top_p is not None else 1.0,
        "presence_penalty": req.presence_penalty or 0.0,
        "frequency_penalty": req.frequency_penalty or 0.0,
        "truncation": req.truncation or "disabled",
        "usage": None,
        "user": req.user,
        "metadata": req.metadata or {},
    }


# The tiers a Response's `service_tier` may show (the openai SDK's Response type).
SERVICE_TIERS = ("auto", "default", "flex", "scale", "priority", "fast", "ultrafast")


def note_service_tier(response: dict[str, Any], reported: Any) -> None:
    """After a model turn: the tier the upstream says served it, else what "auto" resolves to ("default",
    as OpenAI reports it) or the requested tier."""
    if reported in SERVICE_TIERS:
        response["service_tier"] = reported
    elif response["service_tier"] == "auto":
        response["service_tier"] = "default"


def snapshot(response: dict[str, Any]) -> dict[str, Any]:
    """A copy safe to hand to an event: later changes to the live response don't show through."""
    return {**response, "output": list(response["output"])}


def add_usage(total: dict[str, Any] | None, chat_usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """Add one chat-completions usage block to the running Responses usage (turns add up)."""
    if chat_usage is None:
        return total
    prompt = chat_usage.get("prompt_tokens") or 0
    completion = chat_usage.get("completion_tokens") or 0
    cached = (chat_usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (chat_usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    if total is None:
        total = empty_usage()
    total["input_tokens"] += prompt
    total["output_tokens"] += completion
    total["total_tokens"] += prompt + completion
    total["input_tokens_details"]["cached_tokens"] += cached
    total["output_tokens_details"]["reasoning_tokens"] += reasoning
    return total


def empty_usage() -> dict[str, Any]:
    return {"input_tokens": 0, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": 0, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 0}
