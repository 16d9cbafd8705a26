"""`POST /v1/responses/compact`: a chain's history summarized into one opaque `compaction` item.

The model writes the summary. The result's `output` (the user's own messages, kept verbatim, then the
compaction item) is accepted back as `input`; `context.items_to_messages` turns the item into a system
message carrying the summary.
"""

from __future__ import annotations

import time
from typing import Any

from respond.ids import new_id
from respond.inference.base import Provider
from respond.responses import context, objects

INSTRUCTION = ("Summarize the conversation below so it can replace it as context for continuing it. Keep every "
               "fact, decision, tool result and open question. Write the summary only.")


async def compact_items(provider: Provider, upstream_model: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    transcript = "\n".join(f"{m['role']}: {_text_of(m)}" for m in context.items_to_messages(items, None))
    body = {"model": upstream_model, "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": transcript}]}
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


def _text_of(message: dict[str, Any]) -> str:
    """A chat message as one line of transcript (tool calls shown inline)."""
    content = message.get("content")
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    else:
        text = ""
    for call in message.get("tool_calls") or ():
        text += f" [called {call['function']['name']}({call['function']['arguments']})]"
    return text
