"""The one place where error shapes live.

Every failure that reaches a client is an `APIError` rendered as the OpenAI envelope:
`{"error": {"message", "type", "param", "code"}}` with the matching HTTP status.
"""

from __future__ import annotations

import re
from typing import Any


class APIError(Exception):
    """An error that is shown to the client as an OpenAI error envelope."""

    status_code: int = 500
    error_type: str = "server_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 status_code: int | None = None, error_type: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        if status_code is not None:
            self.status_code = status_code
        if error_type is not None:
            self.error_type = error_type

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}

    def envelope(self) -> dict[str, Any]:
        return {"error": self.to_dict()}


class InvalidRequest(APIError):
    status_code = 400
    error_type = "invalid_request_error"


class NotFound(APIError):
    status_code = 404
    error_type = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = "not_found") -> None:
        super().__init__(message, param=param, code=code)


def is_client_fault(status: int | None) -> bool:
    """Whether an upstream HTTP status means the request itself was wrong (the client can fix it), as
    opposed to the upstream or its configuration failing (auth, timeouts, rate limits, 5xx)."""
    return status is not None and 400 <= status < 500 and status not in (401, 403, 408, 429)


class UpstreamError(APIError):
    """The model provider (or a tool's remote service) failed: unreachable, 5xx, timeout, cut stream.

    `status_code` is what we answer our own client with (502 by default, or the upstream's 4xx when the
    upstream rejected the request for a reason the client can fix).
    """

    status_code = 502
    error_type = "server_error"

    def __init__(self, message: str, *, upstream_status: int | None = None, code: str | None = "upstream_error",
                 param: str | None = None, body: Any = None) -> None:
        status = 502
        error_type = "server_error"
        if is_client_fault(upstream_status):
            status, error_type = upstream_status, "invalid_request_error"
        super().__init__(message, param=param, code=code, status_code=status, error_type=error_type)
        self.upstream_status = upstream_status
        self.body = body


def shorten(text: str, limit: int = 64) -> str:
    """A user-supplied id or name as error messages quote it: cut to `limit` characters + '...'."""
    return text if len(text) <= limit else text[:limit] + "..."


def not_found(kind: str, ident: str, param: str | None = None) -> NotFound:
    """The 404 for an unknown id, worded as OpenAI words it."""
    return NotFound(f"{kind} with id '{shorten(ident)}' not found.", param=param)


# pydantic puts the member of a union (or a validator's name) into an error's location: not a parameter name
_TYPE_TAG = re.compile(r"^(str|int|float|bool|none|[a-z-]+\[.*\]|function-\w+)$")


def invalid_request_from(errors: list[dict[str, Any]]) -> InvalidRequest:
    """A 400 naming the parameter, from pydantic's validation errors (the first one)."""
    first = errors[0]
    loc = [p for p in first.get("loc", ()) if not (isinstance(p, str) and _TYPE_TAG.match(p))]
    param = ""
    for part in loc:
        if isinstance(part, int):
            param += f"[{part}]"
        else:
            param += ("." if param else "") + str(part)
    message = first.get("msg", "Invalid value")
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return InvalidRequest(f"Invalid value for '{param}': {message}" if param else message,
                          param=param or None, code="invalid_value")
