"""Background responses over HTTP with the official SDK: create, poll, stream, resume, cancel, errors.

Both backends (the session servers). Processes, restarts and kill -9: tests/api/test_background_processes.py.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from tests.api.wire import parse_frames
from tests.support.conformance import validate_response, validate_stream
from tests.support.server import scripted_provider
from tests.support.upstream import delay, reply

MODEL = "up/scripted"


def wait_status(client: openai.OpenAI, response_id: str, statuses: tuple[str, ...], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        response = client.responses.retrieve(response_id)
        if response.status in statuses or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def resume(base_url: str, response_id: str, starting_after: int | None = None,
           timeout: float = 30) -> list[dict[str, Any]]:
    """GET /v1/responses/{id}?stream=true[&starting_after=N], read to the end, as raw events."""
    params: dict[str, Any] = {"stream": "true"}
    if starting_after is not None:
        params["starting_after"] = starting_after
    with httpx.stream("GET", f"{base_url}/responses/{response_id}", params=params, timeout=timeout) as r:
        assert r.status_code == 200, r.read()
        raw = r.read().decode()
    return parse_frames(raw) if raw else []


def test_background_create_returns_queued_then_completes(any_server, any_client, upstream) -> None:
    upstream.script(reply("Hello ", "from ", "the background"))
    raw = any_client.responses.with_raw_response.create(model=MODEL, input="hi", background=True)
    queued = raw.http_response.json()
    validate_response(queued)
    assert queued["status"] == "queued" and queued["background"] is True and queued["output"] == []
    done = wait_status(any_client, queued["id"], ("completed", "failed"))
    assert done.status == "completed", done.error
    assert done.output_text == "Hello from the background"
    assert done.background is True and done.created_at == queued["created_at"]
    validate_response(any_client.responses.with_raw_response.retrieve(queued["id"]).http_response.json())
    # chainable like any stored response
    upstream.script(reply("again"))
    follow_up = any_client.responses.create(model=MODEL, input="more", previous_response_id=done.id)
    assert follow_up.output_text == "again"
    messages = upstream.chat_bodies[-1]["messages"]
    assert [m["content"] for m in messages if m["role"] == "assistant"] == ["Hello from the background"]


def test_background_stream_then_resume_at_several_points(any_server, any_client, upstream) -> None:
    upstream.script(reply("one ", "two ", "three"))
    stream = any_client.responses.create(model=MODEL, input="count", background=True, stream=True)
    events = [event.model_dump(mode="json", exclude_unset=True) for event in stream]
    types = [e["type"] for e in events]
    assert types[:3] == ["response.created", "response.queued", "response.in_progress"], types
    assert types[-1] == "response.completed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["response"]["status"] == "queued"
    response_id = events[0]["response"]["id"]

    full = resume(any_server.base_url, response_id)
    final = validate_stream(full)  # the stored events are a valid stream on their own
    assert final["status"] == "completed" and [e["type"] for e in full] == types
    for after in (0, 1, 4, len(full) - 2, len(full) - 1):
        replay = resume(any_server.base_url, response_id, starting_after=after)
        assert replay == full[after + 1:], after
    # the SDK's own resumption call
    sdk = any_client.responses.retrieve(response_id, stream=True, starting_after=2)
    assert [e.sequence_number for e in sdk] == list(range(3, len(full)))


def test_resume_follows_a_running_response_live(any_server, any_client, upstream) -> None:
    upstream.script(reply(*[f"w{i} " for i in range(12)], chunk_delay=0.1))
    created = any_client.responses.create(model=MODEL, input="slow", background=True)
    running = wait_status(any_client, created.id, ("in_progress",))
    assert running.status == "in_progress"
    events = resume(any_server.base_url, created.id, starting_after=1)  # from in_progress on, live
    assert events[0]["sequence_number"] == 2 and events[-1]["type"] == "response.completed"
    assert [e["sequence_number"] for e in events] == list(range(2, 2 + len(events)))
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "".join(f"w{i} " for i in range(12))


def test_cancel_a_running_background_response(any_server, any_client, upstream) -> None:
    upstream.script(reply(*[f"w{i} " for i in range(100)], chunk_delay=0.1))
    created = any_client.responses.create(model=MODEL, input="long", background=True)
    assert wait_status(any_client, created.id, ("in_progress",)).status == "in_progress"
    time.sleep(0.5)  # some text is produced
    cancelled = any_client.responses.cancel(created.id)
    assert cancelled.status == "cancelled"
    assert cancelled.output_text.startswith("w0 ") and len(cancelled.output_text) < len("w0 ") * 100
    again = any_client.responses.cancel(created.id)  # idempotent
    assert again.status == "cancelled" and again.output_text == cancelled.output_text
    assert any_client.responses.retrieve(created.id).status == "cancelled"
    assert any(r.disconnected for r in upstream.requests)  # the upstream call was stopped
    events = resume(any_server.base_url, created.id)  # the stream ends too
    assert events[0]["type"] == "response.created"


def test_cancel_a_queued_background_response(make_server, upstream) -> None:
    server = make_server([scripted_provider(upstream)], background={"workers": 0})  # nothing runs here
    client = server.client()
    created = client.responses.create(model=MODEL, input="never run", background=True)
    assert client.responses.retrieve(created.id).status == "queued"
    with pytest.raises(openai.BadRequestError) as info:  # not finished: nothing to continue from yet
        client.responses.create(model=MODEL, input="next", previous_response_id=created.id)
    assert info.value.body["code"] == "previous_response_in_progress"
    cancelled = client.responses.cancel(created.id)
    assert cancelled.status == "cancelled" and cancelled.output == []
    validate_response(client.responses.with_raw_response.cancel(created.id).http_response.json())
    assert upstream.chat_bodies == []
    events = resume(server.base_url, created.id, starting_after=1)
    assert events == []


def test_background_errors(any_server, any_client, upstream) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        any_client.responses.create(model=MODEL, input="x", background=True, store=False)
    assert info.value.body["param"] == "background" and "store" in info.value.body["message"]
    with pytest.raises(openai.NotFoundError) as info:  # bad input is still checked before queueing
        any_client.responses.create(model=MODEL, input="x", background=True, previous_response_id="resp_nope")
    assert info.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.NotFoundError):
        any_client.responses.cancel("resp_unknown")
    upstream.script(reply("fg"))
    foreground = any_client.responses.create(model=MODEL, input="x")
    with pytest.raises(openai.BadRequestError) as info:
        any_client.responses.cancel(foreground.id)
    assert "background" in info.value.body["message"] and info.value.body["param"] == "response_id"
    with pytest.raises(openai.BadRequestError) as info:
        any_client.responses.retrieve(foreground.id, stream=True)
    assert info.value.body["param"] == "stream"
    upstream.script(reply("bg"))
    done = any_client.responses.create(model=MODEL, input="x", background=True)
    assert wait_status(any_client, done.id, ("completed",)).status == "completed"
    with pytest.raises(openai.BadRequestError) as info:
        any_client.responses.cancel(done.id)
    assert "completed" in info.value.body["message"]


def test_background_upstream_failure_ends_failed(any_server, any_client, upstream) -> None:
    from tests.support.upstream import error

    upstream.script(error(500, "boom"))
    created = any_client.responses.create(model=MODEL, input="x", background=True)
    failed = wait_status(any_client, created.id, ("failed",))
    assert failed.status == "failed" and failed.error is not None
    events = resume(any_server.base_url, created.id)
    assert events[-1]["type"] == "response.failed"
    validate_stream(events)


def test_foreground_stored_response_is_in_the_database_while_it_runs(any_server, any_client, upstream) -> None:
    """A streamed response's id is seen in response.created: its row is in the database from the start (a
    non-streamed client learns the id only at the end, so that case writes nothing extra)."""
    upstream.script(delay(1.0, reply("late")))
    import threading

    got: dict[str, Any] = {}

    def run() -> None:
        for event in any_client.responses.create(model=MODEL, input="x", stream=True):
            if event.type == "response.completed":
                got["r"] = event.response

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    row = None
    while row is None and time.monotonic() < deadline:
        page = httpx.get(f"{any_server.base_url}/responses", params={"limit": 1}).json()
        row = next((r for r in page["data"] if r["status"] == "in_progress"), None)
        time.sleep(0.02)
    assert row is not None  # listed while running: the row was written when it started
    thread.join(10)
    assert got["r"].status == "completed"
    assert any_client.responses.retrieve(got["r"].id).output_text == "late"


def test_deleting_a_background_response_deletes_its_events(any_server, any_client, upstream) -> None:
    upstream.script(reply("x"))
    created = any_client.responses.create(model=MODEL, input="x", background=True)
    wait_status(any_client, created.id, ("completed",))
    any_client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        any_client.responses.retrieve(created.id, stream=True)



def test_background_runs_server_tools(make_server, upstream, mcp_experiments) -> None:
    from tests.api.test_mcp import LOOPBACK, mcp_tool
    from tests.support.upstream import tool_call

    server = make_server([scripted_provider(upstream)], mcp=LOOPBACK)
    client = server.client()
    upstream.script(reply(tool_call("get_experiment_id", {"experiment_name": "boiling_point"}, id="call_1")),
                    reply("The ID is exp_004."))
    created = client.responses.create(model=MODEL, input="ID of boiling_point?", background=True,
                                      tools=[mcp_tool(mcp_experiments)])
    done = wait_status(client, created.id, ("completed", "failed"))
    assert done.status == "completed" and done.output_text == "The ID is exp_004."
    assert [i.type for i in done.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert mcp_experiments.calls == [("get_experiment_id", {"experiment_name": "boiling_point"})]
    events = resume(server.base_url, created.id)
    validate_stream(events)
    assert "response.mcp_call.completed" in [e["type"] for e in events]


def test_a_streamed_background_response_outlives_its_client(any_server, any_client, upstream) -> None:
    upstream.script(reply(*[f"w{i} " for i in range(10)], chunk_delay=0.05))
    with httpx.stream("POST", f"{any_server.base_url}/responses", timeout=30,
                      json={"model": MODEL, "input": "x", "background": True, "stream": True}) as r:
        first = next(line for line in r.iter_lines() if line.startswith("data: "))
    response_id = httpx.Response(200, content=first[6:]).json()["response"]["id"]  # then the client left
    done = wait_status(any_client, response_id, ("completed", "failed", "cancelled"))
    assert done.status == "completed" and done.output_text == "".join(f"w{i} " for i in range(10))


def test_graceful_shutdown_ends_running_background_responses_failed(tmp_path, upstream) -> None:
    from tests.support.server import make_config, start_server

    config = make_config(tmp_path, [scripted_provider(upstream)])
    first = start_server(config)
    upstream.script(delay(30, reply("never")))
    client = first.client()
    created = client.responses.create(model=MODEL, input="x", background=True)
    assert wait_status(client, created.id, ("in_progress",)).status == "in_progress"
    first.stop()
    second = start_server(make_config(tmp_path, [scripted_provider(upstream)]))
    try:
        stopped = second.client().responses.retrieve(created.id)
        assert stopped.status == "failed" and "shut down" in stopped.error.message
        assert resume(second.base_url, created.id)[-1]["type"] == "response.failed"
    finally:
        second.stop()


def test_queued_mcp_credentials_are_sealed_in_the_database(tmp_path, upstream) -> None:
    """A background response's request waits in the database for a worker: its MCP `authorization` and
    `headers` are stored sealed with the server key, never in clear, and the worker (here another server
    process's app on the same data dir, after the first one stopped) opens them and calls the server with them."""
    from respond.config import BackgroundConfig
    from tests.api.test_mcp import LOOPBACK, mcp_tool
    from tests.support.mcp_server import experiments_server, start_mcp
    from tests.support.server import make_config, start_server
    from tests.support.upstream import tool_call

    token, header = "tok-sealed-9876543210", "hdr-sealed-5555555555"
    guarded = start_mcp(experiments_server(), token=token)
    data = tmp_path / "data"
    try:
        first = start_server(make_config(data, [scripted_provider(upstream)], mcp=LOOPBACK,
                                         background=BackgroundConfig(workers=0)))
        try:
            created = first.client().responses.create(
                model=MODEL, input="id?", background=True,
                tools=[mcp_tool(guarded, authorization=token, headers={"X-Extra": header})])
            assert created.status == "queued"
        finally:
            first.stop()
        stored = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
        assert token.encode() not in stored and header.encode() not in stored
        upstream.script(reply(tool_call("get_experiment_id", {"experiment_name": "boiling_point"}, id="c1")),
                        reply("exp_004."))
        second = start_server(make_config(data, [scripted_provider(upstream)], mcp=LOOPBACK))
        try:
            done = wait_status(second.client(), created.id, ("completed", "failed"))
        finally:
            second.stop()
        assert done.status == "completed" and [i.type for i in done.output] == ["mcp_list_tools", "mcp_call",
                                                                                  "message"]
        assert done.output[1].output == "exp_004"  # the guarded server accepted the opened token
        assert guarded.calls == [("get_experiment_id", {"experiment_name": "boiling_point"})]
        stored = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
        assert token.encode() not in stored and header.encode() not in stored
    finally:
        guarded.stop()
