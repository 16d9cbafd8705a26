"""Id formats, in one place.

Ids look like OpenAI's (`resp_<hex>`, `msg_<hex>`, `fc_<hex>`, `call_<alnum>`...). For record/replay, the
generator can be made deterministic per test (`seed_ids(test_id)`): the same test then produces the same
ids on every run, so requests that embed ids hash identically.
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
    "call": "call",
    "reasoning": "rs",
    "item": "item",
    "file": "file",
    "vector_store": "vs",
    "conversation": "conv",
    "chat": "chatcmpl",
}


@dataclass
class _DeterministicIds:
    seed: str
    counter: int = field(default=0)

    def next_hex(self, length: int) -> str:
        self.counter += 1
        return hashlib.sha256(f"{self.seed}:{self.counter}".encode()).hexdigest()[:length]


_deterministic: contextvars.ContextVar[_DeterministicIds | None] = contextvars.ContextVar("respond_ids", default=None)
# One counter per seed for the life of the process: a test's successive requests continue its sequence.
_sequences: dict[str, _DeterministicIds] = {}


def seed_ids(seed: str | None) -> None:
    """Make ids deterministic for the current context (a test), or random again with `None`."""
    _deterministic.set(_sequences.setdefault(seed, _DeterministicIds(seed)) if seed else None)


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
