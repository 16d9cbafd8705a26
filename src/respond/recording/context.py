"""The id of the test the current request belongs to (None outside tests).

The API middleware sets it from the `X-Respond-Test-Id` request header. The recorder reads it: the test id
is part of a recording's hash, so two tests sending the same body get separate recordings.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

HEADER = "X-Respond-Test-Id"

test_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("respond_test_id", default=None)


@contextmanager
def use_test_id(value: str | None) -> Iterator[None]:
    """Run a block with `test_id` set to `value`, restoring the previous value afterwards."""
    token = test_id.set(value)
    try:
        yield
    finally:
        test_id.reset(token)
