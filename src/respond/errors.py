"""The one place where error shapes live.

Every failure that reaches a client is an `APIError` rendered as the OpenAI envelope:
`{"error": {"message", "type", "param", "code"}}` with the matching HTTP status.
"""

from __future__ import annotations

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


class Conflict(APIError):
    status_code = 409
    error_type = "invalid_request_error"


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
        if upstream_status is not None and 400 <= upstream_status < 500 and upstream_status not in (401, 403, 408, 429):
            status, error_type = upstream_status, "invalid_request_error"
        super().__init__(message, param=param, code=code, status_code=status, error_type=error_type)
        self.upstream_status = upstream_status
        self.body = body


def not_found(kind: str, ident: str, param: str | None = None) -> NotFound:
    return NotFound(f"{kind} with id '{ident}' not found.", param=param)
