"""What agentic clients (Codex CLI...) send, over HTTP: namespace tools, custom tools (free-form input,
grammars), reasoning sealed for store=false clients (encrypted_content), client_metadata kept from the
upstream. Every response and stream is validated (tests/support/conformance.py)."""

from __future__ import annotations

import base64
import json
import stat

import httpx
import openai
import pytest

from respond.responses.sealing import KEY_FILE
from tests.api.wire import create, post_stream
from tests.support.conformance import validate_error_envelope, validate_stream
from tests.support.server import scripted_provider
from tests.support.upstream import chunk, chunks, reply, tool_call

MODEL = "up/scripted"
LOOKUP = {"type": "function", "name": "lookup", "description": "Find a customer.",
          "parameters": {"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"]}}
CRM = {"type": "namespace", "name": "crm", "description": "The customer database.",
       "tools": [LOOKUP, {"type": "custom", "name": "note", "description": "Write a free-form note."}]}
PATCH = {"type": "custom", "name": "apply_patch", "description": "Apply a patch.",
         "format": {"type": "grammar", "syntax": "regex", "definition": r"\*\*\* Begin Patch\n(.|\n)*\*\*\* End Patch"}}


def post(server, body, test_id: str) -> httpx.Response:
    return httpx.post(f"{server.base_url}/responses", json=body, headers={"X-Respond-Test-Id": test_id},
                      timeout=30)


# -- namespace tools ------------------------------------------------------------------------------------

def test_namespace_functions_are_offered_and_calls_carry_the_namespace(server, client, upstream, request) -> None:
    upstream.script(reply(tool_call("crm__lookup", {"email": "a@example.com"}, id="call_n1")),
                    reply("Found Ada."))
    events = post_stream(server.base_url, {"model": MODEL, "input": "Who is a@example.com?", "tools": [CRM],
                                           "store": False}, request.node.nodeid)
    final = validate_stream(events)
    offered = {t["function"]["name"]: t["function"] for t in upstream.last_chat["tools"]}
    assert set(offered) == {"crm__lookup", "crm__note"}
    assert offered["crm__lookup"]["parameters"] == LOOKUP["parameters"]
    assert "The customer database." in offered["crm__lookup"]["description"]
    assert "Find a customer." in offered["crm__lookup"]["description"]
    [call] = final["output"]
    assert (call["type"], call["name"], call["namespace"], call["call_id"]) == ("function_call", "lookup", "crm",
                                                                              "call_n1")
    added = next(e for e in events if e["type"] == "response.output_item.added")
    assert added["item"]["namespace"] == "crm"
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert done["name"] == "lookup"
    assert final["tools"][0] == {"type": "namespace", "name": "crm", "description": "The customer database.",
                                 "tools": [{**LOOKUP, "strict": True},
                                           {"type": "custom", "name": "note", "description": "Write a free-form note.",
                                            "format": {"type": "text"}}]}

    # a store=false client sends the call back with its output
    r2 = create(client, model=MODEL, tools=[CRM], store=False, input=[
        {"role": "user", "content": "Who is a@example.com?"},
        {k: call[k] for k in ("type", "id", "call_id", "name", "arguments", "namespace")},
        {"type": "function_call_output", "call_id": "call_n1", "output": "Ada Lovelace"}])
    assert r2.output_text == "Found Ada."
    assert upstream.last_chat["messages"][1:] == [
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_n1", "type": "function", "function": {
            "name": "crm__lookup", "arguments": '{"email":"a@example.com"}'}}]},
        {"role": "tool", "tool_call_id": "call_n1", "content": "Ada Lovelace"}]


def test_namespace_name_clash_with_a_top_level_function(client, upstream) -> None:
    """A top-level `lookup` and `crm`'s `lookup` are two functions for the model."""
    upstream.script(reply(tool_call("lookup", {"email": "x"}, id="c_top"), tool_call("crm__lookup", {"email": "y"},
                                                                                     id="c_ns")))
    r = create(client, model=MODEL, input="both", tools=[LOOKUP, CRM])
    assert [t["function"]["name"] for t in upstream.last_chat["tools"]] == ["lookup", "crm__lookup", "crm__note"]
    assert [(i.name, getattr(i, "namespace", None)) for i in r.output] == [("lookup", None), ("lookup", "crm")]


def test_tool_choice_names_a_namespace_function(client, upstream) -> None:
    upstream.script(reply("ok"))
    create(client, model=MODEL, input="x", tools=[CRM], tool_choice={"type": "function", "name": "lookup"})
    assert upstream.last_chat["tool_choice"] == {"type": "function", "function": {"name": "crm__lookup"}}


@pytest.mark.parametrize(("tool", "param"), [
    ({"type": "namespace", "name": "crm", "description": "d"}, "tools[0].tools"),
    ({"type": "namespace", "name": "crm", "description": "d", "tools": []}, "tools[0].tools"),
    ({"type": "namespace", "description": "d", "tools": [LOOKUP]}, "tools[0].name"),
    ({"type": "namespace", "name": "crm", "tools": [{"type": "mcp", "server_label": "x"}]}, "tools[0].tools[0].type"),
    ({"type": "namespace", "name": "crm", "tools": [{"type": "function"}]}, "tools[0].tools[0].name"),
    ({"type": "namespace", "name": "crm", "tools": [LOOKUP, LOOKUP]}, "tools[0].tools"),
])
def test_bad_namespace_tools_are_400s(server, upstream, request, tool, param) -> None:
    r = post(server, {"model": MODEL, "input": "x", "tools": [tool]}, request.node.nodeid)
    validate_error_envelope(r.json(), r.status_code, param=param)
    assert r.status_code == 400
    assert upstream.chat_bodies == []


# -- custom tools ---------------------------------------------------------------------------------------

PATCH_TEXT = '*** Begin Patch\n*** Add File: hello.txt\n+say "hi"\\n\n*** End Patch'


def test_custom_tool_call_streams_its_input(server, client, upstream, request) -> None:
    arguments = json.dumps({"input": PATCH_TEXT})
    pieces = [arguments[i:i + 5] for i in range(0, len(arguments), 5)]  # escapes split across pieces
    upstream.script(reply("Patching.", tool_call("apply_patch", pieces=pieces, id="call_p1")), reply("Done."))
    events = post_stream(server.base_url, {"model": MODEL, "input": "Add hello.txt", "tools": [PATCH]},
                         request.node.nodeid)
    final = validate_stream(events)
    fn = upstream.last_chat["tools"][0]["function"]
    assert fn["name"] == "apply_patch"
    assert fn["parameters"]["required"] == ["input"]
    assert fn["parameters"]["properties"]["input"]["pattern"] == f"^({PATCH['format']['definition']})$"
    message, call = final["output"]
    assert call == {"type": "custom_tool_call", "id": call["id"], "call_id": "call_p1", "name": "apply_patch",
                    "input": PATCH_TEXT, "status": "completed"}
    deltas = [e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta"]
    assert len(deltas) > 5 and "".join(deltas) == PATCH_TEXT
    [done] = [e for e in events if e["type"] == "response.custom_tool_call_input.done"]
    assert (done["input"], done["item_id"], done["output_index"]) == (PATCH_TEXT, call["id"], 1)
    assert final["tools"] == [PATCH]

    r2 = create(client, model=MODEL, tools=[PATCH], previous_response_id=final["id"],
                input=[{"type": "custom_tool_call_output", "call_id": "call_p1", "output": "Success."}])
    assert r2.output_text == "Done."
    assert upstream.last_chat["messages"][1:] == [
        {"role": "assistant", "content": "Patching.", "tool_calls": [{"id": "call_p1", "type": "function",
                                                                      "function": {"name": "apply_patch",
                                                                                   "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "call_p1", "content": "Success."}]


def test_custom_tool_items_sent_back_by_a_stateless_client(client, upstream) -> None:
    upstream.script(reply("ok"))
    create(client, model=MODEL, tools=[CRM], store=False, input=[
        {"role": "user", "content": "note it"},
        {"type": "custom_tool_call", "call_id": "c9", "name": "note", "input": "VIP", "namespace": "crm"},
        {"type": "custom_tool_call_output", "call_id": "c9", "output": [{"type": "input_text", "text": "saved"}]}])
    assert upstream.last_chat["messages"][1:] == [
        {"role": "assistant", "content": "", "tool_calls": [{"id": "c9", "type": "function", "function": {
            "name": "crm__note", "arguments": '{"input": "VIP"}'}}]},
        {"role": "tool", "tool_call_id": "c9", "content": [{"type": "text", "text": "saved"}]}]


def test_input_breaking_a_regex_grammar_fails_the_response(server, upstream, request) -> None:
    upstream.script(reply(tool_call("apply_patch", {"input": "rm -rf /"}, id="call_bad")))
    events = post_stream(server.base_url, {"model": MODEL, "input": "x", "tools": [PATCH]}, request.node.nodeid)
    final = validate_stream(events)
    assert final["status"] == "failed"
    assert final["error"]["code"] == "server_error"
    assert "custom tool 'apply_patch' does not match the tool's regex grammar" in final["error"]["message"]
    assert "rm -rf /" in final["error"]["message"]
    assert final["output"][0]["input"] == "rm -rf /"  # what the model produced stays visible


def test_arguments_that_are_not_json_are_the_input(client, upstream) -> None:
    """A backend that passes the model's free text through as the arguments."""
    upstream.script(reply(tool_call("note", "plain words", id="c1")))
    r = create(client, model=MODEL, input="x", tools=[{"type": "custom", "name": "note"}])
    assert r.output[0].input == "plain words"


@pytest.mark.parametrize(("tool", "param"), [
    ({"type": "custom"}, "tools[0].name"),
    ({"type": "custom", "name": "x", "format": {"type": "json"}}, "tools[0].format.type"),
    ({"type": "custom", "name": "x", "format": {"type": "grammar", "syntax": "ebnf", "definition": "a"}},
     "tools[0].format.syntax"),
    ({"type": "custom", "name": "x", "format": {"type": "grammar", "syntax": "regex"}},
     "tools[0].format.definition"),
    ({"type": "custom", "name": "x", "format": {"type": "grammar", "syntax": "regex", "definition": "(unclosed"}},
     "tools[0].format.definition"),
])
def test_bad_custom_tools_are_400s(server, upstream, request, tool, param) -> None:
    r = post(server, {"model": MODEL, "input": "x", "tools": [tool]}, request.node.nodeid)
    validate_error_envelope(r.json(), r.status_code, param=param)
    assert r.status_code == 400


def test_custom_call_without_its_output_is_a_400(server, upstream, request) -> None:
    r = post(server, {"model": MODEL, "tools": [PATCH], "input": [
        {"role": "user", "content": "x"},
        {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "p"}]}, request.node.nodeid)
    validate_error_envelope(r.json(), 400, param="input")
    assert "c1" in r.json()["error"]["message"]


# -- reasoning without storage ----------------------------------------------------------------------------

def thinking_turn(thought: str, answer: str):
    return chunks([chunk({"role": "assistant", "content": ""}), chunk({"reasoning_content": thought}),
                   chunk({"content": answer}), chunk({}, "stop")])


def test_reasoning_is_sealed_and_read_back(make_server, upstream, request) -> None:
    srv = make_server([scripted_provider(upstream).model_copy(update={"replay_reasoning": True})])
    client = srv.client(request.node.nodeid)
    upstream.script(thinking_turn("Think: 6*7 is 42.", "42."), reply("Yes, 42."))
    r1 = create(client, model=MODEL, input="6*7?", store=False, include=["reasoning.encrypted_content"])
    reasoning, message = r1.output
    assert reasoning.type == "reasoning" and reasoning.encrypted_content.startswith("respond-rs1:")
    blob = reasoning.encrypted_content.removeprefix("respond-rs1:")
    # not the text in any encoding a reader could undo (short strings like "42" may occur in random base64)
    for form in ("Think: 6*7", base64.b64encode(b"Think: 6*7").decode(), base64.urlsafe_b64encode(
            b"Think: 6*7").decode()[:12]):
        assert form not in blob
    assert b"Think" not in base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
    # the client sends back only what it must: no content, just the sealed blob
    r2 = create(client, model=MODEL, store=False, include=["reasoning.encrypted_content"], input=[
        {"role": "user", "content": "6*7?"},
        {"type": "reasoning", "id": reasoning.id, "summary": [], "encrypted_content": reasoning.encrypted_content},
        {"role": "assistant", "content": "42."},
        {"role": "user", "content": "Sure?"}])
    assert r2.output_text == "Yes, 42."
    assert upstream.last_chat["messages"] == [
        {"role": "user", "content": "6*7?"},
        {"role": "assistant", "content": "42.", "reasoning_content": "Think: 6*7 is 42."},
        {"role": "user", "content": "Sure?"}]
    key = srv.config.data_path / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_reasoning_is_not_sent_to_providers_that_do_not_take_it(client, upstream) -> None:
    upstream.script(thinking_turn("hmm", "A."), reply("B."))
    r1 = create(client, model=MODEL, input="q", store=False, include=["reasoning.encrypted_content"])
    create(client, model=MODEL, store=False, input=[{"role": "user", "content": "q"},
                                                    r1.output[0].model_dump(exclude_none=True),
                                                    {"role": "assistant", "content": "A."},
                                                    {"role": "user", "content": "more"}])
    assert upstream.last_chat["messages"][1] == {"role": "assistant", "content": "A."}


def test_no_encrypted_content_unless_asked(client, upstream) -> None:
    upstream.script(thinking_turn("hmm", "A."))
    r = create(client, model=MODEL, input="q")
    assert r.output[0].type == "reasoning" and r.output[0].encrypted_content is None


def test_tampered_or_foreign_encrypted_content_is_a_400(make_server, upstream, request) -> None:
    srv = make_server([scripted_provider(upstream)])
    other = make_server([scripted_provider(upstream)])  # another data_dir: another key
    upstream.script(thinking_turn("secret plan", "ok"))
    r1 = create(srv.client(request.node.nodeid), model=MODEL, input="q", store=False,
                include=["reasoning.encrypted_content"])
    blob = r1.output[0].encrypted_content
    flipped = blob[:-6] + ("A" if blob[-6] != "A" else "B") + blob[-5:]
    cases = [(srv, flipped), (srv, blob[:40]), (srv, "gAAAAABoZ-openai-blob"), (other, blob)]
    for target, content in cases:
        r = post(target, {"model": MODEL, "store": False, "input": [
            {"role": "user", "content": "q"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": content},
            {"role": "user", "content": "again"}]}, request.node.nodeid)
        validate_error_envelope(r.json(), 400, param="input[1].encrypted_content", code="invalid_encrypted_content")
        assert "secret" not in r.text
    assert len(upstream.chat_bodies) == 1


def test_configured_reasoning_key_is_used(make_server, upstream, request) -> None:
    import base64
    key = base64.urlsafe_b64encode(bytes(range(32))).decode()
    a = make_server([scripted_provider(upstream)], reasoning_key=key)
    b = make_server([scripted_provider(upstream)], reasoning_key=key)
    upstream.script(thinking_turn("t", "ok"), reply("again"))
    r1 = create(a.client(request.node.nodeid), model=MODEL, input="q", store=False,
                include=["reasoning.encrypted_content"])
    r2 = create(b.client(request.node.nodeid), model=MODEL, store=False, input=[
        {"role": "user", "content": "q"}, r1.output[0].model_dump(exclude_none=True),
        {"role": "user", "content": "more"}])
    assert r2.output_text == "again"
    assert not (a.config.data_path / KEY_FILE).exists()


# -- what Codex sends besides ------------------------------------------------------------------------------

def test_codex_request_fields_stay_out_of_the_upstream(client: openai.OpenAI, upstream) -> None:
    upstream.script(reply("hi"))
    create(client, model=MODEL, input=[{"type": "message", "role": "developer", "content": [
        {"type": "input_text", "text": "Be brief."}]}, {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "hello"}]}],
        tools=[LOOKUP, CRM], tool_choice="auto", parallel_tool_calls=True, reasoning={"summary": "auto"},
        store=False, include=["reasoning.encrypted_content"], prompt_cache_key="thread-1",
        extra_body={"client_metadata": {"turn_id": "t1", "x-codex-turn-metadata": "{}"}})
    body = upstream.last_chat
    assert set(body) == {"model", "messages", "stream", "stream_options", "tools", "parallel_tool_calls",
                         "prompt_cache_key"}
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]


def test_reasoning_goes_back_within_a_server_tool_loop(make_server, upstream, mcp_experiments, request) -> None:
    """Between the model turns of one response (a server tool ran), a provider with replay_reasoning gets
    the turn's reasoning back with its calls."""
    from respond.config import MCPConfig

    srv = make_server([scripted_provider(upstream).model_copy(update={"replay_reasoning": True})],
                      mcp=MCPConfig(allowed_urls=["http://127.0.0.1:"]))
    call = {"index": 0, "id": "call_m1", "type": "function",
            "function": {"name": "get_user_id", "arguments": '{"username": "alice"}'}}
    upstream.script(chunks([chunk({"role": "assistant", "content": ""}), chunk({"reasoning_content": "Look her up."}),
                            chunk({"tool_calls": [call]}), chunk({}, "tool_calls")]),
                    reply("user_123"))
    r = create(srv.client(request.node.nodeid), model=MODEL, input="alice's id?", tools=[
        {"type": "mcp", "server_label": "lab", "server_url": mcp_experiments.url, "require_approval": "never",
         "allowed_tools": ["get_user_id"]}])
    assert r.output_text == "user_123"
    assistant = upstream.last_chat["messages"][-2]
    assert assistant["reasoning_content"] == "Look her up."
    assert assistant["tool_calls"][0]["function"]["name"] == "get_user_id"
