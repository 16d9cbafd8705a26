"""Server-Sent Events on raw bytes, and chat completions as chunk sequences: the streaming hot path's parsing.

`SSEDecoder` splits an event-stream body, fed in whatever pieces the network delivers, into the `data`
payloads of its events without decoding text. `completion_to_chunks` turns a non-streamed `ChatCompletion`
into the equivalent chunks, for upstreams that ignore `stream: true`.
"""

from __future__ import annotations

from typing import Any


class SSEDecoder:
    """Splits an event-stream body, fed in arbitrary pieces, into the `data` payloads of its events.

    Works on bytes (no text decoding); an event's `data:` lines are joined with newlines; `event:`, `id:`,
    `retry:` fields and `:` comments are skipped; CRLF and LF line ends both work.
    """

    __slots__ = ("_tail", "_pending")

    def __init__(self) -> None:
        self._tail = b""
        self._pending: bytes | None = None

    def feed(self, piece: bytes) -> list[bytes]:
        lines = (self._tail + piece).split(b"\n") if self._tail else piece.split(b"\n")
        self._tail = lines.pop()
        events: list[bytes] = []
        pending = self._pending
        for line in lines:
            if line.startswith(b"data:"):
                data = line[5:].strip()
                pending = data if pending is None else pending + b"\n" + data
            elif (not line or line == b"\r") and pending is not None:
                events.append(pending)
                pending = None
        self._pending = pending
        return events

    def flush(self) -> bytes | None:
        """The last event when the body ended without its blank line (or None)."""
        last = self._tail.strip()
        self._tail = b""
        pending = self._pending
        if last.startswith(b"data:"):
            data = last[5:].strip()
            pending = data if pending is None else pending + b"\n" + data
        self._pending = None
        return pending


def completion_to_chunks(completion: dict[str, Any]) -> list[dict[str, Any]]:
    """A `ChatCompletion` as the equivalent `ChatCompletionChunk` sequence (content, tool calls, usage)."""
    base = {"id": completion.get("id", ""), "object": "chat.completion.chunk",
            "created": completion.get("created", 0), "model": completion.get("model", "")}
    chunks: list[dict[str, Any]] = []
    for choice in completion.get("choices") or []:
        msg = choice.get("message") or {}
        delta: dict[str, Any] = {"role": msg.get("role", "assistant"), "content": msg.get("content")}
        if msg.get("refusal"):
            delta["refusal"] = msg["refusal"]
        if msg.get("tool_calls"):
            delta["tool_calls"] = [{"index": i, **tc} for i, tc in enumerate(msg["tool_calls"])]
        idx = choice.get("index", 0)
        chunks.append({**base, "choices": [{"index": idx, "delta": delta, "finish_reason": None}]})
        chunks.append({**base, "choices": [{"index": idx, "delta": {},
                                            "finish_reason": choice.get("finish_reason") or "stop"}]})
    if completion.get("usage"):
        chunks.append({**base, "choices": [], "usage": completion["usage"]})
    return chunks
