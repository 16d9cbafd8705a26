"""Errors of the recording layer. They are test-setup failures, so they answer 500 with a clear code."""

from __future__ import annotations

from respond.errors import APIError


class RecordingError(APIError):
    status_code = 500
    error_type = "server_error"


class RecordingNotFound(RecordingError):
    """Replay found no recording for a request. The message says why (nearest recording + body diff)."""

    def __init__(self, message: str, *, request_hash: str, test_id: str | None, endpoint: str,
                 nearest: str | None = None, diff: list[str] | None = None) -> None:
        super().__init__(message, code="recording_not_found")
        self.request_hash = request_hash
        self.test_id = test_id
        self.endpoint = endpoint
        self.nearest = nearest
        self.diff = diff or []


class RecordingIncomplete(RecordingError):
    """A replayed stream was cut short when recorded (the consumer stopped early) and is read further now."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="recording_incomplete")
