"""Reading a Responses SSE stream as raw frames, to check the wire format and validate raw event dicts."""

from __future__ import annotations

import json
from typing import Any

import httpx


def post_stream(base_url: str, body: dict[str, Any], test_id: str | None = None) -> list[dict[str, Any]]:
    """POST /v1/responses with stream=true; return the events, checking each SSE frame's exact shape."""
    headers = {"X-Respond-Test-Id": test_id} if test_id else {}
    with httpx.stream("POST", f"{base_url}/responses", json={**body, "stream": True}, headers=headers,
                      timeout=60) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    return parse_frames(raw)


def parse_frames(raw: str) -> list[dict[str, Any]]:
    assert raw.endswith("\n\n"), "the stream must end with a complete frame"
    events = []
    for frame in raw[:-2].split("\n\n"):
        lines = frame.split("\n")
        assert len(lines) == 2, f"a frame is 'event: <type>' then one 'data: <json>' line, got {lines!r}"
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), lines
        event = json.loads(lines[1][len("data: "):])
        assert event["type"] == lines[0][len("event: "):], "event: line must name the data's type"
        events.append(event)
    return events


def create(client: Any, **kwargs: Any) -> Any:
    """`client.responses.create` whose raw JSON (not the SDK's re-dump) is validated; returns the parsed object."""
    from tests.support.conformance import validate_response

    raw = client.responses.with_raw_response.create(**kwargs)
    validate_response(raw.http_response.json())
    return raw.parse()


def retrieve(client: Any, response_id: str) -> Any:
    from tests.support.conformance import validate_response

    raw = client.responses.with_raw_response.retrieve(response_id)
    validate_response(raw.http_response.json())
    return raw.parse()
