"""Client function tools: the response ends with function_call items; the client continues with outputs."""

from __future__ import annotations

import json

import openai
import pytest

from tests.api.wire import create
from tests.support.conformance import validate_error_envelope
from tests.support.upstream import reply, tool_call

MODEL = "up/scripted"
TOOLS = [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {
    "location": {"type": "string"}}}},
         {"type": "function", "name": "get_time", "description": "Time now."}]


def test_function_call_round_trip(any_client: openai.OpenAI, upstream) -> None:
    upstream.script(reply(tool_call("get_weather", {"location": "Paris"}, id="call_A"),
                          tool_call("get_time", {}, id="call_B")),
                    reply("Sunny at noon."))
    r1 = create(any_client, model=MODEL, input="Weather and time in Paris?", tools=TOOLS)
    assert [(i.type, i.name, i.call_id) for i in r1.output] == [
        ("function_call", "get_weather", "call_A"), ("function_call", "get_time", "call_B")]
    # echoed tools carry description, parameters and strict
    assert [(t.name, t.description, t.strict) for t in r1.tools] == [("get_weather", None, True),
                                                                      ("get_time", "Time now.", True)]
    r2 = create(any_client, model=MODEL, previous_response_id=r1.id, tools=TOOLS, input=[
        {"type": "function_call_output", "call_id": "call_A", "output": json.dumps({"sky": "sunny"})},
        {"type": "function_call_output", "call_id": "call_B", "output": "12:00"}])
    assert r2.output_text == "Sunny at noon."
    assert upstream.last_chat["messages"] == [
        {"role": "user", "content": "Weather and time in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_A", "type": "function", "function": {"name": "get_weather",
                                                              "arguments": '{"location":"Paris"}'}},
            {"id": "call_B", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_A", "content": '{"sky": "sunny"}'},
        {"role": "tool", "tool_call_id": "call_B", "content": "12:00"}]


def test_function_items_sent_by_the_client_without_previous_response(client: openai.OpenAI, upstream) -> None:
    upstream.script(reply("It is 12:00."))
    r = create(client, model=MODEL, tools=TOOLS, input=[
        {"role": "user", "content": "time?"},
        {"type": "function_call", "call_id": "c1", "name": "get_time", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "12:00"}])
    assert r.output_text == "It is 12:00."
    assert upstream.last_chat["messages"][1]["tool_calls"][0]["id"] == "c1"


@pytest.mark.parametrize(("choice", "sent", "tool_names"), [
    ("auto", None, ["get_weather", "get_time"]),
    ("none", "none", ["get_weather", "get_time"]),
    ("required", "required", ["get_weather", "get_time"]),
    ({"type": "function", "name": "get_time"}, {"type": "function", "function": {"name": "get_time"}},
     ["get_weather", "get_time"]),
    ({"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_time"}]},
     "required", ["get_time"]),
    ({"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "get_weather"}]},
     None, ["get_weather"]),
])
def test_tool_choice_mapping(client: openai.OpenAI, upstream, choice, sent, tool_names) -> None:
    upstream.script(reply("ok"))
    create(client, model=MODEL, input="x", tools=TOOLS, tool_choice=choice, parallel_tool_calls=False)
    body = upstream.last_chat
    assert body.get("tool_choice") == sent
    assert [t["function"]["name"] for t in body["tools"]] == tool_names
    assert body["parallel_tool_calls"] is False


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tools": TOOLS, "tool_choice": {"type": "function", "name": "nope"}}, "tool_choice.name"),
    ({"tools": [{"type": "function"}]}, "tools[0].name"),
    ({"tools": [{"type": "code_interpreter"}]}, "tools[0].type"),
    ({"tools": [TOOLS[0], TOOLS[0]]}, "tools"),
])
def test_bad_tool_parameters_are_400(client: openai.OpenAI, upstream, kwargs, param) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        create(client, model=MODEL, input="x", **kwargs)
    validate_error_envelope(err.value.response.json(), 400, param=param)
    assert upstream.pending() == 0 and not upstream.chat_bodies


def test_json_schema_output(client: openai.OpenAI, upstream) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    upstream.script(reply('{"city": "Paris"}'))
    r = create(client, model=MODEL, input="capital of France as JSON", text={"format": {
        "type": "json_schema", "name": "city", "schema": schema, "strict": True}})
    assert json.loads(r.output_text) == {"city": "Paris"}
    assert upstream.last_chat["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "city", "schema": schema, "strict": True}}
    assert r.text.format.type == "json_schema" and r.text.format.name == "city"

    upstream.script(reply("{}"))
    create(client, model=MODEL, input="json please", text={"format": {"type": "json_object"}})
    assert upstream.last_chat["response_format"] == {"type": "json_object"}
