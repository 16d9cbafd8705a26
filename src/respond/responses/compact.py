"""`POST /v1/responses/compact`: a chain's history summarized into one opaque `compaction` item.

The model writes the summary: it gets the conversation exactly as a normal turn would send it (the chat
messages `context.items_to_messages` builds, so the upstream's prompt cache hits) followed by the
summarising instruction as a final user message. The result's `output` (the user's own messages, kept verbatim, then the
compaction item) is accepted back as `input`; `context.items_to_messages` turns the item into a system
message carrying the summary.
"""

from __future__ import annotations

import time
from typing import Any

from respond.ids import new_id
from respond.inference.base import Provider
from respond.responses import context, objects

INSTRUCTION = ("Summarize the conversation so far so that the summary can replace it as context for continuing "
               "it. Keep every fact, decision, tool result and open question. Write the summary only.")


async def compact_items(provider: Provider, upstream_model: str, items: list[dict[str, Any]],
                        instructions: str | None = None, prompt_cache_key: str | None = None) -> dict[str, Any]:
    messages = context.items_to_messages(items, instructions)
    body: dict[str, Any] = {"model": upstream_model, "messages": [*messages, {"role": "user", "content": INSTRUCTION}],
                            "stream": True, "stream_options": {"include_usage": True}}
    if prompt_cache_key is not None:
        body["prompt_cache_key"] = prompt_cache_key
    summary, usage = await _complete(provider, body)
    kept = [i for i in items if i["type"] == "message" and i["role"] == "user"]
    compaction = {"type": "compaction", "id": new_id("item"), "encrypted_content": context.encode_compaction(summary)}
    return {"id": new_id("response"), "object": "response.compaction", "created_at": int(time.time()),
            "output": kept + [compaction], "usage": objects.add_usage(None, usage) or objects.empty_usage()}


async def _complete(provider: Provider, body: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """The text of one streamed completion, and its usage."""
    pieces: list[str] = []
    usage = None
    stream = provider.chat_completion_stream(body)
    try:
        async for chunk in stream:
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices") or ():
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    pieces.append(piece)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return "".join(pieces).strip(), usage
