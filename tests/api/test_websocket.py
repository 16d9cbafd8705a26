"""WebSocket mode on /v1/responses, driven by the official SDK's `client.responses.connect()`.

The real server (`server` fixture) with the scripted upstream at model "up/scripted". Raw frames are read
with `recv_bytes()` so every event is checked as the exact dict the server sent.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import openai
import pytest

from respond import jsonutil
from tests.support.conformance import validate_event, validate_stream
from tests.support.upstream import delay, error, reply

MODEL = "up/scripted"
TERMINAL = {"response.completed", "response.failed", "response.incomplete", "error"}
TIMEOUT = 30


async def next_event(conn: Any) -> dict[str, Any]:
    event = jsonutil.loads(await asyncio.wait_for(conn.recv_bytes(), TIMEOUT))
    assert conn.parse_event(jsonutil.dumpb(event)).type == event["type"]  # the SDK understands it
    return event


async def read_turn(conn: Any) -> list[dict[str, Any]]:
    """Events of one response (or one error event), up to the terminal one."""
    events = []
    while True:
        event = await next_event(conn)
        events.append(event)
        if event["type"] in TERMINAL:
            return events


async def turn(conn: Any, **params: Any) -> list[dict[str, Any]]:
    await conn.response.create(**params)
    return await read_turn(conn)


def check_response_stream(events: list[dict[str, Any]], status: str = "completed") -> dict[str, Any]:
    """A whole response stream: numbered 0, 1, 2... for this response alone, valid, ends `status`."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created"
    assert events[-1]["type"] == f"response.{status}"
    ids = {e["response"]["id"] for e in events if "response" in e}
    assert len(ids) == 1
    validate_stream(events)
    return events[-1]["response"]


def check_error(events: list[dict[str, Any]], code: str, param: str | None = None,
                status: int = 400) -> dict[str, Any]:
    assert len(events) == 1, events
    event = events[0]
    validate_event(event)
    assert event["type"] == "error"
    assert event["code"] == event["error"]["code"] == code
    assert event["param"] == event["error"]["param"] == param
    assert event["error"]["type"] == "invalid_request_error"
    assert event["message"] == event["error"]["message"] and event["message"]
    assert event["status"] == status
    return event


@pytest.fixture
def aclient(server: Any, request: pytest.FixtureRequest) -> openai.AsyncOpenAI:
    return server.async_client(request.node.nodeid)


async def test_two_turns_on_one_connection(aclient: openai.AsyncOpenAI, upstream: Any) -> None:
    upstream.script(reply("Sat", "urn."), reply("SATURN."))
    async with aclient.responses.connect() as conn:
        first = check_response_stream(await turn(conn, model=MODEL, input="Which planet has rings?",
                                                 instructions="Be brief."))
        second = check_response_stream(await turn(conn, model=MODEL, input="In capitals.",
                                                  previous_response_id=first["id"]))
    assert second["previous_response_id"] == first["id"] and second["id"] != first["id"]
    assert upstream.chat_bodies[1]["messages"] == [
        {"role": "user", "content": "Which planet has rings?"},
        {"role": "assistant", "content": "Saturn."},
        {"role": "user", "content": "In capitals."},
    ]
    assert (await aclient.responses.retrieve(first["id"])).output_text == "Saturn."
    assert (await aclient.responses.retrieve(second["id"])).output_text == "SATURN."


async def test_events_match_the_sse_stream(aclient: openai.AsyncOpenAI, upstream: Any) -> None:
    upstream.script(reply("Hel", "lo"))
    async with aclient.responses.connect() as conn:
        events = await turn(conn, model=MODEL, input="hi")
    check_response_stream(events)
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.content_part.added", "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed"]
    assert [e["delta"] for e in events if e["type"] == "response.output_text.delta"] == ["Hel", "lo"]
    assert all("stream_id" not in e for e in events)
    assert upstream.last_chat["stream"] is True


async def test_store_false_is_continuable_on_its_connection_only(server: Any, aclient: openai.AsyncOpenAI,
                                                                 upstream: Any, request: Any) -> None:
    upstream.script(reply("Blue."), reply("Still blue."))
    async with aclient.responses.connect() as conn:
        first = check_response_stream(await turn(conn, model=MODEL, input="Sky colour?", store=False))
        assert first["store"] is False
        second = check_response_stream(await turn(conn, model=MODEL, input="Sure?", store=False,
                                                  previous_response_id=first["id"]))
        assert second["output"][0]["content"][0]["text"] == "Still blue."
    assert upstream.last_chat["messages"][:2] == [{"role": "user", "content": "Sky colour?"},
                                                  {"role": "assistant", "content": "Blue."}]
    # another connection, and plain HTTP, never saw it
    async with aclient.responses.connect() as other:
        events = await turn(other, model=MODEL, input="Sure?", previous_response_id=first["id"])
        check_error(events, "previous_response_not_found", "previous_response_id", status=404)
    with pytest.raises(openai.NotFoundError) as err:
        await aclient.responses.create(model=MODEL, input="Sure?", previous_response_id=first["id"])
    assert err.value.body["code"] == "previous_response_not_found"
    with pytest.raises(openai.NotFoundError):
        await aclient.responses.retrieve(first["id"])
    assert len(upstream.chat_bodies) == 2


async def test_failed_continuation_evicts_the_previous_response(aclient: openai.AsyncOpenAI,
                                                                upstream: Any) -> None:
    upstream.script(reply("One."), error(500, "upstream exploded"))
    async with aclient.responses.connect() as conn:
        first = check_response_stream(await turn(conn, model=MODEL, input="Count.", store=False))
        failed = check_response_stream(await turn(conn, model=MODEL, input="Next.", store=False,
                                                  previous_response_id=first["id"]), status="failed")
        assert failed["error"]["code"] == "server_error"
        events = await turn(conn, model=MODEL, input="Again.", previous_response_id=first["id"])
        check_error(events, "previous_response_not_found", "previous_response_id", status=404)
        # the connection is still fine
        fresh = check_response_stream(await turn(conn, model=MODEL, input="Start over.", store=False))
        assert fresh["output"][0]["content"][0]["text"] == "echo: Start over."


async def test_client_errors_keep_the_connection_usable(aclient: openai.AsyncOpenAI, upstream: Any) -> None:
    async with aclient.responses.connect() as conn:
        check_error(await turn(conn, model="nowhere/none", input="x"), "model_not_found", "model")
        check_error(await turn(conn, model=MODEL, input="x", temperature=5), "invalid_value", "temperature")
        check_error(await turn(conn, model=MODEL, input="x", background=True), "unsupported_parameter",
                    "background")
        check_error(await turn(conn, model=MODEL), "missing_required_parameter", "input")
        check_error(await turn(conn, model=MODEL, input="x", previous_response_id="resp_nope"),
                    "previous_response_not_found", "previous_response_id", status=404)
        await conn.send_raw("{not json")
        check_error(await read_turn(conn), "invalid_json")
        await conn.send_raw("[1, 2]")
        check_error(await read_turn(conn), "invalid_value")
        await conn.send({"type": "session.update", "session": {}})  # type: ignore[typeddict-item]
        event = check_error(await read_turn(conn), "unsupported_event_type", "type")
        assert "session.update" in event["message"]
        await conn.response.steer(input="faster", previous_response_id="resp_x")
        steer = await next_event(conn)
        assert steer["type"] == "response.steer.failed"
        assert steer["error"]["code"] == "steering_not_supported"
        assert steer["steer"] == {"input": "faster", "previous_response_id": "resp_x"}
        ok = check_response_stream(await turn(conn, model=MODEL, input="finally"))
        assert ok["output"][0]["content"][0]["text"] == "echo: finally"
    assert len(upstream.chat_bodies) == 1


async def test_lanes_run_side_by_side_and_in_order_within(aclient: openai.AsyncOpenAI, upstream: Any) -> None:
    def answer(body: dict[str, Any]) -> Any:
        text = body["messages"][-1]["content"]
        return delay(0.6, reply(f"slow {text}")) if text.startswith("slow") else reply(f"fast {text}")

    upstream.script(answer, answer, answer)
    async with aclient.responses.connect() as conn:
        await conn.response.create(model=MODEL, input="slow 1", stream_id="a")
        await conn.response.create(model=MODEL, input="fast 2", stream_id="a")
        await conn.response.create(model=MODEL, input="fast 3", stream_id="b")
        by_lane: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
        done: list[str] = []
        while len(done) < 3:
            event = await next_event(conn)
            by_lane[event["stream_id"]].append(event)
            if event["type"] == "response.completed":
                done.append(event["response"]["output"][0]["content"][0]["text"])
    # lane b did not wait for lane a's slow response; lane a kept its order
    assert done == ["fast fast 3", "slow slow 1", "fast fast 2"]
    lane_a = by_lane["a"]
    split = next(i for i, e in enumerate(lane_a) if e["type"] == "response.completed") + 1
    check_response_stream(lane_a[:split])
    check_response_stream(lane_a[split:])
    check_response_stream(by_lane["b"])


async def test_disconnect_mid_response_cancels_it(aclient: openai.AsyncOpenAI, upstream: Any) -> None:
    upstream.script(reply("a", "b", "c", "d", "e", "f", chunk_delay=0.4))
    async with aclient.responses.connect() as conn:
        await conn.response.create(model=MODEL, input="talk slowly")
        while (event := await next_event(conn))["type"] != "response.output_text.delta":
            if event["type"] == "response.created":
                response_id = event["response"]["id"]
    await upstream.wait_disconnected(timeout=10)
    deadline = time.monotonic() + 10
    while True:
        try:
            stored = await aclient.responses.retrieve(response_id)
        except openai.NotFoundError:
            stored = None
        if stored is not None:
            break
        assert time.monotonic() < deadline, "the cancelled response was never stored"
        await asyncio.sleep(0.05)
    assert stored.status == "cancelled"
    assert len(upstream.chat_bodies) == 1


def test_sync_sdk_connection(server: Any, upstream: Any, request: pytest.FixtureRequest) -> None:
    upstream.script(reply("Sync", " works."))
    client = server.client(request.node.nodeid)
    with client.responses.connect() as conn:
        conn.response.create(model=MODEL, input="hello")
        events = []
        for event in conn:
            events.append(event)
            if event.type in TERMINAL:
                break
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "Sync works."
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert client.responses.retrieve(events[-1].response.id).output_text == "Sync works."
