"""Streaming: exact event sequences for text, refusals, reasoning, parallel tool calls, cut-offs.

Events are read as raw SSE frames and validated against the openai types and the Open Responses schema.
"""

from __future__ import annotations

import json

import openai

from tests.api.wire import create, post_stream, retrieve
from tests.support.conformance import validate_stream
from tests.support.upstream import chunk, chunks, refusal, reply, tool_call

MODEL = "up/scripted"
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city.",
           "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                          "required": ["location"], "additionalProperties": False}, "strict": True}


def types(events):
    return [e["type"] for e in events]


def test_text_stream_exact_sequence(server, upstream) -> None:
    upstream.script(reply("1, ", "2, ", "3"))
    events = post_stream(server.base_url, {"model": MODEL, "input": "Count to 3"})
    final = validate_stream(events)
    assert types(events) == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    added = events[2]["item"]
    assert added["status"] == "in_progress" and added["content"] == [] and added["id"].startswith("msg_")
    assert events[3]["part"] == {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    assert final["output"][0]["content"][0]["text"] == "1, 2, 3"
    assert events[0]["response"]["status"] == "in_progress" and final["status"] == "completed"


def test_sdk_stream_and_stored_result_agree(client: openai.OpenAI, upstream) -> None:
    upstream.script(reply("Hello", " there"))
    seen = []
    with client.responses.stream(model=MODEL, input="hi") as stream:
        for event in stream:
            seen.append(event.type)
        final = stream.get_final_response()
    assert seen[0] == "response.created" and seen[-1] == "response.completed"
    assert final.output_text == "Hello there"
    assert retrieve(client, final.id).output_text == "Hello there"


def test_parallel_tool_calls_interleaved_across_chunks(server, upstream) -> None:
    upstream.script(reply(tool_call("get_weather", {"location": "San Francisco, USA"}),
                          tool_call("get_weather", {"location": "Los Angeles, USA"}), interleave=True))
    events = post_stream(server.base_url, {"model": MODEL, "input": "SF or LA?", "tools": [WEATHER]})
    final = validate_stream(events)
    calls = final["output"]
    assert [c["type"] for c in calls] == ["function_call", "function_call"]
    assert [json.loads(c["arguments"])["location"] for c in calls] == ["San Francisco, USA", "Los Angeles, USA"]
    assert all(c["status"] == "completed" and c["call_id"] and c["id"].startswith("fc_") for c in calls)
    deltas = [e for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert {e["output_index"] for e in deltas} == {0, 1}
    # the upstream interleaved the two calls' argument pieces; each item still gets exactly its own pieces
    for index, call in enumerate(calls):
        assert "".join(e["delta"] for e in deltas if e["output_index"] == index) == call["arguments"]
    assert final["tools"] == [WEATHER]
    assert upstream.last_chat["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city.", "parameters": WEATHER["parameters"],
        "strict": True}}]


def test_text_then_tool_call_in_one_turn(server, upstream) -> None:
    upstream.script(reply("Let me check.", tool_call("get_weather", {"location": "Paris"})))
    events = post_stream(server.base_url, {"model": MODEL, "input": "Paris?", "tools": [WEATHER]})
    final = validate_stream(events)
    assert [i["type"] for i in final["output"]] == ["message", "function_call"]


def test_refusal_stream(server, upstream) -> None:
    upstream.script(reply(refusal("I can't ", "help with that.")))
    events = post_stream(server.base_url, {"model": MODEL, "input": "something bad"})
    final = validate_stream(events)
    assert "response.refusal.delta" in types(events) and "response.refusal.done" in types(events)
    done = next(e for e in events if e["type"] == "response.refusal.done")
    assert done["refusal"] == "I can't help with that."
    assert final["output"][0]["content"] == [{"type": "refusal", "refusal": "I can't help with that."}]


def test_reasoning_from_upstream_becomes_a_reasoning_item(server, upstream) -> None:
    upstream.script(chunks([
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning_content": "The user wants "}), chunk({"reasoning_content": "a number."}),
        chunk({"content": "42"}), chunk({}, finish_reason="stop"),
        chunk(None, usage={"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12,
                           "completion_tokens_details": {"reasoning_tokens": 4}})]))
    events = post_stream(server.base_url, {"model": MODEL, "input": "answer?", "reasoning": {"effort": "low"}})
    final = validate_stream(events)
    assert upstream.last_chat["reasoning_effort"] == "low"
    assert [i["type"] for i in final["output"]] == ["reasoning", "message"]
    assert final["output"][0]["content"] == [{"type": "reasoning_text", "text": "The user wants a number."}]
    assert "response.reasoning_text.delta" in types(events) and "response.reasoning_text.done" in types(events)
    assert final["usage"]["output_tokens_details"]["reasoning_tokens"] == 4
    assert final["usage"]["total_tokens"] == 12


def test_length_cutoff_is_incomplete(server, upstream, client) -> None:
    upstream.script(reply("Once upon", finish_reason="length"))
    events = post_stream(server.base_url, {"model": MODEL, "input": "story", "max_output_tokens": 16})
    final = validate_stream(events)
    assert events[-1]["type"] == "response.incomplete"
    assert final["status"] == "incomplete" and final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["output"][0]["status"] == "incomplete"
    assert retrieve(client, final["id"]).status == "incomplete"

    upstream.script(reply("Once upon", finish_reason="length"))
    r = create(client, model=MODEL, input="story", max_output_tokens=16)
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"


def test_logprobs_are_mapped_when_requested(server, upstream) -> None:
    lp = {"content": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105],
                       "top_logprobs": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105]}]}]}
    upstream.script(chunks([chunk({"role": "assistant", "content": "Hi"}) | {"choices": [
        {"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None, "logprobs": lp}]},
        chunk({}, finish_reason="stop")]))
    events = post_stream(server.base_url, {"model": MODEL, "input": "hi", "top_logprobs": 1,
                                           "include": ["message.output_text.logprobs"]})
    final = validate_stream(events)
    assert upstream.last_chat["logprobs"] is True and upstream.last_chat["top_logprobs"] == 1
    assert final["output"][0]["content"][0]["logprobs"][0]["token"] == "Hi"
    delta = next(e for e in events if e["type"] == "response.output_text.delta")
    assert delta["logprobs"][0]["logprob"] == -0.1


def test_backends_that_reuse_index_zero_or_omit_it(server, upstream) -> None:
    def call(index, call_id, name, args):
        tc = {"id": call_id, "type": "function" if call_id else None,
              "function": {"name": name, "arguments": args}}
        if index is not None:
            tc["index"] = index
        return chunk({"tool_calls": [tc]})

    tools = [{"type": "function", "name": "f"}, {"type": "function", "name": "g"}]
    # every call on index 0, told apart by a new id
    upstream.script(chunks([chunk({"role": "assistant"}), call(0, "c1", "f", '{"a":'), call(0, None, None, "1}"),
                            call(0, "c2", "g", '{"b":2}'), chunk({}, finish_reason="tool_calls")]))
    final = validate_stream(post_stream(server.base_url, {"model": MODEL, "input": "x", "tools": tools}))
    assert [(c["call_id"], c["name"], c["arguments"]) for c in final["output"]] == [
        ("c1", "f", '{"a":1}'), ("c2", "g", '{"b":2}')]
    # no index at all: argument pieces continue the latest call
    upstream.script(chunks([call(None, "c3", "f", '{"a"'), call(None, None, None, ":1}"),
                            call(None, "c4", "g", "{}"), chunk({}, finish_reason="tool_calls")]))
    final = validate_stream(post_stream(server.base_url, {"model": MODEL, "input": "x", "tools": tools}))
    assert [(c["call_id"], c["name"], c["arguments"]) for c in final["output"]] == [
        ("c3", "f", '{"a":1}'), ("c4", "g", "{}")]
