"""Deterministic responses: chat completion ids become `rec-<first 12 hex of the request hash>` and
`created` becomes 0, so a re-recorded file only changes where the model's answer changed.

Tool call ids (`call_...`) are kept as the upstream sent them: respond echoes them back in the next
request, and the recorded response carries them, so record and replay see the same ids either way.
"""

from __future__ import annotations

from typing import Any

CHAT_OBJECTS = frozenset({"chat.completion", "chat.completion.chunk", "text_completion"})


class IdNormalizer:
    """Rewrites response ids for one request. `mapping` collects {original: normalized}."""

    def __init__(self, request_hash: str, mapping: dict[str, str] | None = None) -> None:
        self.base = f"rec-{request_hash[:12]}"
        self.mapping: dict[str, str] = dict(mapping or {})

    def _normalized(self, original: str) -> str:
        if original.startswith("rec-"):
            return original
        found = self.mapping.get(original)
        if found is None:
            count = len(set(self.mapping.values()))
            found = self.base if count == 0 else f"{self.base}-{count}"
            self.mapping[original] = found
        return found

    def apply(self, data: Any) -> Any:
        """A (shallow) copy of one response object with its id and created normalized; others unchanged."""
        if not isinstance(data, dict) or data.get("object") not in CHAT_OBJECTS:
            return data
        out = dict(data)
        if isinstance(out.get("id"), str):
            out["id"] = self._normalized(out["id"])
        if isinstance(out.get("created"), int) and not isinstance(out.get("created"), bool):
            out["created"] = 0
        return out

    def apply_all(self, data: Any) -> Any:
        if isinstance(data, list):
            return [self.apply(d) for d in data]
        return self.apply(data)
