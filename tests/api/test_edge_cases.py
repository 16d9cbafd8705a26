"""Edge cases found in review: malformed pass-through bodies, a client gone before the first event."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from respond.responses.request import parse_create_request
from respond.services import Services
from respond.storage.tables import DEFAULT_OWNER
from tests.support.conformance import validate_error_envelope
from tests.support.server import make_config, scripted_provider
from tests.support.upstream import reply

LOCAL = "local/smollm2-135m"
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(("extra", "param"), [
    ({"tools": ["x", {"type": "function", "function": {"name": "f"}}]}, "tools[0]"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function",
                                                                                  "function": "f"}},
     "tool_choice"),
    ({"stream_options": "yes", "stream": True}, "stream_options"),
    ({"response_format": {"type": "json_schema", "json_schema": "nope"}}, "response_format"),
    ({"messages": [{"role": "assistant", "content": "", "tool_calls": [{"function": "f"}]}]},
     "messages[0].tool_calls"),
])
def test_malformed_chat_bodies_to_the_embedded_model_are_400(server, extra, param) -> None:
    body = {"model": LOCAL, "messages": MESSAGES, **extra}
    response = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=30)
    assert response.status_code == 400, response.text
    validate_error_envelope(response.json(), 400, param=param)


def test_allowed_tools_must_be_a_list(server) -> None:
    response = httpx.post(f"{server.base_url}/responses", json={
        "model": "up/scripted", "input": "x", "tools": [{"type": "function", "name": "f"}],
        "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": 5}})
    assert response.status_code == 400
    validate_error_envelope(response.json(), 400, param="tool_choice.tools")


def test_embedding_models_cannot_answer_responses(server) -> None:
    response = httpx.post(f"{server.base_url}/responses", json={"model": "local/all-minilm-l6-v2", "input": "x"})
    assert response.status_code == 400
    validate_error_envelope(response.json(), 400, param="model", code="model_not_supported")


async def test_a_client_gone_before_the_first_event_leaves_a_cancelled_response(tmp_path: Path, upstream) -> None:
    services = await Services.start(make_config(tmp_path, [scripted_provider(upstream)]))
    try:
        upstream.script(reply("never read"))
        prepared = await services.responses.prepare(
            parse_create_request({"model": "up/scripted", "input": "x", "stream": True}), stream=True,
            owner=DEFAULT_OWNER)
        batches = services.responses.stream(prepared)
        first = await anext(batches)
        assert [e["type"] for e in first] == ["response.created", "response.in_progress"]
        await batches.aclose()  # the client went away while the first frames were being written
        stored = await services.responses.get(prepared.run.response["id"], owner=DEFAULT_OWNER)
        assert stored["status"] == "cancelled"
    finally:
        await services.close()
