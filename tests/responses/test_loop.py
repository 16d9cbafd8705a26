"""The turn loop itself, with a scripted provider and a small server-side tool kind defined here.

`test_lookup` is a real tool kind (registered in the tool registry for these tests): it offers one
function, `lookup(key)`, answered from a table given in the request, and emits its own progress events.
It is also the smallest example of the tool seam (docs/tools.md).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest

from respond.config import ProviderConfig
from respond.errors import InvalidRequest
from respond.ids import new_id
from respond.responses import context, objects
from respond.responses.events import EventStream
from respond.responses.items import normalize_input
from respond.responses.loop import SKIPPED, ResponseRun, run_response
from respond.responses.request import CreateResponseRequest
from respond.responses.tools import (
    ITEM_KINDS,
    TOOL_KINDS,
    Tool,
    ToolCall,
    ToolEnv,
    ToolResult,
    ToolRun,
    ToolSet,
    item_kind,
    tool_kind,
)
from respond.responses.tools.base import require_str

# -- a scripted provider -------------------------------------------------------------------------------


def text_chunks(*pieces: str) -> list[dict[str, Any]]:
    out = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": p}}]} for p in pieces]
    return out + [{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]


def call_chunks(*calls: tuple[str, dict[str, Any]], text: str | None = None) -> list[dict[str, Any]]:
    """Tool calls as OpenAI streams them: a header chunk per call, then argument pieces, interleaved."""
    out: list[dict[str, Any]] = []
    if text:
        out.append({"choices": [{"index": 0, "delta": {"role": "assistant", "content": text}}]})
    for i, (name, _) in enumerate(calls):
        out.append({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": i, "id": f"call_{name}_{i}", "type": "function", "function": {"name": name, "arguments": ""}}]}}]})
    pieces = [(i, json.dumps(args)) for i, (_, args) in enumerate(calls)]
    for start in range(0, max(len(p) for _, p in pieces), 5):
        for i, p in pieces:
            if p[start:start + 5]:
                out.append({"choices": [{"index": 0, "delta": {"tool_calls": [
                    {"index": i, "function": {"arguments": p[start:start + 5]}}]}}]})
    out.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    return out


def usage(prompt: int, completion: int) -> dict[str, Any]:
    return {"choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion}}


class ScriptedProvider:
    id = "scripted"
    config = ProviderConfig(id="scripted", type="openai", base_url="http://unused.invalid/v1")

    def __init__(self, *turns: list[dict[str, Any]]) -> None:
        self.turns = list(turns)
        self.bodies: list[dict[str, Any]] = []

    async def chat_completion_batches(self, body: dict[str, Any]) -> AsyncIterator[list[dict[str, Any]]]:
        self.bodies.append(json.loads(json.dumps(body)))
        turn = self.turns.pop(0) if self.turns else text_chunks("(no more script)")
        for chunk in turn:
            yield [chunk]


# -- a server-side tool kind for the tests -----------------------------------------------------------


class Gate:
    """Lets a test hold calls inside `execute` and see how many run at once."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.release: asyncio.Event | None = None
        self.started = asyncio.Condition()


@tool_kind("test_lookup")
class LookupTool(Tool):
    kind: ClassVar[str] = "test_lookup"
    gate: ClassVar[Gate | None] = None

    def __init__(self, name: str, table: dict[str, str], function: str) -> None:
        self.name, self.table, self.function = name, table, function

    @classmethod
    def parse(cls, raw: dict[str, Any], where: str, env: ToolEnv) -> LookupTool:
        name = require_str(raw, "name", where)
        table = raw.get("table")
        if not isinstance(table, dict):
            raise InvalidRequest(f"Invalid value for '{where}.table': expected an object.", param=f"{where}.table")
        return cls(name, table, raw.get("function") or "lookup")

    def echo(self) -> dict[str, Any]:
        return {"type": "test_lookup", "name": self.name}

    def label(self) -> str:
        return self.name

    def functions(self) -> list[dict[str, Any]]:
        return [{"type": "function", "function": {"name": self.function, "description": "Look a key up.",
                                                  "parameters": {"type": "object",
                                                                 "properties": {"key": {"type": "string"}}}}}]

    def matches_choice(self, choice: dict[str, Any]) -> bool:
        return choice.get("type") == "test_lookup" and choice.get("name", self.name) == self.name

    def start_call(self, name: str, call_id: str, output_index: int) -> LookupCall:
        return LookupCall(self, name, call_id, output_index)


class LookupCall(ToolCall):
    def __init__(self, tool: Tool | None, name: str, call_id: str, output_index: int) -> None:
        super().__init__(tool, name, call_id, output_index)
        assert isinstance(tool, LookupTool)
        self.item = {"type": "test_lookup_call", "id": new_id("item"), "tool": tool.name, "key": None,
                     "output": None, "status": "in_progress"}

    async def execute(self, run: ToolRun) -> ToolResult:
        assert isinstance(self.tool, LookupTool)
        run.events.tool_status("test_lookup_call", "in_progress", self.item["id"], self.output_index)
        gate = LookupTool.gate
        if gate is not None:
            gate.running += 1
            gate.peak = max(gate.peak, gate.running)
            async with gate.started:
                gate.started.notify_all()
            if gate.release is not None:
                await gate.release.wait()
            gate.running -= 1
        key = self.parsed_arguments().get("key")
        if key == "crash":
            raise RuntimeError("the table burned")
        self.item["key"] = key
        self.item["output"] = self.tool.table.get(key, "unknown")
        self.item["status"] = "completed"
        run.events.tool_status("test_lookup_call", "completed", self.item["id"], self.output_index)
        run.events.item_done(self.output_index, self.item)
        if key == "cite":
            run.add_annotator(lambda text: [{"type": "url_citation", "url": "https://example.com/cite",
                                             "title": "Cite", "start_index": 0, "end_index": len(text)}])
        return ToolResult(self.item["output"])


def _lookup_item_normalize(item: dict[str, Any], where: str) -> dict[str, Any]:
    return {"type": "test_lookup_call", "id": item.get("id") or new_id("item"), "tool": require_str(item, "tool", where),
            "key": item.get("key"), "output": item.get("output"), "status": item.get("status") or "completed"}


def _lookup_item_messages(item: dict[str, Any], messages: list[dict[str, Any]]) -> None:
    messages.append({"role": "assistant", "content": "", "tool_calls": [
        {"id": item["id"], "type": "function",
         "function": {"name": "lookup", "arguments": json.dumps({"key": item["key"]})}}]})
    messages.append({"role": "tool", "tool_call_id": item["id"], "content": item["output"] or ""})


item_kind("test_lookup_call", _lookup_item_normalize, _lookup_item_messages)


@pytest.fixture(scope="module", autouse=True)
def _unregister() -> Any:
    yield
    TOOL_KINDS.pop("test_lookup", None)
    ITEM_KINDS.pop("test_lookup_call", None)


# -- running a response ----------------------------------------------------------------------------


def lookup(name: str = "db", function: str = "lookup", **table: str) -> dict[str, Any]:
    return {"type": "test_lookup", "name": name, "function": function, "table": table}


def make_run(provider: ScriptedProvider, *, tools: list[dict[str, Any]] | None = None, tool_choice: Any = None,
             input: Any = "question", stream: bool = True, max_rounds: int = 10,
             **params: Any) -> ResponseRun:
    req = CreateResponseRequest(model="scripted/m", input=input, tools=tools, tool_choice=tool_choice, **params)
    env = ToolEnv.default()
    toolset = ToolSet.build(req.tools, req.tool_choice, env)
    items = normalize_input(req.input)
    response = objects.new_response(req, response_id=new_id("response"), model="scripted/m", tools=toolset.echo())
    events = EventStream(enabled=stream)

    def make_body(msgs: list[dict[str, Any]], first_turn: bool) -> dict[str, Any]:
        return context.chat_request(req, "m", msgs, toolset.chat_tools(first_turn),
                                    toolset.chat_tool_choice(first_turn))

    run = ResponseRun(response=response, provider=provider, messages=context.items_to_messages(items, None),  # type: ignore[arg-type]
                      make_body=make_body, events=events)
    if not toolset.empty:
        run.tools = toolset
        run.tool_run = ToolRun(env=env, events=events, response=response, context_items=items)
        run.max_tool_calls = req.max_tool_calls
        run.parallel_tool_calls = req.parallel_tool_calls is not False
        run.max_rounds = max_rounds
    return run


async def run_all(run: ResponseRun) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async for batch in run_response(run):
        events.extend(batch)
    seq = [e["sequence_number"] for e in events]
    assert seq == list(range(len(seq)))
    return events


def types_of(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


# -- tests -----------------------------------------------------------------------------------------------


async def test_plain_text_is_one_turn_without_tools() -> None:
    provider = ScriptedProvider(text_chunks("Hel", "lo") + [usage(3, 2)])
    run = make_run(provider)
    events = await run_all(run)
    assert run.response["status"] == "completed"
    assert [i["type"] for i in run.response["output"]] == ["message"]
    assert len(provider.bodies) == 1 and "tools" not in provider.bodies[0]
    assert types_of(events)[-1] == "response.completed"


async def test_server_call_runs_and_the_model_answers_with_its_result() -> None:
    provider = ScriptedProvider(call_chunks(("lookup", {"key": "paris"})) + [usage(10, 5)],
                                text_chunks("It is ", "France.") + [usage(20, 4)])
    run = make_run(provider, tools=[lookup(paris="France")])
    events = await run_all(run)
    out = run.response["output"]
    assert run.response["status"] == "completed"
    assert [i["type"] for i in out] == ["test_lookup_call", "message"]
    assert out[0]["status"] == "completed" and out[0]["output"] == "France" and out[0]["key"] == "paris"
    second = provider.bodies[1]["messages"]
    assert second[-2] == {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_lookup_0", "type": "function", "function": {"name": "lookup", "arguments": '{"key": "paris"}'}}]}
    assert second[-1] == {"role": "tool", "tool_call_id": "call_lookup_0", "content": "France"}
    assert run.response["usage"]["input_tokens"] == 30 and run.response["usage"]["output_tokens"] == 9
    kinds = types_of(events)
    # the call's item is added while the model streams, done only after it ran
    added, done = kinds.index("response.output_item.added"), kinds.index("response.output_item.done")
    assert added < kinds.index("response.test_lookup_call.in_progress") < kinds.index(
        "response.test_lookup_call.completed") < done
    assert events[done]["item"]["status"] == "completed"
    assert "response.function_call_arguments.delta" not in kinds  # the tool kind decides its events


async def test_parallel_calls_run_concurrently_and_feed_back_in_model_order() -> None:
    gate = LookupTool.gate = Gate()
    gate.release = asyncio.Event()
    provider = ScriptedProvider(call_chunks(("lookup", {"key": "a"}), ("lookup", {"key": "b"})),
                                text_chunks("done"))
    run = make_run(provider, tools=[lookup(a="A", b="B")])
    task = asyncio.create_task(run_all(run))
    async with gate.started:
        await asyncio.wait_for(gate.started.wait_for(lambda: gate.running == 2), 10)
    gate.release.set()
    await asyncio.wait_for(task, 10)
    LookupTool.gate = None
    assert gate.peak == 2
    messages = provider.bodies[1]["messages"]
    assert [c["id"] for c in messages[-3]["tool_calls"]] == ["call_lookup_0", "call_lookup_1"]
    assert [(m["tool_call_id"], m["content"]) for m in messages[-2:]] == [("call_lookup_0", "A"),
                                                                         ("call_lookup_1", "B")]


async def test_without_parallel_tool_calls_calls_run_one_at_a_time() -> None:
    gate = LookupTool.gate = Gate()
    provider = ScriptedProvider(call_chunks(("lookup", {"key": "a"}), ("lookup", {"key": "b"})),
                                text_chunks("done"))
    run = make_run(provider, tools=[lookup(a="A", b="B")], parallel_tool_calls=False)
    await run_all(run)
    LookupTool.gate = None
    assert gate.peak == 1
    assert provider.bodies[0]["parallel_tool_calls"] is False
    assert [i["output"] for i in run.response["output"][:2]] == ["A", "B"]


async def test_max_tool_calls_skips_further_calls_with_the_exact_message() -> None:
    provider = ScriptedProvider(call_chunks(("lookup", {"key": "a"}), ("lookup", {"key": "b"})),
                                call_chunks(("lookup", {"key": "c"})),
                                text_chunks("partial answer"))
    run = make_run(provider, tools=[lookup(a="A", b="B", c="C")], max_tool_calls=1)
    await run_all(run)
    out = run.response["output"]
    assert [(i["type"], i["status"]) for i in out] == [("test_lookup_call", "completed"),
                                                        ("test_lookup_call", "incomplete"),
                                                        ("test_lookup_call", "incomplete"), ("message", "completed")]
    skipped = "Tool call skipped: maximum tool calls limit (1) reached."
    assert SKIPPED.format(limit=1) == skipped
    second = provider.bodies[1]["messages"]
    assert second[-2:] == [{"role": "tool", "tool_call_id": "call_lookup_0", "content": "A"},
                           {"role": "tool", "tool_call_id": "call_lookup_1", "content": skipped}]
    third = provider.bodies[2]["messages"]
    assert third[-1] == {"role": "tool", "tool_call_id": "call_lookup_0", "content": skipped}
    assert run.response["status"] == "completed"


async def test_max_rounds_ends_the_response_incomplete() -> None:
    provider = ScriptedProvider(*[call_chunks(("lookup", {"key": "a"})) for _ in range(5)])
    run = make_run(provider, tools=[lookup(a="A")], max_rounds=3)
    events = await run_all(run)
    assert len(provider.bodies) == 3
    assert run.response["status"] == "incomplete"
    assert run.response["incomplete_details"] == {"reason": "max_messages"}
    assert types_of(events)[-1] == "response.incomplete"
    assert [i["status"] for i in run.response["output"]] == ["completed"] * 3


async def test_client_function_call_ends_the_response_after_server_calls_ran() -> None:
    fn = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
    provider = ScriptedProvider(call_chunks(("get_weather", {"city": "Paris"}), ("lookup", {"key": "a"})))
    run = make_run(provider, tools=[fn, lookup(a="A")])
    events = await run_all(run)
    assert len(provider.bodies) == 1
    out = run.response["output"]
    assert [(i["type"], i["status"]) for i in out] == [("function_call", "completed"), ("test_lookup_call", "completed")]
    assert out[0]["call_id"] == "call_get_weather_0" and out[0]["arguments"] == '{"city": "Paris"}'
    assert run.response["status"] == "completed"
    kinds = types_of(events)
    assert "response.function_call_arguments.delta" in kinds and "response.function_call_arguments.done" in kinds


async def test_tool_choice_of_a_tool_kind_forces_its_function_on_the_first_turn_only() -> None:
    provider = ScriptedProvider(call_chunks(("lookup", {"key": "a"})), text_chunks("A"))
    run = make_run(provider, tools=[lookup(a="A")], tool_choice={"type": "test_lookup"})
    await run_all(run)
    assert provider.bodies[0]["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
    assert "tool_choice" not in provider.bodies[1]
    assert run.response["tool_choice"] == {"type": "test_lookup"}


async def test_tool_choice_for_a_missing_tool_kind_is_a_400() -> None:
    with pytest.raises(InvalidRequest) as err:
        make_run(ScriptedProvider(), tools=[lookup(a="A")], tool_choice={"type": "test_lookup", "name": "other"})
    assert err.value.param == "tool_choice"


async def test_unknown_tool_type_and_bad_tool_are_400_naming_the_parameter() -> None:
    with pytest.raises(InvalidRequest) as err:
        make_run(ScriptedProvider(), tools=[lookup(a="A"), {"type": "teleport"}])
    assert err.value.param == "tools[1].type" and err.value.code == "unsupported_tool_type"
    with pytest.raises(InvalidRequest) as err:
        make_run(ScriptedProvider(), tools=[{"type": "test_lookup", "name": "db", "table": 3}])
    assert err.value.param == "tools[0].table"


async def test_a_crashing_tool_fails_its_call_and_the_response_goes_on() -> None:
    provider = ScriptedProvider(call_chunks(("lookup", {"key": "crash"})), text_chunks("sorry"))
    run = make_run(provider, tools=[lookup()])
    await run_all(run)
    assert run.response["status"] == "completed"
    assert run.response["output"][0]["status"] == "failed"
    assert provider.bodies[1]["messages"][-1]["content"] == "The tool failed: internal error (RuntimeError)."


async def test_same_function_name_from_two_tools_is_mangled_and_routed() -> None:
    provider = ScriptedProvider(call_chunks(("eu__lookup", {"key": "x"}), ("us__lookup", {"key": "x"})),
                                text_chunks("ok"))
    run = make_run(provider, tools=[lookup("eu", x="euro"), lookup("us", x="dollar")])
    await run_all(run)
    assert [t["function"]["name"] for t in provider.bodies[0]["tools"]] == ["eu__lookup", "us__lookup"]
    assert [(i["tool"], i["output"]) for i in run.response["output"][:2]] == [("eu", "euro"), ("us", "dollar")]
    assert [c["function"]["name"] for c in provider.bodies[1]["messages"][-3]["tool_calls"]] == ["eu__lookup",
                                                                                                "us__lookup"]


async def test_a_tool_can_annotate_the_final_answer() -> None:
    provider = ScriptedProvider(call_chunks(("lookup", {"key": "cite"})), text_chunks("See ", "this."))
    run = make_run(provider, tools=[lookup(cite="a source")])
    events = await run_all(run)
    part = run.response["output"][1]["content"][0]
    assert part["annotations"] == [{"type": "url_citation", "url": "https://example.com/cite", "title": "Cite",
                                    "start_index": 0, "end_index": 9}]
    kinds = types_of(events)
    assert kinds.index("response.output_text.annotation.added") < kinds.index("response.output_text.done")


async def test_tool_items_round_trip_as_input_and_unknown_item_types_are_rejected() -> None:
    sent = [{"type": "test_lookup_call", "id": "item_1", "tool": "db", "key": "a", "output": "A", "status": "completed"},
            {"role": "user", "content": "and b?"}]
    items = normalize_input(sent)
    messages = context.items_to_messages(items, None)
    assert messages[0]["tool_calls"][0]["id"] == "item_1" and messages[1] == {"role": "tool", "tool_call_id": "item_1",
                                                                             "content": "A"}
    with pytest.raises(InvalidRequest) as err:
        normalize_input([{"type": "hologram_call", "id": "x"}])
    assert err.value.param == "input[0].type"
    with pytest.raises(InvalidRequest):  # a stored item of a kind no module owns is never dropped silently
        context.items_to_messages([{"type": "hologram_call", "id": "x"}], None)


async def test_cancelled_while_a_tool_runs_leaves_the_call_incomplete() -> None:
    gate = LookupTool.gate = Gate()
    gate.release = asyncio.Event()  # never set
    provider = ScriptedProvider(call_chunks(("lookup", {"key": "a"})))
    run = make_run(provider, tools=[lookup(a="A")])
    task = asyncio.create_task(run_all(run))
    async with gate.started:
        await asyncio.wait_for(gate.started.wait_for(lambda: gate.running == 1), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    LookupTool.gate = None
    assert run.response["status"] == "cancelled"
    assert run.response["output"][0]["status"] == "incomplete"
