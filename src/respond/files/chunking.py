"""Token-based chunking (tiktoken cl100k, offline), as OpenAI's vector stores do it: windows of
`max_chunk_size_tokens` tokens overlapping by `chunk_overlap_tokens`; `auto` is 800 / 400."""

from __future__ import annotations

from typing import Any

from respond.errors import InvalidRequest
from respond.responses.tokens import _encoding

AUTO = {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}}


def resolve_strategy(value: Any, param: str = "chunking_strategy") -> dict[str, Any]:
    """The stored (static) form of a request's chunking strategy; `auto` or absent -> 800/400."""
    if value is None:
        return AUTO
    if not isinstance(value, dict):
        raise InvalidRequest(f"Invalid '{param}': expected an object.", param=param, code="invalid_type")
    kind = value.get("type")
    if kind == "auto":
        return AUTO
    if kind != "static":
        raise InvalidRequest(f"Invalid '{param}.type': expected 'auto' or 'static'.", param=f"{param}.type",
                             code="invalid_value")
    static = value.get("static")
    if not isinstance(static, dict):
        raise InvalidRequest(f"Missing '{param}.static'.", param=f"{param}.static", code="missing_required_parameter")
    size, overlap = static.get("max_chunk_size_tokens"), static.get("chunk_overlap_tokens")
    if not isinstance(size, int) or isinstance(size, bool) or not 100 <= size <= 4096:
        raise InvalidRequest(f"Invalid '{param}.static.max_chunk_size_tokens': expected an integer between 100 "
                             "and 4096.", param=f"{param}.static.max_chunk_size_tokens", code="invalid_value")
    if not isinstance(overlap, int) or isinstance(overlap, bool) or overlap < 0 or overlap > size // 2:
        raise InvalidRequest(f"Invalid '{param}.static.chunk_overlap_tokens': expected a non-negative integer "
                             "at most half of max_chunk_size_tokens.", param=f"{param}.static.chunk_overlap_tokens",
                             code="invalid_value")
    return {"type": "static", "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap}}


def chunk_text(text: str, max_tokens: int, overlap: int) -> list[tuple[str, int]]:
    """`(chunk text, token count)` windows over `text`."""
    encoding = _encoding()
    tokens = encoding.encode(text, disallowed_special=())
    if not tokens:
        return []
    step = max(1, max_tokens - overlap)
    out = []
    for start in range(0, len(tokens), step):
        window = tokens[start:start + max_tokens]
        piece = encoding.decode(window).strip()
        if piece:
            out.append((piece, len(window)))
        if start + max_tokens >= len(tokens):
            break
    return out
