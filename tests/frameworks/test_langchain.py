"""LangChain's `ChatOpenAI(use_responses_api=True)` (langchain-openai) talks to Respond.

The chat model points at the real Respond server; the model behind it ("up/scripted") is the scripted
upstream, so each test decides what the model answers and checks what Respond sent it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from tests.support.server import TEST_ID_HEADER
from tests.support.upstream import chunk, chunks, reply, tool_call

MODEL = "up/scripted"


@pytest.fixture
def make_llm(server, request: pytest.FixtureRequest) -> Any:
    def make(**kwargs: Any) -> ChatOpenAI:
        kwargs.setdefault("use_responses_api", True)
        return ChatOpenAI(model=MODEL, base_url=server.base_url, api_key="none", max_retries=0,
                          default_headers={TEST_ID_HEADER: request.node.nodeid}, **kwargs)
    return make


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return json.dumps({"city": city, "sky": "sunny"})


def test_invoke(make_llm, upstream) -> None:
    upstream.script(reply("Hello ", "there."))
    msg = make_llm(temperature=0.5).invoke([SystemMessage("Be kind."), HumanMessage("Hi")])
    assert isinstance(msg, AIMessage) and msg.text == "Hello there."
    assert msg.id == msg.response_metadata["id"] and msg.id.startswith("resp_")
    assert msg.content[0]["id"].startswith("msg_")
    assert msg.response_metadata["status"] == "completed"
    usage = msg.usage_metadata
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    body = upstream.last_chat
    assert body["messages"] == [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]
    assert body["temperature"] == 0.5


def test_stream(make_llm, upstream) -> None:
    upstream.script(reply("one ", "two ", "three"))
    chunks = list(make_llm().stream("Count"))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    assert [c.text for c in chunks if c.text] == ["one ", "two ", "three"]
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    assert total.text == "one two three"
    assert total.usage_metadata and total.usage_metadata["output_tokens"] > 0
    assert total.response_metadata["id"].startswith("resp_")


async def test_astream_and_ainvoke(make_llm, upstream) -> None:
    upstream.script(reply("a", "b"), reply("c"))
    llm = make_llm()
    texts = [c.text async for c in llm.astream("x")]
    assert "".join(texts) == "ab"
    assert (await llm.ainvoke("y")).text == "c"
    assert [b["messages"][-1]["content"] for b in upstream.chat_bodies] == ["x", "y"]


def tool_round_trip(llm: Any) -> AIMessage:
    """Ask, run the tool calls the model made, ask again with their results; returns the final answer."""
    messages: list[Any] = [HumanMessage("Weather in Paris?")]
    ai = llm.invoke(messages)
    assert ai.tool_calls == [{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_p1",
                              "type": "tool_call"}]
    messages.append(ai)
    for call in ai.tool_calls:
        messages.append(get_weather.invoke(call))  # a ToolMessage carrying the call id
    assert isinstance(messages[-1], ToolMessage)
    return llm.invoke(messages)


def assert_tool_requests(upstream: Any) -> None:
    first, second = upstream.chat_bodies
    assert [t["function"]["name"] for t in first["tools"]] == ["get_weather"]
    assert first["tools"][0]["function"]["parameters"]["properties"] == {"city": {"type": "string"}}
    assert second["messages"][0] == {"role": "user", "content": "Weather in Paris?"}
    call = second["messages"][1]["tool_calls"][0]
    assert (call["id"], call["function"]["name"], json.loads(call["function"]["arguments"])) == (
        "call_p1", "get_weather", {"city": "Paris"})
    assert second["messages"][2:] == [
        {"role": "tool", "tool_call_id": "call_p1", "content": json.dumps({"city": "Paris", "sky": "sunny"})}]


def test_bind_tools_round_trip(make_llm, upstream) -> None:
    upstream.script(reply(tool_call("get_weather", {"city": "Paris"}, id="call_p1")),
                    reply("It is sunny in Paris."))
    assert tool_round_trip(make_llm().bind_tools([get_weather])).text == "It is sunny in Paris."
    assert_tool_requests(upstream)
    call = {"id": "call_p1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    assert upstream.chat_bodies[1]["messages"][1] == {"role": "assistant", "content": "",
                                                      "tool_calls": [call]}


def test_reasoning_items_are_sent_back(make_llm, upstream) -> None:
    """Reasoning streamed by the upstream comes back as a reasoning block, which LangChain sends back as an
    input item on the next call; Respond accepts it and keeps it out of the chat history."""
    upstream.script(
        chunks([chunk({"role": "assistant", "content": ""}), chunk({"reasoning_content": "Look it up."}),
                chunk({"tool_calls": [{"index": 0, "id": "call_p1", "type": "function", "function": {
                    "name": "get_weather", "arguments": '{"city":"Paris"}'}}]}),
                chunk({}, "tool_calls")]),
        reply("It is sunny in Paris."))
    llm = make_llm().bind_tools([get_weather])
    assert tool_round_trip(llm).text == "It is sunny in Paris."
    assert_tool_requests(upstream)


def test_chat_completions_api(make_llm, upstream) -> None:
    """Without `use_responses_api`, ChatOpenAI uses Respond's /v1/chat/completions."""
    upstream.script(reply(tool_call("get_weather", {"city": "Paris"}, id="call_p1")),
                    reply("It is sunny in Paris."))
    llm = make_llm(use_responses_api=False).bind_tools([get_weather])
    assert tool_round_trip(llm).text == "It is sunny in Paris."
    assert_tool_requests(upstream)


def test_stream_tool_call_chunks(make_llm, upstream) -> None:
    upstream.script(reply(tool_call("get_weather", {"city": "Lisbon"}, id="call_l1")))
    chunks = list(make_llm().bind_tools([get_weather], tool_choice="get_weather").stream("Lisbon?"))
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    assert total.tool_calls == [{"name": "get_weather", "args": {"city": "Lisbon"}, "id": "call_l1",
                                 "type": "tool_call"}]
    assert upstream.last_chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


def test_use_previous_response_id(make_llm, server, upstream) -> None:
    """With `use_previous_response_id`, LangChain sends only the messages after the last AI message."""
    upstream.script(reply("Hi Ada."), reply("Your name is Ada."))
    llm = make_llm(use_previous_response_id=True)
    history: list[Any] = [HumanMessage("I am Ada.")]
    history.append(llm.invoke(history))
    history.append(HumanMessage("What is my name?"))
    answer = llm.invoke(history)
    assert answer.text == "Your name is Ada."
    client = server.client()
    assert client.responses.retrieve(answer.id).previous_response_id == history[1].id
    sent = client.responses.input_items.list(answer.id).data
    assert [(i.type, i.role, i.content[0].text) for i in sent] == [("message", "user", "What is my name?")]
    assert upstream.chat_bodies[1]["messages"] == [
        {"role": "user", "content": "I am Ada."},
        {"role": "assistant", "content": "Hi Ada."},
        {"role": "user", "content": "What is my name?"}]


class City(BaseModel):
    name: str
    country: str


def test_with_structured_output(make_llm, upstream) -> None:
    upstream.script(reply('{"name": "Paris", "country": "France"}'))
    city = make_llm().with_structured_output(City).invoke("Capital of France?")
    assert city == City(name="Paris", country="France")
    fmt = upstream.last_chat["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "City"
    assert set(fmt["json_schema"]["schema"]["properties"]) == {"name", "country"}
