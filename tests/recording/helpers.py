"""The live side of the recording seam for tests: callables that count how often they really ran."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from respond.errors import UpstreamError
from respond.recording import OutboundRequest

CHAT_URL = "http://upstream.test/v1/chat/completions"


def chat_request(content: str = "Say hello", *, stream: bool = False, **extra: Any) -> OutboundRequest:
    body: dict[str, Any] = {"model": "gpt-test", "messages": [{"role": "user", "content": content}], **extra}
    if stream:
        body["stream"] = True
    return OutboundRequest(method="POST", url=CHAT_URL, endpoint="/v1/chat/completions", body=body,
                           headers={"Authorization": "Bearer sk-secret", "Content-Type": "application/json"},
                           model="gpt-test")


def completion(text: str = "Hello!", ident: str = "chatcmpl-AbC123", created: int = 1712345678) -> dict[str, Any]:
    return {"id": ident, "object": "chat.completion", "created": created, "model": "gpt-test-2024",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


def chunks(text: str = "Hello there", ident: str = "chatcmpl-Str3am", created: int = 1712345678) -> list[dict]:
    out = [{"id": ident, "object": "chat.completion.chunk", "created": created, "model": "gpt-test-2024",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    for word in text.split(" "):
        out.append({"id": ident, "object": "chat.completion.chunk", "created": created, "model": "gpt-test-2024",
                    "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]})
    out.append({"id": ident, "object": "chat.completion.chunk", "created": created, "model": "gpt-test-2024",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return out


class CountingCall:
    """An async live callable returning `result` (or raising `error`), counting its calls."""

    def __init__(self, result: Any = None, error: Exception | None = None) -> None:
        self.result = result
        self.error = error
        self.calls = 0

    async def __call__(self) -> Any:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return json.loads(json.dumps(self.result))


class CountingStream:
    """A live stream factory yielding `items`, optionally failing after `fail_after` items."""

    def __init__(self, items: list[Any], fail_after: int | None = None,
                 error: UpstreamError | None = None) -> None:
        self.items = items
        self.fail_after = fail_after
        self.error = error or UpstreamError("stream cut by the upstream")
        self.calls = 0
        self.closed = 0
        self.yielded = 0

    def __call__(self) -> AsyncIterator[Any]:
        self.calls += 1
        return self._run()

    async def _run(self) -> AsyncIterator[Any]:
        try:
            for i, item in enumerate(self.items):
                if self.fail_after is not None and i == self.fail_after:
                    raise self.error
                self.yielded += 1
                yield json.loads(json.dumps(item))
        finally:
            self.closed += 1


def recordings(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))
