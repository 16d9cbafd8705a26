"""WebSocket faults from outside conformance runs (issue 6): a continuation that fails validation evicts what it
continued; an event that cannot be sent does not leave the connection open but deaf; request parameters are
checked as over HTTP. Over a real websocket with the official SDK's `responses.connect()`."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
import websockets

from respond import jsonutil
from tests.api.test_websocket import MODEL, TIMEOUT, check_error, check_response_stream, next_event, turn
from tests.support.conformance import validate_event
from tests.support.upstream import reply, tool_call


@pytest.fixture
def aclient(server: Any, request: pytest.FixtureRequest) -> openai.AsyncOpenAI:
    return server.async_client(request.node.nodeid)


async def test_continuation_failing_validation_evicts_the_previous_response(aclient: openai.AsyncOpenAI,
                                                                            upstream: Any) -> None:
    tools = [{"type": "function", "name": "get_time"}]
    upstream.script(reply(tool_call("get_time", "{}", id="call_T")))
    async with aclient.responses.connect() as conn:
        first = check_response_stream(await turn(conn, model=MODEL, input="Time?", tools=tools, store=False))
        assert first["output"][0]["call_id"] == "call_T"
        events = await turn(conn, model=MODEL, store=False, tools=tools, previous_response_id=first["id"],
                            input=[{"type": "function_call_output", "call_id": "call_NOPE", "output": "12:00"}])
        check_error(events, "invalid_value", "input")
        # the right output now finds nothing to continue: the failed continuation evicted it
        events = await turn(conn, model=MODEL, store=False, tools=tools, previous_response_id=first["id"],
                            input=[{"type": "function_call_output", "call_id": "call_T", "output": "12:00"}])
        check_error(events, "previous_response_not_found", "previous_response_id", status=404)
        fresh = check_response_stream(await turn(conn, model=MODEL, input="Still there?", store=False))
        assert fresh["output"][0]["content"][0]["text"] == "echo: Still there?"
    assert len(upstream.chat_bodies) == 2


async def test_an_event_that_cannot_be_serialized_closes_the_connection_1011(
        aclient: openai.AsyncOpenAI, upstream: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A fault that valid input cannot provoke (a bug): one event the serializer refuses.
    real_dumps = jsonutil.dumps

    def failing_dumps(obj: Any) -> str:
        if isinstance(obj, dict) and obj.get("type") == "response.output_text.delta":
            raise TypeError("Type is not JSON serializable: object")
        return real_dumps(obj)

    monkeypatch.setattr(jsonutil, "dumps", failing_dumps)
    upstream.script(reply("never ", "seen"))
    async with aclient.responses.connect() as conn:
        await conn.response.create(model=MODEL, input="hello")
        seen = []
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                seen.append(await next_event(conn))
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    types = [e["type"] for e in seen]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "error" and seen[-1]["code"] == "internal_error"
    validate_event(seen[-1])
    assert "response.output_text.delta" not in types


async def test_websocket_frames_check_parameters_as_http_does(aclient: openai.AsyncOpenAI, upstream: Any) -> None:
    async with aclient.responses.connect() as conn:
        await conn.send({"type": "response.create", "model": MODEL, "input": "x",  # type: ignore[typeddict-item]
                         "temprature": 0.5})
        event = check_error([await asyncio.wait_for(next_event(conn), TIMEOUT)], "unknown_parameter", "temprature")
        assert event["message"] == "Unknown parameter: 'temprature'."
        await conn.send({"type": "response.create", "model": MODEL, "input": "x",  # type: ignore[typeddict-item]
                         "store": "false"})
        check_error([await next_event(conn)], "invalid_type", "store")
        # Codex CLI's client_metadata is accepted
        await conn.send({"type": "response.create", "model": MODEL, "input": "fine",  # type: ignore[typeddict-item]
                         "client_metadata": {"session": "s1"}})
        events = [await next_event(conn)]
        while events[-1]["type"] not in ("response.completed", "response.failed", "error"):
            events.append(await next_event(conn))
        ok = check_response_stream(events)
        assert ok["output"][0]["content"][0]["text"] == "echo: fine"
    assert len(upstream.chat_bodies) == 1
