"""Id formats, in one place.

Ids look like OpenAI's (`resp_<hex>`, `msg_<hex>`, `fc_<hex>`, `call_<alnum>`...). For record/replay, the
generator can be made deterministic per test: an app keeps one `IdSequences` and, for a request carrying a
test id, makes that test's sequence current (`use_sequence`). The same test then produces the same ids on
every run of a fresh server, so requests that embed ids hash identically.
"""

from __future__ import annotations

import contextvars
import hashlib
import secrets
from dataclasses import dataclass, field

PREFIXES = {
    "response": "resp",
    "message": "msg",
    "function_call": "fc",
    "custom_tool_call": "ctc",
    "call": "call",
    "reasoning": "rs",
    "item": "item",
    "file": "file",
    "vector_store": "vs",
    "vector_store_file_batch": "vsfb",
    "conversation": "conv",
    "api_key": "key",
    "chat": "chatcmpl",
    # server-side tool items (OpenAI's prefixes)
    "mcp_call": "mcp",
    "mcp_list_tools": "mcpl",
    "mcp_approval_request": "mcpr",
    "mcp_approval_response": "mcpa",
    "file_search_call": "fs",
    "web_search_call": "ws",
}


@dataclass
class DeterministicIds:
    seed: str
    counter: int = field(default=0)

    def next_hex(self, length: int) -> str:
        self.counter += 1
        return hashlib.sha256(f"{self.seed}:{self.counter}".encode()).hexdigest()[:length]


_deterministic: contextvars.ContextVar[DeterministicIds | None] = contextvars.ContextVar("respond_ids", default=None)


class IdSequences:
    """One id sequence per test id, for the life of one app: a test's successive requests continue it.

    Bounded: past `limit` test ids the oldest sequence is forgotten.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._by_test: dict[str, DeterministicIds] = {}
        self.limit = limit

    def for_test(self, test_id: str | None) -> DeterministicIds | None:
        if not test_id:
            return None
        sequence = self._by_test.get(test_id)
        if sequence is None:
            sequence = self._by_test[test_id] = DeterministicIds(test_id)
            if len(self._by_test) > self.limit:
                self._by_test.pop(next(iter(self._by_test)))
        return sequence


def use_sequence(sequence: DeterministicIds | None) -> None:
    """Make ids in the current context come from `sequence` (deterministic), or random with `None`."""
    _deterministic.set(sequence)


def _hex(length: int) -> str:
    det = _deterministic.get()
    if det is not None:
        return det.next_hex(length)
    return secrets.token_hex(length // 2)


def new_id(kind: str) -> str:
    """A fresh id for `kind` (a key of PREFIXES)."""
    return f"{PREFIXES[kind]}_{_hex(48)}"


def new_call_id() -> str:
    return f"call_{_hex(24)}"
