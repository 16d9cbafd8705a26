"""The OpenAI Agents SDK (`openai-agents`) runs agents against Respond.

Each test runs a real `Agent` through `Runner` with an `OpenAIResponsesModel` whose `AsyncOpenAI` client
points at the real Respond server; the model behind it ("up/scripted") is the scripted upstream, so the test
decides what the model answers and checks what Respond sent it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from agents import (
    Agent,
    ModelSettings,
    MultiProvider,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    OpenAIResponsesWSModel,
    RunConfig,
    Runner,
    SQLiteSession,
    UserError,
    function_tool,
)
from agents.items import ReasoningItem, ToolCallItem, ToolCallOutputItem
from openai import AsyncOpenAI
from openai.types.shared import Reasoning
from pydantic import BaseModel

from tests.support.server import TEST_ID_HEADER, free_port
from tests.support.upstream import chunk, chunks, reply, tool_call

MODEL = "up/scripted"
RUN = RunConfig(tracing_disabled=True)  # no trace export (it would try to reach api.openai.com)
WEATHER_JSON = {"city": "Paris", "sky": "sunny", "temp": 21}


@pytest.fixture
def aclient(server, request: pytest.FixtureRequest) -> Any:
    return server.async_client(request.node.nodeid)


@pytest.fixture
def model(aclient) -> OpenAIResponsesModel:
    return OpenAIResponsesModel(model=MODEL, openai_client=aclient)


def weather_agent(model: Any, calls: list[dict[str, Any]], **kwargs: Any) -> Agent:
    @function_tool
    def get_weather(city: str, unit: str = "celsius") -> str:
        """Current weather for a city.

        Args:
            city: The city name.
            unit: celsius or fahrenheit.
        """
        calls.append({"city": city, "unit": unit})
        return json.dumps(WEATHER_JSON)

    return Agent(name="weather", instructions="Answer about the weather.", model=model, tools=[get_weather],
                 **kwargs)


def script_weather_turns(upstream: Any) -> None:
    upstream.script(reply(tool_call("get_weather", {"city": "Paris", "unit": "fahrenheit"}, id="call_w1")),
                    reply("Sunny, ", "70 F in Paris."))


def assert_weather_requests(bodies: list[dict[str, Any]], tool_turn_content: str | None = "") -> None:
    """What reached the upstream. Respond sends "" as the content of an assistant turn that only calls
    tools; through the chat-completions pass-through the SDK's own null arrives as is."""
    """Two upstream calls: the first offers the tool; the second carries the call and the tool's output."""
    first, second = bodies
    assert first["messages"] == [{"role": "system", "content": "Answer about the weather."},
                                 {"role": "user", "content": "Weather in Paris?"}]
    tool = first["tools"][0]["function"]
    assert tool["name"] == "get_weather" and tool["description"] == "Current weather for a city."
    assert set(tool["parameters"]["properties"]) == {"city", "unit"}
    assert second["messages"][:2] == first["messages"]
    call = {"id": "call_w1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris","unit":"fahrenheit"}'}}
    assert second["messages"][2:] == [
        {"role": "assistant", "content": tool_turn_content, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_w1", "content": json.dumps(WEATHER_JSON)}]


async def test_run_with_function_tool(model, upstream) -> None:
    calls: list[dict[str, Any]] = []
    script_weather_turns(upstream)
    result = await Runner.run(weather_agent(model, calls), "Weather in Paris?", run_config=RUN)
    assert result.final_output == "Sunny, 70 F in Paris."
    assert calls == [{"city": "Paris", "unit": "fahrenheit"}]
    assert_weather_requests(upstream.chat_bodies)
    call_items = [i for i in result.new_items if isinstance(i, ToolCallItem)]
    output_items = [i for i in result.new_items if isinstance(i, ToolCallOutputItem)]
    assert [i.raw_item.call_id for i in call_items] == ["call_w1"]
    assert [i.output for i in output_items] == [json.dumps(WEATHER_JSON)]
    assert len(result.raw_responses) == 2
    assert all(r.response_id.startswith("resp_") for r in result.raw_responses)
    usage = result.context_wrapper.usage
    assert usage.requests == 2 and usage.input_tokens > 0 and usage.output_tokens > 0


async def test_run_streamed_with_function_tool(model, upstream) -> None:
    calls: list[dict[str, Any]] = []
    script_weather_turns(upstream)
    result = Runner.run_streamed(weather_agent(model, calls), "Weather in Paris?", run_config=RUN)
    deltas: list[str] = []
    item_events: list[str] = []
    async for event in result.stream_events():
        if event.type == "raw_response_event" and event.data.type == "response.output_text.delta":
            deltas.append(event.data.delta)
        elif event.type == "run_item_stream_event":
            item_events.append(event.name)
    assert deltas == ["Sunny, ", "70 F in Paris."]
    assert item_events == ["tool_called", "tool_output", "message_output_created"]
    assert result.final_output == "Sunny, 70 F in Paris."
    assert calls == [{"city": "Paris", "unit": "fahrenheit"}]
    assert_weather_requests(upstream.chat_bodies)


async def test_previous_response_id_continues_the_conversation(aclient, model, upstream) -> None:
    agent = Agent(name="chat", instructions="Be brief.", model=model)
    upstream.script(reply("Hi Ada."), reply("Your name is Ada."))
    first = await Runner.run(agent, "I am Ada.", run_config=RUN)
    assert first.last_response_id and first.last_response_id.startswith("resp_")
    second = await Runner.run(agent, "What is my name?", previous_response_id=first.last_response_id,
                              run_config=RUN)
    assert second.final_output == "Your name is Ada."
    stored = await aclient.responses.retrieve(second.last_response_id)
    assert stored.previous_response_id == first.last_response_id
    assert upstream.chat_bodies[1]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "I am Ada."},
        {"role": "assistant", "content": "Hi Ada."},
        {"role": "user", "content": "What is my name?"}]


async def test_auto_previous_response_id_chains_the_tool_loop(aclient, model, upstream) -> None:
    """The SDK sends only the tool output with `previous_response_id`; Respond rebuilds the history."""
    calls: list[dict[str, Any]] = []
    script_weather_turns(upstream)
    result = await Runner.run(weather_agent(model, calls), "Weather in Paris?",
                              auto_previous_response_id=True, run_config=RUN)
    assert result.final_output == "Sunny, 70 F in Paris."
    assert calls == [{"city": "Paris", "unit": "fahrenheit"}]
    assert_weather_requests(upstream.chat_bodies)
    first_id, second_id = (r.response_id for r in result.raw_responses)
    assert result.last_response_id == second_id
    assert (await aclient.responses.retrieve(second_id)).previous_response_id == first_id
    sent = await aclient.responses.input_items.list(second_id)
    assert [(i.type, i.call_id) for i in sent.data] == [("function_call_output", "call_w1")]


class CityFacts(BaseModel):
    city: str
    country: str
    population_millions: float


async def test_structured_output_type(model, upstream) -> None:
    agent = Agent(name="facts", instructions="Facts as JSON.", model=model, output_type=CityFacts)
    upstream.script(reply('{"city": "Paris", ', '"country": "France", "population_millions": 2.1}'))
    result = await Runner.run(agent, "Facts about Paris", run_config=RUN)
    assert result.final_output == CityFacts(city="Paris", country="France", population_millions=2.1)
    fmt = upstream.last_chat["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["required"] == ["city", "country", "population_millions"]


async def test_model_settings_reach_the_upstream(aclient, upstream) -> None:
    settings = ModelSettings(temperature=0.25, top_p=0.5, max_tokens=77, tool_choice="required",
                             parallel_tool_calls=False, metadata={"team": "qa"}, store=True,
                             reasoning=Reasoning(effort="low"), top_logprobs=2)
    model = OpenAIResponsesModel(model=MODEL, openai_client=aclient)
    calls: list[dict[str, Any]] = []
    agent = weather_agent(model, calls, model_settings=settings, tool_use_behavior="stop_on_first_tool")
    upstream.script(reply(tool_call("get_weather", {"city": "Oslo", "unit": "celsius"}, id="call_o1")))
    result = await Runner.run(agent, "Weather in Oslo?", run_config=RUN)
    assert result.final_output == json.dumps(WEATHER_JSON)  # stop_on_first_tool: the tool's output
    assert calls == [{"city": "Oslo", "unit": "celsius"}]
    body = upstream.last_chat
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.25, 0.5, 77)
    assert body["tool_choice"] == "required" and body["parallel_tool_calls"] is False
    assert body["reasoning_effort"] == "low" and (body["logprobs"], body["top_logprobs"]) == (True, 2)
    stored = await aclient.responses.retrieve(result.last_response_id)
    assert stored.metadata == {"team": "qa"} and stored.max_output_tokens == 77


async def test_parallel_tool_calls(model, upstream) -> None:
    calls: list[dict[str, Any]] = []
    upstream.script(reply(tool_call("get_weather", {"city": "Paris", "unit": "celsius"}, id="call_p"),
                          tool_call("get_weather", {"city": "Rome", "unit": "celsius"}, id="call_r"),
                          interleave=True),
                    reply("Both sunny."))
    result = await Runner.run(weather_agent(model, calls), "Paris and Rome?", run_config=RUN)
    assert result.final_output == "Both sunny."
    assert calls == [{"city": "Paris", "unit": "celsius"}, {"city": "Rome", "unit": "celsius"}]
    sent = upstream.chat_bodies[1]["messages"]
    assert [c["id"] for c in sent[2]["tool_calls"]] == ["call_p", "call_r"]
    assert [(m["role"], m["tool_call_id"]) for m in sent[3:]] == [("tool", "call_p"), ("tool", "call_r")]


async def test_handoff_to_another_agent(model, upstream) -> None:
    spanish = Agent(name="spanish", instructions="Answer in Spanish.", model=model)
    triage = Agent(name="triage", instructions="Hand off Spanish speakers.", model=model, handoffs=[spanish])
    upstream.script(reply(tool_call("transfer_to_spanish", {}, id="call_h1")), reply("¡Hola!"))
    result = await Runner.run(triage, "Hola, ¿qué tal?", run_config=RUN)
    assert result.final_output == "¡Hola!" and result.last_agent is spanish
    first, second = upstream.chat_bodies
    assert [t["function"]["name"] for t in first["tools"]] == ["transfer_to_spanish"]
    assert second["messages"][0] == {"role": "system", "content": "Answer in Spanish."}
    assert second["messages"][-1]["role"] == "tool" and second["messages"][-1]["tool_call_id"] == "call_h1"


@pytest.mark.parametrize("store", [True, False])
async def test_websocket_transport(server, upstream, request: pytest.FixtureRequest, store: bool) -> None:
    """The SDK's WebSocket transport; with `store=False` the chain lives on the connection only."""
    # plain HTTP goes to a closed port: only the WebSocket (ws://.../v1/responses) can reach Respond
    ws_only = AsyncOpenAI(base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="none", max_retries=0,
                          websocket_base_url=server.base_url.replace("http://", "ws://"),
                          default_headers={TEST_ID_HEADER: request.node.nodeid})
    model = OpenAIResponsesWSModel(model=MODEL, openai_client=ws_only)
    calls: list[dict[str, Any]] = []
    script_weather_turns(upstream)
    agent = weather_agent(model, calls, model_settings=ModelSettings(store=store))
    try:
        result = await Runner.run(agent, "Weather in Paris?", auto_previous_response_id=True, run_config=RUN)
        upstream.script(reply("Bye."))
        again = await Runner.run(agent, "Thanks!", previous_response_id=result.last_response_id,
                                 run_config=RUN)
    finally:
        await model.close()
    assert result.final_output == "Sunny, 70 F in Paris." and again.final_output == "Bye."
    assert calls == [{"city": "Paris", "unit": "fahrenheit"}]
    first, second, third = upstream.chat_bodies
    assert_weather_requests([first, second])
    assert third["messages"] == [*second["messages"],
                                 {"role": "assistant", "content": "Sunny, 70 F in Paris."},
                                 {"role": "user", "content": "Thanks!"}]


async def test_session_replays_history_as_input(model, upstream) -> None:
    """An SDK session keeps the history client-side and sends it all as input items each turn."""
    agent = Agent(name="chat", instructions="Be brief.", model=model)
    session = SQLiteSession("frameworks-test")  # in memory
    upstream.script(reply("Hi Ada."), reply("Your name is Ada."))
    await Runner.run(agent, "I am Ada.", session=session, run_config=RUN)
    result = await Runner.run(agent, "What is my name?", session=session, run_config=RUN)
    assert result.final_output == "Your name is Ada."
    assert upstream.chat_bodies[1]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "I am Ada."},
        {"role": "assistant", "content": "Hi Ada."},
        {"role": "user", "content": "What is my name?"}]
    session.close()


async def test_conversation_id_keeps_the_history_on_the_server(model, aclient, upstream) -> None:
    """`Runner.run(conversation_id=...)`: the SDK sends only the new input; Respond prepends the
    conversation's items and appends each turn to it."""
    agent = Agent(name="chat", model=model)
    conversation = await aclient.conversations.create()
    upstream.script(reply("Hi Ada."), reply("Your name is Ada."))
    await Runner.run(agent, "I am Ada.", conversation_id=conversation.id, run_config=RUN)
    result = await Runner.run(agent, "What is my name?", conversation_id=conversation.id, run_config=RUN)
    assert result.final_output == "Your name is Ada."
    assert upstream.chat_bodies[1]["messages"] == [
        {"role": "user", "content": "I am Ada."},
        {"role": "assistant", "content": "Hi Ada."},
        {"role": "user", "content": "What is my name?"}]
    items = await aclient.conversations.items.list(conversation.id, order="asc")
    assert [(i.type, i.role) for i in items.data] == [("message", "user"), ("message", "assistant")] * 2


async def test_reasoning_items_round_trip(model, upstream) -> None:
    """Reasoning streamed by the upstream (`reasoning_content`) becomes reasoning items, which the SDK sends
    back as input on the next turn; Respond accepts them and keeps them out of the chat history."""
    upstream.script(
        chunks([chunk({"role": "assistant", "content": ""}), chunk({"reasoning_content": "Need the "}),
                chunk({"reasoning_content": "weather."}),
                chunk({"tool_calls": [{"index": 0, "id": "call_w1", "type": "function",
                                       "function": {"name": "get_weather", "arguments": ""}}]}),
                chunk({"tool_calls": [{"index": 0, "function": {
                    "arguments": '{"city":"Paris","unit":"fahrenheit"}'}}]}),
                chunk({}, "tool_calls")]),
        reply("Sunny, ", "70 F in Paris."))
    calls: list[dict[str, Any]] = []
    result = await Runner.run(weather_agent(model, calls), "Weather in Paris?", run_config=RUN)
    assert result.final_output == "Sunny, 70 F in Paris."
    reasoning = [i for i in result.new_items if isinstance(i, ReasoningItem)]
    assert [c.text for c in reasoning[0].raw_item.content] == ["Need the weather."]
    assert_weather_requests(upstream.chat_bodies)


@pytest.mark.parametrize("streamed", [False, True])
async def test_chat_completions_model(aclient, upstream, streamed: bool) -> None:
    """`OpenAIChatCompletionsModel` (`set_default_openai_api("chat_completions")`): /v1/chat/completions."""
    model = OpenAIChatCompletionsModel(model=MODEL, openai_client=aclient)
    calls: list[dict[str, Any]] = []
    script_weather_turns(upstream)
    agent = weather_agent(model, calls)
    if streamed:
        result: Any = Runner.run_streamed(agent, "Weather in Paris?", run_config=RUN)
        async for _ in result.stream_events():
            pass
    else:
        result = await Runner.run(agent, "Weather in Paris?", run_config=RUN)
    assert result.final_output == "Sunny, 70 F in Paris."
    assert calls == [{"city": "Paris", "unit": "fahrenheit"}]
    assert_weather_requests(upstream.chat_bodies, tool_turn_content=None)


async def test_model_names_as_strings(aclient, upstream) -> None:
    """`Agent(model="provider/model")` goes through the SDK's MultiProvider, which rejects prefixes it does
    not know unless `unknown_prefix_mode="model_id"`; with it, Respond receives the full id."""
    agent = Agent(name="chat", model="up/scripted")
    strict = RunConfig(tracing_disabled=True, model_provider=MultiProvider(openai_client=aclient))
    with pytest.raises(UserError, match="Unknown prefix: up"):
        await Runner.run(agent, "hi", run_config=strict)
    passthrough = RunConfig(tracing_disabled=True, model_provider=MultiProvider(
        openai_client=aclient, openai_use_responses=True, openai_prefix_mode="model_id",
        unknown_prefix_mode="model_id"))
    upstream.script(reply("full id"), reply("bare id"))
    full = await Runner.run(agent, "hi", run_config=passthrough)
    assert full.final_output == "full id"
    bare_agent = Agent(name="chat", model="scripted")  # a bare id: only one Respond provider serves it
    bare = await Runner.run(bare_agent, "hi", run_config=strict)
    assert bare.final_output == "bare id"
    assert [b["model"] for b in upstream.chat_bodies] == ["scripted", "scripted"]
    assert (await aclient.responses.retrieve(full.last_response_id)).model == "up/scripted"
