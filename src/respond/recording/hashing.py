"""The identity of a recorded request: sha256 over method, endpoint, normalized body and test id.

The body is normalized so that incidental differences do not change the hash: keys sorted, floats rounded
to FLOAT_DIGITS decimals (and integral floats written as ints, so 1 and 1.0 agree). The hash is always
computed on the scrubbed request (see scrub.py), which is exactly what a recording file stores, so a file's
hash can be recomputed from its content alone.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

FLOAT_DIGITS = 5


def normalize(value: Any) -> Any:
    """Round floats (recursively) so that the hash does not depend on the last bits of a float."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return value
        rounded = round(value, FLOAT_DIGITS)
        return int(rounded) if rounded.is_integer() else rounded
    if isinstance(value, dict):
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    return value


def canonical(value: Any) -> str:
    return json.dumps(normalize(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_hash(method: str, endpoint: str, body: Any, test_id: str | None) -> str:
    """sha256 hex of the normalized request. The test id takes part only when one is set."""
    key: dict[str, Any] = {"method": method.upper(), "endpoint": endpoint, "body": body}
    if test_id:
        key["test_id"] = test_id
    return hashlib.sha256(canonical(key).encode()).hexdigest()
