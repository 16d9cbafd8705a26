"""Attribute filters (OpenAI's ComparisonFilter / CompoundFilter) compiled to a SQL condition with bound
parameters, so they run inside the search query (before the top-k cut, not after it).

Comparison: `{"key", "type": eq|ne|gt|gte|lt|lte|in|nin, "value"}`; compound: `{"type": and|or, "filters"}`.
Ordering comparisons only match attributes of the value's kind (numbers with numbers, strings with strings);
`ne` and `nin` also match chunks that lack the key, as "not equal" reads.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from respond.errors import InvalidRequest

COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")
_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


MAX_FILTER_TERMS = 100  # comparisons in one filter: SQLite's expression depth limit is 1000
MAX_KEY_LENGTH = 64  # as OpenAI's attribute keys


def validate_filters(value: Any, param: str = "filters") -> dict[str, Any] | None:
    if value is None:
        return None
    _check(value, param)
    if _terms(value) > MAX_FILTER_TERMS:
        raise InvalidRequest(f"Invalid '{param}': a filter may hold at most {MAX_FILTER_TERMS} comparisons.",
                             param=param, code="invalid_value")
    return value


def _terms(f: dict[str, Any]) -> int:
    return sum(_terms(sub) for sub in f["filters"]) if f["type"] in ("and", "or") else 1


def _text_ok(value: str) -> bool:
    return "\x00" not in value  # PostgreSQL text cannot hold NUL


def _check(f: Any, param: str) -> None:
    if not isinstance(f, dict):
        raise InvalidRequest(f"Invalid '{param}': expected an object.", param=param, code="invalid_type")
    kind = f.get("type")
    if kind in ("and", "or"):
        filters = f.get("filters")
        if not isinstance(filters, list) or not filters:
            raise InvalidRequest(f"Invalid '{param}.filters': expected a non-empty array.", param=f"{param}.filters",
                                 code="invalid_value")
        for i, sub in enumerate(filters):
            _check(sub, f"{param}.filters[{i}]")
        return
    if kind not in COMPARISONS:
        raise InvalidRequest(f"Invalid '{param}.type': expected one of {', '.join(COMPARISONS + ('and', 'or'))}.",
                             param=f"{param}.type", code="invalid_value")
    key = f.get("key")
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH or any(c in key for c in '"\\\x00'):
        raise InvalidRequest(f"Invalid '{param}.key': expected an attribute name of 1 to {MAX_KEY_LENGTH} "
                             "characters without quotes, backslashes or NUL.", param=f"{param}.key",
                             code="invalid_value")
    value = f.get("value")
    if any(isinstance(v, str) and not _text_ok(v) for v in (value if isinstance(value, list) else [value])):
        raise InvalidRequest(f"Invalid '{param}.value': strings cannot contain NUL characters.",
                             param=f"{param}.value", code="invalid_value")
    scalar = (str, int, float, bool)
    if kind in ("in", "nin"):
        if not isinstance(value, list) or not value or not all(isinstance(v, scalar) for v in value):
            raise InvalidRequest(f"Invalid '{param}.value': '{kind}' expects a non-empty array of strings, numbers "
                                 "or booleans.", param=f"{param}.value", code="invalid_value")
    elif not isinstance(value, scalar):
        raise InvalidRequest(f"Invalid '{param}.value': expected a string, number or boolean.",
                             param=f"{param}.value", code="invalid_value")
    elif kind in _OPS and isinstance(value, bool):
        raise InvalidRequest(f"Invalid '{param}.value': '{kind}' compares numbers or strings.",
                             param=f"{param}.value", code="invalid_value")


def compile_filters(f: dict[str, Any] | None, dialect: str, column: str = "c.attributes") -> tuple[str, dict[str, Any]]:
    """`(sql, params)`; `("1=1", {})` without a filter. Parameter names are `f0`, `f1`..."""
    if not f:
        return "1=1", {}
    params: dict[str, Any] = {}
    names = (f"f{i}" for i in itertools.count())
    sql = _compile(f, dialect, column, params, names)
    return sql, params


def _compile(f: dict[str, Any], dialect: str, col: str, params: dict[str, Any], names: Any) -> str:
    kind = f["type"]
    if kind in ("and", "or"):
        parts = [_compile(sub, dialect, col, params, names) for sub in f["filters"]]
        return "(" + f" {kind.upper()} ".join(parts) + ")"
    key = next(names)
    params[key] = f["key"] if dialect == "postgresql" else '$."' + f["key"].replace('"', '\\"') + '"'
    value = f["value"]

    def bind(v: Any) -> str:
        name = next(names)
        params[name] = json.dumps(v) if dialect == "postgresql" else v
        return f"CAST(:{name} AS jsonb)" if dialect == "postgresql" else f":{name}"

    if dialect == "postgresql":
        attr = f"({col} -> :{key})"
        if kind == "eq":
            return f"{attr} = {bind(value)}"
        if kind == "ne":
            return f"{attr} IS DISTINCT FROM {bind(value)}"
        if kind in ("in", "nin"):
            members = ", ".join(bind(v) for v in value)
            return f"{attr} IN ({members})" if kind == "in" else f"({attr} IS NULL OR {attr} NOT IN ({members}))"
        name = next(names)
        params[name] = value
        if isinstance(value, str):
            return f"(CASE WHEN jsonb_typeof({attr}) = 'string' THEN {col} ->> :{key} END) {_OPS[kind]} :{name}"
        params[name] = float(value)
        return (f"(CASE WHEN jsonb_typeof({attr}) = 'number' THEN ({col} ->> :{key})::float8 END) "
                f"{_OPS[kind]} :{name}")

    attr = f"json_extract({col}, :{key})"
    kind_of = f"json_type({col}, :{key})"
    if kind == "eq":
        return f"({attr} = {bind(value)} AND {kind_of} {_sqlite_type(value)})"
    if kind == "ne":
        return f"NOT coalesce({attr} = {bind(value)} AND {kind_of} {_sqlite_type(value)}, 0)"
    if kind in ("in", "nin"):
        members = ", ".join(bind(v) for v in value)
        return f"{attr} IN ({members})" if kind == "in" else f"({attr} IS NULL OR {attr} NOT IN ({members}))"
    guard = "= 'text'" if isinstance(value, str) else "IN ('integer', 'real')"
    return f"({kind_of} {guard} AND {attr} {_OPS[kind]} {bind(value)})"


def _sqlite_type(value: Any) -> str:
    if isinstance(value, bool):
        return "IN ('true', 'false')"
    if isinstance(value, str):
        return "= 'text'"
    return "IN ('integer', 'real')"
