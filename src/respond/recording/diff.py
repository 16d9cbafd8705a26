"""Field-by-field differences between two JSON values, as readable lines.

`diff(a, b)` -> ["messages[1].content: 'a' != 'b'", "temperature: 0.7 != <absent>", ...]. Used by replay
miss diagnostics (request vs nearest recording) and by `respond recordings diff`.
"""

from __future__ import annotations

from typing import Any

ABSENT = "<absent>"
_MAX_REPR = 80
_WINDOW = 30


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 1] + "…"


def _strings(a: str, b: str) -> str:
    if len(repr(a)) <= _MAX_REPR and len(repr(b)) <= _MAX_REPR:
        return f"{a!r} != {b!r}"
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    start = max(0, at - _WINDOW)

    def window(s: str) -> str:
        piece = s[start: at + _WINDOW]
        return ("…" if start else "") + repr(piece) + ("…" if at + _WINDOW < len(s) else "")

    return f"{window(a)} != {window(b)} (first difference at character {at}; lengths {len(a)} and {len(b)})"


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Every leaf where `a` and `b` differ, as `path: repr(a) != repr(b)`. Empty when they are equal."""
    label = path or "<root>"
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in a:
            if key in b:
                out.extend(diff(a[key], b[key], _join(path, key)))
            else:
                out.append(f"{_join(path, key)}: {_short(a[key])} != {ABSENT}")
        for key in b:
            if key not in a:
                out.append(f"{_join(path, key)}: {ABSENT} != {_short(b[key])}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        out = []
        for i in range(max(len(a), len(b))):
            if i >= len(a):
                out.append(f"{_join(path, i)}: {ABSENT} != {_short(b[i])}")
            elif i >= len(b):
                out.append(f"{_join(path, i)}: {_short(a[i])} != {ABSENT}")
            else:
                out.extend(diff(a[i], b[i], _join(path, i)))
        return out
    if type(a) is type(b) and a == b:
        return []
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
            and not isinstance(b, bool) and a == b:
        return []
    if isinstance(a, str) and isinstance(b, str):
        return [f"{label}: {_strings(a, b)}"]
    return [f"{label}: {_short(a)} != {_short(b)}"]
