"""MCP tools end to end: the openai SDK against the real server, a real MCP server (the `mcp` SDK's MCPServer
on loopback), and the scripted upstream standing in for the model."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import openai
import pytest

from respond.config import MCPConfig, ToolsConfig
from tests.api.wire import create, post_stream, retrieve
from tests.support.conformance import validate_stream
from tests.support.mcp_server import RunningMCP, experiments_server, start_mcp, utility_server
from tests.support.server import make_config, scripted_provider, start_server
from tests.support.upstream import reply, tool_call

MODEL = "up/scripted"
LOOPBACK = MCPConfig(allowed_urls=["http://127.0.0.1:"], list_timeout=3, call_timeout=2, connect_timeout=2)


@pytest.fixture(scope="module")
def mcp_respond(upstream_server: Any) -> Any:
    with tempfile.TemporaryDirectory(prefix="respond-mcp-") as tmp:
        running = start_server(make_config(Path(tmp), [scripted_provider(upstream_server.upstream)], mcp=LOOPBACK))
        yield running
        running.stop()


@pytest.fixture
def client(mcp_respond: Any, request: pytest.FixtureRequest) -> openai.OpenAI:
    return mcp_respond.client(request.node.nodeid)


@pytest.fixture(scope="module")
def utility() -> Any:
    running = start_mcp(utility_server())
    yield running
    running.stop()


def mcp_tool(server: RunningMCP, label: str = "experiments", **extra: Any) -> dict[str, Any]:
    return {"type": "mcp", "server_label": label, "server_url": server.url, "require_approval": "never", **extra}


def test_list_call_and_answer(client: openai.OpenAI, upstream, mcp_experiments: RunningMCP) -> None:
    upstream.script(reply(tool_call("get_experiment_id", {"experiment_name": "boiling_point"}, id="call_1")),
                    reply("The ID is exp_004."))
    r = create(client, model=MODEL, input="ID of boiling_point?", tools=[mcp_tool(mcp_experiments)])
    assert r.status == "completed"
    assert [i.type for i in r.output] == ["mcp_list_tools", "mcp_call", "message"]
    listing, call = r.output[0], r.output[1]
    assert [t.name for t in listing.tools] == ["get_user_id", "get_user_permissions", "check_file_access",
                                                "get_experiment_id", "get_experiment_results"]
    assert listing.tools[0].input_schema["properties"] == {"username": {"title": "Username", "type": "string"}}
    assert (call.server_label, call.name, call.output, call.error, call.status) == (
        "experiments", "get_experiment_id", "exp_004", None, "completed")
    assert json.loads(call.arguments) == {"experiment_name": "boiling_point"}
    assert r.output_text == "The ID is exp_004."
    first, second = upstream.chat_bodies
    assert [t["function"]["name"] for t in first["tools"]] == [t.name for t in listing.tools]
    assert first["tools"][0]["function"]["parameters"]["title"] == "get_user_idArguments"
    assert second["messages"][1:] == [
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "get_experiment_id", "arguments": '{"experiment_name":"boiling_point"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "exp_004"}]}]
    assert mcp_experiments.calls == [("get_experiment_id", {"experiment_name": "boiling_point"})]
    assert r.usage.input_tokens > 0 and r.tools[0].type == "mcp"


def test_streamed_events_in_order(mcp_respond: Any, upstream, mcp_experiments: RunningMCP,
                                  request: pytest.FixtureRequest) -> None:
    upstream.script(reply(tool_call("get_user_id", {"username": "charlie"})), reply("user_789"))
    events = post_stream(mcp_respond.base_url, {"model": MODEL, "input": "charlie?",
                                                "tools": [mcp_tool(mcp_experiments)]}, request.node.nodeid)
    final = validate_stream(events)
    assert final["status"] == "completed"
    kinds = [e["type"] for e in events if not e["type"].startswith(("response.output_text", "response.content_part"))]
    args = [k for k in kinds if k == "response.mcp_call_arguments.delta"]
    assert args
    assert kinds == ["response.created", "response.in_progress",
                     "response.output_item.added", "response.mcp_list_tools.in_progress",
                     "response.mcp_list_tools.completed", "response.output_item.done",
                     "response.output_item.added", *args, "response.mcp_call_arguments.done",
                     "response.mcp_call.in_progress", "response.mcp_call.completed", "response.output_item.done",
                     "response.output_item.added", "response.output_item.done", "response.completed"]
    done = [e for e in events if e["type"] == "response.output_item.done"]
    assert done[1]["item"]["output"] == "user_789" and done[1]["item"]["status"] == "completed"
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert added[1]["item"]["type"] == "mcp_call" and added[1]["item"]["status"] == "in_progress"


def test_allowed_tools_limit_the_listing_and_the_offer(client: openai.OpenAI, upstream,
                                                        mcp_experiments: RunningMCP) -> None:
    upstream.script(reply("no tools needed"))
    r = create(client, model=MODEL, input="hi", tools=[
        mcp_tool(mcp_experiments, allowed_tools={"tool_names": ["get_user_id", "check_file_access"]})])
    assert [t.name for t in r.output[0].tools] == ["get_user_id", "check_file_access"]
    assert [t["function"]["name"] for t in upstream.last_chat["tools"]] == ["get_user_id", "check_file_access"]
    r = create(client, model=MODEL, input="hi", tools=[mcp_tool(mcp_experiments, allowed_tools=["get_user_id"])])
    assert [t.name for t in r.output[0].tools] == ["get_user_id"]


def test_listing_is_reused_across_a_chain(client: openai.OpenAI, upstream, mcp_experiments: RunningMCP) -> None:
    tools = [mcp_tool(mcp_experiments)]
    upstream.script(reply("first"), reply(tool_call("get_user_id", {"username": "bob"})), reply("bob is user_456"))
    r1 = create(client, model=MODEL, input="hello", tools=tools)
    assert [i.type for i in r1.output] == ["mcp_list_tools", "message"]
    assert mcp_experiments.methods.count("tools/list") == 1
    r2 = create(client, model=MODEL, input="bob?", tools=tools, previous_response_id=r1.id)
    assert [i.type for i in r2.output] == ["mcp_call", "message"]
    assert mcp_experiments.methods.count("tools/list") == 1  # not listed again
    assert r2.output[0].output == "user_456"
    assert len(upstream.chat_bodies[1]["tools"]) == 5
    # a narrower allowed_tools reuses the listing too; a tool the chain's listing lacks makes it list again
    upstream.script(reply("narrow"), reply("fresh"), reply("wider"))
    create(client, model=MODEL, input="x", previous_response_id=r1.id,
           tools=[mcp_tool(mcp_experiments, allowed_tools=["get_user_id"])])
    assert [t["function"]["name"] for t in upstream.last_chat["tools"]] == ["get_user_id"]
    assert mcp_experiments.methods.count("tools/list") == 1
    narrow = create(client, model=MODEL, input="x", tools=[mcp_tool(mcp_experiments, allowed_tools=["get_user_id"])])
    assert mcp_experiments.methods.count("tools/list") == 2 and len(narrow.output[0].tools) == 1
    wider = create(client, model=MODEL, input="x", previous_response_id=narrow.id,
                   tools=[mcp_tool(mcp_experiments, allowed_tools=["get_user_id", "check_file_access"])])
    assert mcp_experiments.methods.count("tools/list") == 3 and wider.output[0].type == "mcp_list_tools"
    upstream.chat_bodies.clear()
    # the chain's mcp_call is history for the next turn: a tool call and its result
    upstream.script(reply("done"))
    create(client, model=MODEL, input="thanks", tools=tools, previous_response_id=r2.id)
    messages = upstream.last_chat["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "tool", "assistant", "user"]
    assert messages[4] == {"role": "tool", "tool_call_id": r2.output[0].id, "content": "user_456"}


def test_parallel_calls_and_a_function_call_in_one_turn(client: openai.OpenAI, upstream,
                                                         mcp_experiments: RunningMCP) -> None:
    notify = {"type": "function", "name": "notify", "parameters": {"type": "object", "properties": {}}}
    upstream.script(reply(tool_call("get_user_id", {"username": "alice"}, id="c1"),
                          tool_call("get_experiment_id", {"experiment_name": "pressure_test"}, id="c2"),
                          tool_call("notify", {}, id="c3"), interleave=True))
    r = create(client, model=MODEL, input="go", tools=[mcp_tool(mcp_experiments), notify])
    assert r.status == "completed"
    assert [(i.type, getattr(i, "output", None)) for i in r.output] == [
        ("mcp_list_tools", None), ("mcp_call", "user_123"), ("mcp_call", "exp_002"), ("function_call", None)]
    assert sorted(name for name, _ in mcp_experiments.calls) == ["get_experiment_id", "get_user_id"]
    assert len(upstream.chat_bodies) == 1  # the client's function call ends the response
    # the client answers the function call; the model sees the MCP results and the function output
    upstream.script(reply("all done"))
    r2 = create(client, model=MODEL, previous_response_id=r.id, tools=[mcp_tool(mcp_experiments), notify],
                input=[{"type": "function_call_output", "call_id": "c3", "output": "sent"}])
    assert r2.output_text == "all done"
    roles = [(m["role"], m.get("tool_call_id")) for m in upstream.last_chat["messages"]]
    assert roles[0] == ("user", None) and ("tool", "c3") in roles
    assert ("tool", r.output[1].id) in roles and ("tool", r.output[2].id) in roles


def test_approval_required_then_approved(client: openai.OpenAI, upstream, mcp_experiments: RunningMCP) -> None:
    tools = [mcp_tool(mcp_experiments, require_approval={"never": {"tool_names": ["get_user_id"]}})]
    upstream.script(reply(tool_call("get_experiment_id", {"experiment_name": "boiling_point"}, id="c1")))
    r1 = create(client, model=MODEL, input="boiling point id?", tools=tools)
    assert [i.type for i in r1.output] == ["mcp_list_tools", "mcp_approval_request"]
    request = r1.output[1]
    assert (request.name, json.loads(request.arguments)) == ("get_experiment_id", {"experiment_name": "boiling_point"})
    assert mcp_experiments.calls == []  # nothing ran without approval
    upstream.script(reply("It is exp_004."))
    events = post_stream(str(client.base_url).rstrip("/"), {
        "model": MODEL, "previous_response_id": r1.id, "tools": tools,
        "input": [{"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}]},
        client.default_headers.get("X-Respond-Test-Id"))
    final = validate_stream(events)
    assert [i["type"] for i in final["output"]] == ["mcp_call", "message"]
    assert (final["output"][0]["approval_request_id"], final["output"][0]["output"]) == (request.id, "exp_004")
    assert mcp_experiments.calls == [("get_experiment_id", {"experiment_name": "boiling_point"})]
    assert mcp_experiments.methods.count("tools/list") == 1
    assert upstream.last_chat["messages"][-1] == {"role": "tool", "tool_call_id": request.id,
                                                  "content": [{"type": "text", "text": "exp_004"}]}


def test_approval_denied(client: openai.OpenAI, upstream, mcp_experiments: RunningMCP) -> None:
    tools = [mcp_tool(mcp_experiments, require_approval="always")]
    upstream.script(reply(tool_call("get_user_id", {"username": "alice"})))
    r1 = create(client, model=MODEL, input="alice?", tools=tools)
    request = r1.output[-1]
    assert request.type == "mcp_approval_request"
    upstream.script(reply("Understood, I won't look it up."))
    r2 = create(client, model=MODEL, previous_response_id=r1.id, tools=tools, input=[
        {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": False,
         "reason": "private"}])
    assert [i.type for i in r2.output] == ["message"]
    assert mcp_experiments.calls == []
    assert upstream.last_chat["messages"][-1] == {"role": "tool", "tool_call_id": request.id,
                                                  "content": "The user denied this tool call. Reason: private"}


def test_approvals_in_a_conversation(client: openai.OpenAI, upstream, mcp_experiments: RunningMCP) -> None:
    """The approval request lives in the conversation; the approval response sent with `conversation=` runs the
    call (and a denial in the same conversation refuses the next one), with the listing reused."""
    tools = [mcp_tool(mcp_experiments, require_approval="always")]
    conv = client.conversations.create()
    upstream.script(reply(tool_call("get_experiment_id", {"experiment_name": "boiling_point"}, id="c1")))
    r1 = create(client, model=MODEL, input="boiling point id?", tools=tools, conversation=conv.id)
    request = r1.output[-1]
    assert request.type == "mcp_approval_request" and mcp_experiments.calls == []
    items = client.conversations.items.list(conv.id, order="asc").data
    assert [i.type for i in items] == ["message", "mcp_list_tools", "mcp_approval_request"]
    upstream.script(reply("It is exp_004."))
    r2 = create(client, model=MODEL, conversation=conv.id, tools=tools, input=[
        {"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}])
    assert [i.type for i in r2.output] == ["mcp_call", "message"]
    assert (r2.output[0].approval_request_id, r2.output[0].output) == (request.id, "exp_004")
    assert mcp_experiments.calls == [("get_experiment_id", {"experiment_name": "boiling_point"})]
    assert mcp_experiments.methods.count("tools/list") == 1  # listed once for the whole conversation
    upstream.script(reply(tool_call("get_user_id", {"username": "alice"}, id="c2")))
    r3 = create(client, model=MODEL, input="and alice?", tools=tools, conversation=conv.id)
    denied = r3.output[-1]
    assert denied.type == "mcp_approval_request"
    upstream.script(reply("Understood."))
    r4 = create(client, model=MODEL, conversation=conv.id, tools=tools, input=[
        {"type": "mcp_approval_response", "approval_request_id": denied.id, "approve": False}])
    assert [i.type for i in r4.output] == ["message"] and len(mcp_experiments.calls) == 1
    assert upstream.last_chat["messages"][-1]["content"].startswith("The user denied this tool call.")
    types = [i.type for i in client.conversations.items.list(conv.id, order="asc", limit=100).data]
    assert types.count("mcp_approval_response") == 2 and types.count("mcp_call") == 1


def test_tool_errors_give_a_failed_call_and_a_clean_response(client: openai.OpenAI, upstream, utility) -> None:
    upstream.script(reply(tool_call("explode", {"reason": "kaput"})), reply("It failed."))
    r = create(client, model=MODEL, input="explode", tools=[mcp_tool(utility, "utility")])
    call = r.output[1]
    assert r.status == "completed" and call.status == "failed" and call.output is None
    assert call.error.type == "mcp_tool_execution_error"
    assert upstream.last_chat["messages"][-1]["content"].startswith("Error: ")


def test_a_slow_tool_times_out(client: openai.OpenAI, upstream, utility) -> None:
    upstream.script(reply(tool_call("slow", {"seconds": 30})), reply("Too slow."))
    r = create(client, model=MODEL, input="wait", tools=[mcp_tool(utility, "utility")])
    call = r.output[1]
    assert (r.status, call.status, call.error.type, call.error.code) == ("completed", "failed", "http_error", 504)
    assert "within 2 seconds" in call.error.message


def test_a_server_that_is_down_or_answers_garbage(client: openai.OpenAI, upstream) -> None:
    async def garbage(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"<<definitely not json-rpc>>"})

    junk = start_mcp(garbage)
    try:
        upstream.script(reply("no tools"), reply("still no tools"))
        down = {"type": "mcp", "server_label": "down", "server_url": "http://127.0.0.1:9/mcp",
                "require_approval": "never"}
        r = create(client, model=MODEL, input="hi", tools=[down])
        assert r.status == "completed" and r.output_text == "no tools"
        assert r.output[0].type == "mcp_list_tools" and "could not be reached" in r.output[0].error
        r = create(client, model=MODEL, input="hi", tools=[mcp_tool(junk, "junk")])
        assert r.status == "completed" and r.output[0].error
        assert "tools" not in upstream.last_chat
    finally:
        junk.stop()


def test_garbage_call_answers_and_slow_listings_fail_cleanly(mcp_respond: Any, client: openai.OpenAI,
                                                            upstream) -> None:
    junk_calls = start_mcp(experiments_server(), sabotage={"tools/call": "garbage"})
    slow_list = start_mcp(experiments_server(), sabotage={"tools/list": 30.0})
    try:
        upstream.script(reply(tool_call("get_user_id", {"username": "bob"})), reply("it broke"))
        r = create(client, model=MODEL, input="bob?", tools=[mcp_tool(junk_calls)])
        call = r.output[1]
        assert (r.status, call.type, call.status, call.error.type) == ("completed", "mcp_call", "failed",
                                                                       "mcp_protocol_error")
        assert "parse" in call.error.message.lower()
        assert r.output_text == "it broke"
        upstream.script(reply("no tools"))
        r = create(client, model=MODEL, input="hi", tools=[mcp_tool(slow_list, "slow")])
        assert r.status == "completed" and "within 3 seconds" in r.output[0].error
    finally:
        junk_calls.stop()
        slow_list.stop()


def test_authorization_and_headers_reach_the_server_only(mcp_respond: Any, client: openai.OpenAI, upstream) -> None:
    guarded = start_mcp(experiments_server(), transport="sse", token="s3cret-token-42")
    try:
        upstream.script(reply(tool_call("get_user_id", {"username": "alice"})), reply("alice is user_123"))
        tool = mcp_tool(guarded, authorization="s3cret-token-42", headers={"X-Trace": "hdr-secret-77"})
        r = create(client, model=MODEL, input="alice?", tools=[tool])
        assert [i.type for i in r.output] == ["mcp_list_tools", "mcp_call", "message"]
        assert r.output[1].output == "user_123"
        assert guarded.headers and all(h.get("x-trace") == "hdr-secret-77" for h in guarded.headers)
        echoed = r.tools[0].model_dump()
        assert echoed["server_url"] == guarded.url and echoed.get("authorization") is None
        assert echoed.get("headers") is None
        stored = client.responses.with_raw_response.retrieve(r.id).http_response.text
        assert "s3cret-token-42" not in stored and "hdr-secret-77" not in stored
        # without the token the server refuses: a failed listing, a clean response
        upstream.script(reply("cannot list"))
        r = create(client, model=MODEL, input="alice?", tools=[mcp_tool(guarded)])
        assert r.status == "completed" and "HTTP 401" in r.output[0].error
    finally:
        guarded.stop()


def test_sse_transport_and_fallback_from_streamable_http(client: openai.OpenAI, upstream) -> None:
    sse = start_mcp(utility_server(), transport="sse")
    try:
        upstream.script(reply(tool_call("echo", {"text": "over sse"})), reply("ok"))
        r = create(client, model=MODEL, input="echo", tools=[mcp_tool(sse, "sse")])
        assert r.output[1].output == "over sse"
    finally:
        sse.stop()
    # a URL that does not end in /sse: streamable HTTP is refused (405), then SSE works
    events = start_mcp(utility_server(), transport="sse", sse_path="/events")
    try:
        upstream.script(reply("listed"))
        r = create(client, model=MODEL, input="list", tools=[mcp_tool(events, "events")])
        assert r.output[0].error is None and [t.name for t in r.output[0].tools][0] == "echo"
        first_get = events.requests.index(("GET", "/events"))  # streamable HTTP refused, then SSE
        assert first_get > 0 and set(events.requests[:first_get]) == {("POST", "/events")}
        upstream.script(reply("listed again"))
        events.clear()
        create(client, model=MODEL, input="list", tools=[mcp_tool(events, "events")])
        assert events.requests[0] == ("GET", "/events")  # the transport that worked is remembered
    finally:
        events.stop()


@pytest.mark.parametrize(("tool", "param"), [
    ({"type": "mcp", "server_url": "http://127.0.0.1:1/mcp"}, "tools[0].server_label"),
    ({"type": "mcp", "server_label": "x"}, "tools[0].server_url"),
    ({"type": "mcp", "server_label": "x", "connector_id": "connector_gmail"}, "tools[0].connector_id"),
    ({"type": "mcp", "server_label": "x", "server_url": "ftp://example.com/mcp"}, "tools[0].server_url"),
    ({"type": "mcp", "server_label": "x", "server_url": "http://10.0.0.5/mcp"}, "tools[0].server_url"),
    ({"type": "mcp", "server_label": "x", "server_url": "http://localhost:8000/mcp"}, "tools[0].server_url"),
    ({"type": "mcp", "server_label": "x", "server_url": "http://127.0.0.1:1/mcp", "require_approval": "sometimes"},
     "tools[0].require_approval"),
    ({"type": "mcp", "server_label": "x", "server_url": "http://127.0.0.1:1/mcp", "allowed_tools": "all"},
     "tools[0].allowed_tools"),
    ({"type": "mcp", "server_label": "x", "server_url": "http://127.0.0.1:1/mcp", "headers": {"a": 1}},
     "tools[0].headers"),
])
def test_invalid_mcp_tools_are_400(client: openai.OpenAI, tool: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=MODEL, input="hi", tools=[tool])
    assert err.value.body["param"] == param


def test_tool_choice_mcp_forces_the_server_tool(client: openai.OpenAI, upstream,
                                                mcp_experiments: RunningMCP) -> None:
    upstream.script(reply(tool_call("get_user_id", {"username": "bob"})), reply("bob is user_456"))
    r = create(client, model=MODEL, input="bob", tools=[mcp_tool(mcp_experiments)],
               tool_choice={"type": "mcp", "server_label": "experiments", "name": "get_user_id"})
    assert r.output_text == "bob is user_456"
    first, second = upstream.chat_bodies
    assert first["tool_choice"] == {"type": "function", "function": {"name": "get_user_id"}}
    assert "tool_choice" not in second
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model=MODEL, input="x", tools=[mcp_tool(mcp_experiments)],
                                tool_choice={"type": "mcp", "server_label": "elsewhere"})


def test_mcp_items_sent_back_as_input(client: openai.OpenAI, upstream, mcp_experiments: RunningMCP) -> None:
    """A store=false client sends the previous output back: listing reused, the call is history."""
    upstream.script(reply(tool_call("get_user_id", {"username": "bob"})), reply("user_456"))
    tools = [mcp_tool(mcp_experiments)]
    r1 = create(client, model=MODEL, input="bob?", tools=tools, store=False)
    upstream.script(reply("yes"))
    items = [{"role": "user", "content": "bob?"}, *[i.model_dump(exclude_none=True) for i in r1.output],
             {"role": "user", "content": "sure?"}]
    r2 = create(client, model=MODEL, input=items, tools=tools, store=False)
    assert [i.type for i in r2.output] == ["message"]
    assert mcp_experiments.methods.count("tools/list") == 1
    assert [m["role"] for m in upstream.last_chat["messages"]] == ["user", "assistant", "tool", "assistant", "user"]
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=MODEL, input=[{"type": "mcp_call", "name": "x"}], tools=tools)
    assert err.value.body["param"] == "input[0].server_label"


def test_retrieved_response_matches(client: openai.OpenAI, upstream, mcp_experiments: RunningMCP) -> None:
    upstream.script(reply(tool_call("get_user_id", {"username": "bob"})), reply("user_456"))
    r = create(client, model=MODEL, input="bob?", tools=[mcp_tool(mcp_experiments)])
    again = retrieve(client, r.id)
    assert [i.type for i in again.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert again.output[1].output == "user_456"


def test_failed_calls_and_approval_requests_stream_conformantly(mcp_respond: Any, upstream, utility,
                                                                 request: pytest.FixtureRequest) -> None:
    upstream.script(reply(tool_call("explode", {"reason": "kaput"})), reply("It failed."))
    events = post_stream(mcp_respond.base_url, {"model": MODEL, "input": "x", "tools": [mcp_tool(utility, "utility")]},
                         request.node.nodeid)
    final = validate_stream(events)
    assert final["status"] == "completed" and final["output"][1]["status"] == "failed"
    assert "response.mcp_call.failed" in [e["type"] for e in events]
    upstream.script(reply(tool_call("echo", {"text": "hi"})))
    events = post_stream(mcp_respond.base_url, {"model": MODEL, "input": "x", "tools": [
        {**mcp_tool(utility, "utility"), "require_approval": "always"}]}, request.node.nodeid)
    final = validate_stream(events)
    assert [i["type"] for i in final["output"]] == ["mcp_list_tools", "mcp_approval_request"]
    assert json.loads(final["output"][1]["arguments"]) == {"text": "hi"}


def test_too_many_tool_rounds_end_incomplete(make_server, upstream, utility, request: pytest.FixtureRequest) -> None:
    server = make_server([scripted_provider(upstream)], mcp=LOOPBACK, tools=ToolsConfig(max_rounds=2))
    upstream.script(*[reply(tool_call("echo", {"text": str(i)})) for i in range(3)])
    events = post_stream(server.base_url, {"model": MODEL, "input": "loop", "tools": [mcp_tool(utility, "utility")]},
                         request.node.nodeid)
    final = validate_stream(events)
    assert final["status"] == "incomplete" and final["incomplete_details"] == {"reason": "max_messages"}
    assert [i.get("output") for i in final["output"]] == [None, "0", "1"]
    assert len(upstream.chat_bodies) == 2 and upstream.pending() == 1


async def test_mcp_over_websocket_store_false(mcp_respond: Any, upstream, mcp_experiments: RunningMCP,
                                              request: pytest.FixtureRequest) -> None:
    """WebSocket mode (`responses.connect()`): an MCP turn streams its events as over SSE, and a store=false
    continuation on the same connection reuses the listing instead of listing again."""
    from tests.api.test_websocket import check_response_stream, turn

    tools = [mcp_tool(mcp_experiments)]
    upstream.script(reply(tool_call("get_experiment_id", {"experiment_name": "boiling_point"}, id="w1")),
                    reply("exp_004."), reply("Still exp_004."))
    async with mcp_respond.async_client(request.node.nodeid).responses.connect() as conn:
        first = check_response_stream(await turn(conn, model=MODEL, input="id?", tools=tools, store=False))
        assert [i["type"] for i in first["output"]] == ["mcp_list_tools", "mcp_call", "message"]
        assert first["output"][1]["output"] == "exp_004"
        second = check_response_stream(await turn(conn, model=MODEL, input="sure?", tools=tools, store=False,
                                                  previous_response_id=first["id"]))
    assert [i["type"] for i in second["output"]] == ["message"]
    assert mcp_experiments.methods.count("tools/list") == 1
    assert upstream.chat_bodies[-1]["messages"][-1] == {"role": "user", "content": "sure?"}
