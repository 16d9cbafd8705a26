"""The conformance validators accept what OpenAI documents and reject each kind of deviation.

The good objects are built from the examples in the OpenAI OpenAPI document (shared/specs/
openai-openapi-2.3.0.yml: the response.created / output_item / content_part / output_text examples, the
"Functions" create example) completed with the keys the Open Responses schema requires. They are not
built from respond's code. Each bad object is a good one with one mutation, and must be rejected with a
message that says where and what.
"""

from __future__ import annotations

import base64
import copy
import struct
import time
from collections.abc import Callable

import pytest
from openai.types.responses import ResponseFileSearchToolCall

from tests.support import conformance as c

RESP_ID = "resp_67ccfcdd16748190a91872c75d38539e09e4d4aac714747c"
MSG_ID = "msg_67c9fdcf37fc8190ba82116e33fb28c507b8b0ad4e5eb654"
FC_ID = "fc_67ca09c6bedc8190a7abfec07b1a1332096610f474011cc0"
CALL_ID = "call_unLAR8MvFNptuiZK6K6HCy5k"
RS_ID = "rs_67ca09c6bedc8190a7abfec07b1a1332096610f474011cc1"
STORY = ("In a shimmering forest under a sky full of stars, a lonely unicorn named Lila discovered a hidden "
         "pond that glowed with moonlight.")
WEATHER_TOOL = {
    "type": "function",
    "name": "get_current_weather",
    "description": "Get the current weather in a given location",
    "parameters": {
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["location", "unit"],
    },
    "strict": True,
}
ARGS = '{"location":"Boston, MA","unit":"celsius"}'


# ------------------------------------------------------------------------------------------------
# builders
# ------------------------------------------------------------------------------------------------

def make_response(status: str = "completed", output: list | None = None, **overrides) -> dict:
    """The spec's response.created / response.completed example, with every Open Responses key."""
    done = status == "completed"
    response = {
        "id": RESP_ID,
        "object": "response",
        "created_at": 1741487325,
        "status": status,
        "completed_at": 1741487326 if done else None,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "max_tool_calls": None,
        "model": "gpt-4o-2024-08-06",
        "output": output if output is not None else [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "top_logprobs": 0,
        "truncation": "disabled",
        "background": False,
        "service_tier": "default",
        "usage": {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0}, "output_tokens": 87,
                  "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 123} if done else None,
        "user": None,
        "metadata": {},
        "safety_identifier": None,
        "prompt_cache_key": None,
    }
    response.update(overrides)
    return copy.deepcopy(response)


def output_text(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message(text: str, status: str = "completed") -> dict:
    return {"id": MSG_ID, "type": "message", "status": status, "role": "assistant",
            "content": [output_text(text)]}


def function_call(status: str = "completed", arguments: str = ARGS) -> dict:
    return {"type": "function_call", "id": FC_ID, "call_id": CALL_ID, "name": "get_current_weather",
            "arguments": arguments, "status": status}


def numbered(events: list[dict]) -> list[dict]:
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events


def chunks(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


def text_stream(text: str = STORY, size: int = 7) -> list[dict]:
    """The spec's streaming example (created, in_progress, item/part added, deltas, dones, completed)."""
    where = {"item_id": MSG_ID, "output_index": 0, "content_index": 0}
    events = [
        {"type": "response.created", "response": make_response("in_progress")},
        {"type": "response.in_progress", "response": make_response("in_progress")},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"id": MSG_ID, "type": "message", "status": "in_progress", "role": "assistant", "content": []}},
        {"type": "response.content_part.added", **where, "part": output_text("")},
    ]
    events += [{"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}
               for piece in chunks(text, size)]
    events += [
        {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": output_text(text)},
        {"type": "response.output_item.done", "output_index": 0, "item": message(text)},
        {"type": "response.completed", "response": make_response("completed", [message(text)])},
    ]
    return numbered(events)


def tool_stream() -> list[dict]:
    """A function call (the spec's "Functions" example, streamed), echoing the function tool."""
    where = {"item_id": FC_ID, "output_index": 0}
    tools = [WEATHER_TOOL]
    events = [
        {"type": "response.created", "response": make_response("in_progress", tools=tools)},
        {"type": "response.in_progress", "response": make_response("in_progress", tools=tools)},
        {"type": "response.output_item.added", "output_index": 0,
         "item": function_call("in_progress", arguments="")},
    ]
    events += [{"type": "response.function_call_arguments.delta", **where, "delta": piece}
               for piece in chunks(ARGS, 5)]
    events += [
        {"type": "response.function_call_arguments.done", **where, "name": "get_current_weather",
         "arguments": ARGS},
        {"type": "response.output_item.done", "output_index": 0, "item": function_call()},
        {"type": "response.completed", "response": make_response("completed", [function_call()], tools=tools)},
    ]
    return numbered(events)


def reasoning_refusal_stream() -> list[dict]:
    """A reasoning item (reasoning_text + summary) then a message with a refusal part and an annotated text."""
    thought, summary, refusal = "The user is asking...", "Thinking about it.", "I can't help with that."
    cited = "See the docs."
    annotation = {"type": "url_citation", "url": "https://example.com/docs", "start_index": 4, "end_index": 12,
                  "title": "Docs"}
    rs = {"item_id": RS_ID, "output_index": 0}
    msg = {"item_id": MSG_ID, "output_index": 1}
    reasoning_done = {"id": RS_ID, "type": "reasoning", "summary": [{"type": "summary_text", "text": summary}],
                      "content": [{"type": "reasoning_text", "text": thought}], "status": "completed"}
    text_part = {**output_text(cited), "annotations": [annotation]}
    message_done = {"id": MSG_ID, "type": "message", "status": "completed", "role": "assistant",
                    "content": [{"type": "refusal", "refusal": refusal}, text_part]}
    events = [
        {"type": "response.created", "response": make_response("in_progress")},
        {"type": "response.in_progress", "response": make_response("in_progress")},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"id": RS_ID, "type": "reasoning", "summary": [], "content": [], "status": "in_progress"}},
        {"type": "response.content_part.added", **rs, "content_index": 0,
         "part": {"type": "reasoning_text", "text": ""}},
        {"type": "response.reasoning_text.delta", **rs, "content_index": 0, "delta": thought[:8]},
        {"type": "response.reasoning_text.delta", **rs, "content_index": 0, "delta": thought[8:]},
        {"type": "response.reasoning_text.done", **rs, "content_index": 0, "text": thought},
        {"type": "response.content_part.done", **rs, "content_index": 0,
         "part": {"type": "reasoning_text", "text": thought}},
        {"type": "response.reasoning_summary_part.added", **rs, "summary_index": 0,
         "part": {"type": "summary_text", "text": ""}},
        {"type": "response.reasoning_summary_text.delta", **rs, "summary_index": 0, "delta": summary},
        {"type": "response.reasoning_summary_text.done", **rs, "summary_index": 0, "text": summary},
        {"type": "response.reasoning_summary_part.done", **rs, "summary_index": 0,
         "part": {"type": "summary_text", "text": summary}},
        {"type": "response.output_item.done", "output_index": 0, "item": reasoning_done},
        {"type": "response.output_item.added", "output_index": 1,
         "item": {"id": MSG_ID, "type": "message", "status": "in_progress", "role": "assistant", "content": []}},
        {"type": "response.content_part.added", **msg, "content_index": 0,
         "part": {"type": "refusal", "refusal": ""}},
        {"type": "response.refusal.delta", **msg, "content_index": 0, "delta": refusal[:5]},
        {"type": "response.refusal.delta", **msg, "content_index": 0, "delta": refusal[5:]},
        {"type": "response.refusal.done", **msg, "content_index": 0, "refusal": refusal},
        {"type": "response.content_part.done", **msg, "content_index": 0,
         "part": {"type": "refusal", "refusal": refusal}},
        {"type": "response.content_part.added", **msg, "content_index": 1, "part": output_text("")},
        {"type": "response.output_text.delta", **msg, "content_index": 1, "delta": cited, "logprobs": []},
        {"type": "response.output_text.annotation.added", **msg, "content_index": 1, "annotation_index": 0,
         "annotation": annotation},
        {"type": "response.output_text.done", **msg, "content_index": 1, "text": cited, "logprobs": []},
        {"type": "response.content_part.done", **msg, "content_index": 1, "part": text_part},
        {"type": "response.output_item.done", "output_index": 1, "item": message_done},
        {"type": "response.completed",
         "response": make_response("completed", [copy.deepcopy(reasoning_done), copy.deepcopy(message_done)])},
    ]
    return numbered(events)


def error_event(sequence_number: int = 3) -> dict:
    """The spec's error example in both shapes: OpenAI's flat fields and Open Responses' `error` object."""
    return {"type": "error", "sequence_number": sequence_number, "code": "ERR_SOMETHING",
            "message": "Something went wrong", "param": None,
            "error": {"type": "server_error", "code": "ERR_SOMETHING", "message": "Something went wrong",
                      "param": None}}


def find(events: list[dict], event_type: str, nth: int = 0) -> dict:
    return [e for e in events if e["type"] == event_type][nth]


def rejected(call: Callable[[], object], *fragments: str) -> str:
    with pytest.raises(AssertionError) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"expected {fragment!r} in the rejection message: {message}"
    return message


# ------------------------------------------------------------------------------------------------
# responses
# ------------------------------------------------------------------------------------------------

def test_good_responses_pass():
    parsed = c.validate_response(make_response("completed", [message(STORY)]))
    assert parsed.output_text == STORY
    c.validate_response(make_response("in_progress"))
    c.validate_response(make_response("completed", [function_call()], tools=[WEATHER_TOOL]))
    c.validate_response(make_response("failed", completed_at=None, usage=None,
                                      error={"code": "server_error",
                                             "message": "The model failed to generate a response."}))
    c.validate_response(make_response("incomplete", [message(STORY[:20], "incomplete")],
                                      incomplete_details={"reason": "max_output_tokens"}))
    schema_format = {"type": "json_schema", "name": "story", "description": None, "strict": True,
                     "schema": {"type": "object", "properties": {"title": {"type": "string"}}}}
    c.validate_response(make_response(text={"format": schema_format}))


@pytest.mark.parametrize("key", ["temperature", "top_p", "presence_penalty", "frequency_penalty",
                                 "top_logprobs", "tool_choice", "truncation", "background", "service_tier",
                                 "tools"])
def test_response_rejects_null(key):
    rejected(lambda: c.validate_response(make_response(**{key: None})), "response", f"'{key}' must not be null")


@pytest.mark.parametrize("key", ["completed_at", "safety_identifier", "prompt_cache_key", "max_tool_calls",
                                 "incomplete_details", "previous_response_id", "instructions", "usage",
                                 "reasoning", "error"])
def test_response_rejects_missing_required_key(key):
    response = make_response("in_progress")
    del response[key]
    rejected(lambda: c.validate_response(response), "Open Responses schema ResponseResource", f"'{key}'")


def test_response_rejects_function_tool_without_strict():
    tool = {k: v for k, v in WEATHER_TOOL.items() if k != "strict"}
    rejected(lambda: c.validate_response(make_response(tools=[tool])),
             "response.tools[0]", "get_current_weather", "missing required key 'strict'")


@pytest.mark.parametrize("key", ["description", "parameters"])
def test_response_rejects_function_tool_without(key):
    tool = {k: v for k, v in WEATHER_TOOL.items() if k != key}
    rejected(lambda: c.validate_response(make_response(tools=[tool])), f"missing required key '{key}'")


@pytest.mark.parametrize("key", ["logprobs", "annotations"])
def test_response_rejects_output_text_without(key):
    item = message(STORY)
    del item["content"][0][key]
    rejected(lambda: c.validate_response(make_response(output=[item])),
             "response.output[0].content[0]", f"output_text must carry a '{key}' array")


def test_response_rejects_message_without_id_or_status():
    item = message(STORY)
    del item["id"]
    rejected(lambda: c.validate_response(make_response(output=[item])), "response.output[0]", "'id'")
    item = message(STORY)
    del item["status"]
    rejected(lambda: c.validate_response(make_response(output=[item])), "missing required key 'status'")


def test_openai_type_errors_are_real_validation_not_coercion():
    # pydantic's lax mode would turn "1741487325" into a number and "true" into True: strict mode refuses.
    rejected(lambda: c.validate_response(make_response(created_at="1741487325")), "created_at")
    rejected(lambda: c.validate_response(make_response(status="bogus")),
             "openai Response", "at status")
    # only the openai type checks a file_search_call (Open Responses does not define it); lax pydantic
    # would accept the string score, strict validation must not
    search = {"id": "fs_1", "type": "file_search_call", "status": "completed", "queries": ["experts"],
              "results": [{"file_id": "file-9711158333", "filename": "llama.pdf", "score": "0.91", "text": "128"}]}
    assert ResponseFileSearchToolCall.model_validate(search).results[0].score == 0.91
    rejected(lambda: c.validate_response(make_response(output=[search])), "output[0]", "score")
    # a nested item of a known type with a wrong field type, caught by the type-dispatched openai model
    item = {**function_call(), "arguments": {"location": "Boston"}}
    rejected(lambda: c.validate_response(make_response(output=[item], tools=[WEATHER_TOOL])),
             "'arguments' must be a string")


def test_response_schema_errors_point_into_the_matching_branch():
    item = message(STORY)
    item["content"][0]["annotations"] = [{"type": "url_citation", "url": "https://example.com"}]
    message_text = rejected(lambda: c.validate_response(make_response(output=[item])),
                            "Open Responses schema ResponseResource", "$.output[0].content[0].annotations[0]")
    assert "start_index" in message_text


def test_response_status_consistency():
    rejected(lambda: c.validate_response(make_response(completed_at=None)), "integer 'completed_at'")
    rejected(lambda: c.validate_response(make_response("failed", completed_at=None)), "needs an 'error' object")
    rejected(lambda: c.validate_response(make_response("incomplete", completed_at=None)),
             "incomplete_details.reason")
    usage = {**make_response()["usage"], "total_tokens": 1}
    rejected(lambda: c.validate_response(make_response(usage=usage)), "usage.total_tokens 1")


def test_response_rejects_non_dict_and_wrong_object():
    rejected(lambda: c.validate_response([]), "expected a JSON object")
    rejected(lambda: c.validate_response(make_response(object="chat.completion")), "'object' must be 'response'")


def test_extension_items_are_validated_by_openai_types():
    # file_search_call is not an Open Responses item type: the openai type checks it.
    good = {"id": "fs_1", "type": "file_search_call", "status": "completed", "queries": ["experts"],
            "results": None}
    c.validate_response(make_response(output=[good, message(STORY)]))
    bad = {**good, "queries": "experts"}
    rejected(lambda: c.validate_response(make_response(output=[bad])), "ResponseFileSearchToolCall", "queries")


# ------------------------------------------------------------------------------------------------
# items
# ------------------------------------------------------------------------------------------------

def test_items_from_input_listing():
    user = {"id": "msg_abc123", "type": "message", "role": "user", "status": "completed",
            "content": [{"type": "input_text", "text": "Tell me a three sentence bedtime story about a unicorn."}]}
    output = {"id": "fco_1", "type": "function_call_output", "call_id": CALL_ID, "output": '{"temp": 12}',
              "status": "completed"}
    for item in (user, output, message(STORY), function_call()):
        c.validate_item(item)
    listing = {"object": "list", "data": [user, output], "first_id": "msg_abc123", "last_id": "fco_1",
               "has_more": False}
    c.validate_item_list(listing)
    rejected(lambda: c.validate_item_list({**listing, "last_id": "msg_abc123"}), "first_id/last_id")
    # the spec's own listing example omits status, which Open Responses requires
    rejected(lambda: c.validate_item({k: v for k, v in user.items() if k != "status"}),
             "missing required key 'status'")
    rejected(lambda: c.validate_item({**user, "role": "wizard"}), "role")
    rejected(lambda: c.validate_item({**output, "output": 12}), "Open Responses schema ItemField", "output")
    rejected(lambda: c.validate_item({**function_call(), "status": "done"}), "status must be one of")


# ------------------------------------------------------------------------------------------------
# single events
# ------------------------------------------------------------------------------------------------

def test_good_events_pass_individually():
    for events in (text_stream(), tool_stream(), reasoning_refusal_stream()):
        for event in events:
            c.validate_event(event)
    c.validate_event(error_event())


def test_event_name_mapping_to_open_responses():
    table = c.open_responses_event_schemas()
    assert "response.reasoning_text.delta" not in table
    for openai_name, open_responses_name in c.OPENAI_TO_OPEN_RESPONSES_EVENT_TYPE.items():
        assert open_responses_name in table, openai_name
    # the Open Responses rules apply to the renamed events: its reasoning delta requires content_index
    event = find(reasoning_refusal_stream(), "response.reasoning_text.delta")
    del event["content_index"]
    rejected(lambda: c.validate_event(event), "ResponseReasoningDeltaStreamingEvent", "content_index")


def test_event_rejections():
    delta = find(text_stream(), "response.output_text.delta")
    rejected(lambda: c.validate_event({k: v for k, v in delta.items() if k != "logprobs"}), "'logprobs'")
    rejected(lambda: c.validate_event({**delta, "delta": 5}), "delta")
    rejected(lambda: c.validate_event({**delta, "sequence_number": "3"}), "sequence_number")
    rejected(lambda: c.validate_event({**delta, "type": "response.output_text.delta2"}), "unknown stream event type")
    rejected(lambda: c.validate_event({**delta, "item_id": None}), "item_id")
    created = find(text_stream(), "response.created")
    created["response"]["temperature"] = None
    rejected(lambda: c.validate_event(created), "event 'response.created'", ".response", "'temperature' must not be null")
    added = find(text_stream(), "response.output_item.added")
    del added["item"]["id"]
    rejected(lambda: c.validate_event(added), "item", "'id'")
    part = find(text_stream(), "response.content_part.added")
    del part["part"]["logprobs"]
    rejected(lambda: c.validate_event(part), "part", "'logprobs' array")
    args_done = find(tool_stream(), "response.function_call_arguments.done")
    del args_done["name"]
    rejected(lambda: c.validate_event(args_done), "'name' must be a non-empty string")


def test_error_event_needs_both_shapes():
    flat = {k: v for k, v in error_event().items() if k != "error"}
    rejected(lambda: c.validate_event(flat), "missing required key 'error'")
    nested = {k: v for k, v in error_event().items() if k not in ("code", "message", "param")}
    rejected(lambda: c.validate_event(nested), "missing required key 'code'")
    mismatch = error_event()
    mismatch["error"]["message"] = "something else"
    rejected(lambda: c.validate_event(mismatch), "error.message")


# ------------------------------------------------------------------------------------------------
# streams
# ------------------------------------------------------------------------------------------------

def test_good_streams_pass():
    final = c.validate_stream(text_stream())
    assert final["output"][0]["content"][0]["text"] == STORY
    assert c.validate_stream(tool_stream())["output"][0]["arguments"] == ARGS
    final = c.validate_stream(reasoning_refusal_stream())
    assert [item["type"] for item in final["output"]] == ["reasoning", "message"]


def test_stream_with_error_event_then_failed():
    events = text_stream()[:5]
    failed = make_response("failed", error={"code": "server_error", "message": "upstream went away"})
    events[2:] = []  # created, in_progress; then an error and the terminal failure
    events += [error_event(), {"type": "response.failed", "response": {**failed, "completed_at": None}}]
    c.validate_stream(numbered(events))


def test_background_stream_starts_queued():
    events = text_stream()
    events[0]["response"].update(status="queued", background=True)
    queued = {"type": "response.queued", "response": make_response("queued", background=True)}
    for event in events[1:]:
        if "response" in event:
            event["response"]["background"] = True
    events.insert(1, queued)
    c.validate_stream(numbered(events))
    queued["response"]["status"] = "in_progress"
    rejected(lambda: c.validate_stream(events), "stream event[1]", "response.queued status must be 'queued'")


def test_incomplete_stream():
    events = text_stream(STORY[:20])
    events[-2]["item"]["status"] = "incomplete"
    response = make_response("incomplete", [copy.deepcopy(events[-2]["item"])],
                             incomplete_details={"reason": "max_output_tokens"}, completed_at=None)
    events[-1] = {"type": "response.incomplete", "sequence_number": events[-1]["sequence_number"],
                  "response": response}
    c.validate_stream(events)


def mutate(builder: Callable[[], list[dict]], change: Callable[[list[dict]], object], renumber: bool = True):
    events = builder()
    change(events)
    return numbered(events) if renumber else events


def _swap(events: list[dict], i: int, j: int) -> None:
    events[i], events[j] = events[j], events[i]


def _set(event: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    target = event
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    target[int(last) if last.isdigit() else last] = value


STREAM_MUTATIONS = {
    "sequence numbers going backwards": (
        text_stream, lambda ev: _set(ev[5], "sequence_number", 3), False, "sequence_number must be 5"),
    "sequence numbers starting at 1": (
        text_stream, lambda ev: [_set(e, "sequence_number", e["sequence_number"] + 1) for e in ev], False,
        "sequence_number must be 0"),
    "first event not response.created": (
        text_stream, lambda ev: _swap(ev, 0, 1), True, "first event must be response.created"),
    "no response.in_progress": (
        text_stream, lambda ev: ev.pop(1), True, "before response.in_progress"),
    "created with status completed": (
        text_stream, lambda ev: ev[0].update(response=make_response("completed")), True,
        "status must be 'in_progress' or 'queued'"),
    "delta text mismatch": (
        text_stream, lambda ev: _set(ev[5], "delta", "XXXX"), True, "!= concatenated deltas"),
    "done text differs from the item text": (
        text_stream, lambda ev: _set(find(ev, "response.output_item.done"), "item.content.0.text", "other"),
        True, "differs from the part in its done event"),
    "part text differs from the deltas": (
        text_stream, lambda ev: _set(find(ev, "response.content_part.done"), "part.text", "other"), True,
        "part.text"),
    "item added without id": (
        text_stream, lambda ev: find(ev, "response.output_item.added")["item"].pop("id"), True, "'id'"),
    "message added with content": (
        text_stream, lambda ev: _set(find(ev, "response.output_item.added"), "item.content",
                                     [output_text("x")]), True, "content []"),
    "message added completed": (
        text_stream, lambda ev: _set(find(ev, "response.output_item.added"), "item.status", "completed"), True,
        "status 'in_progress'"),
    "part added with text": (
        text_stream, lambda ev: _set(find(ev, "response.content_part.added"), "part.text", "In"), True,
        "must be the empty output_text part"),
    "event after completed": (
        text_stream, lambda ev: ev.append(copy.deepcopy(ev[5])), True, "event after the terminal event"),
    "two terminal events": (
        text_stream, lambda ev: ev.append(copy.deepcopy(ev[-1])), True, "event after the terminal event"),
    "no terminal event": (
        text_stream, lambda ev: ev.pop(), True, "ended without a terminal event"),
    "item never done": (
        text_stream, lambda ev: ev.remove(find(ev, "response.output_item.done")), True,
        "never got response.output_item.done"),
    "part never done": (
        text_stream, lambda ev: ev.remove(find(ev, "response.content_part.done")), True, "never closed"),
    "output_text.done missing": (
        text_stream, lambda ev: ev.remove(find(ev, "response.output_text.done")), True,
        "closed before its text .done event"),
    "delta after text done": (
        text_stream, lambda ev: ev.insert(-3, copy.deepcopy(ev[5])), True, "after response.output_text.done"),
    "delta with unknown item id": (
        text_stream, lambda ev: _set(ev[5], "item_id", "msg_other"), True, "never announced"),
    "delta with wrong output_index": (
        text_stream, lambda ev: _set(ev[5], "output_index", 1), True, "output_index 1 does not match"),
    "delta for an unopened content part": (
        text_stream, lambda ev: _set(ev[5], "content_index", 1), True, "content_index 1"),
    "output_index not starting at 0": (
        text_stream, lambda ev: [_set(e, "output_index", 1) for e in ev if "output_index" in e], True,
        "output_index must be 0"),
    "terminal output differs from the done items": (
        text_stream, lambda ev: _set(ev[-1], "response.output", []), True, "response.output[0] differs"),
    "terminal status does not match the event": (
        text_stream, lambda ev: _set(ev[-1], "response.status", "incomplete"), True,
        "incomplete_details.reason"),
    "terminal response with another id": (
        text_stream, lambda ev: _set(ev[-1], "response.id", "resp_other"), True, "response.id"),
    "snapshot with null temperature": (
        text_stream, lambda ev: _set(ev[1], "response.temperature", None), True, "'temperature' must not be null"),
    "function_call added with arguments": (
        tool_stream, lambda ev: _set(ev[2], "item.arguments", ARGS), True, "arguments ''"),
    "function arguments delta mismatch": (
        tool_stream, lambda ev: _set(ev[3], "delta", "{{{{{"), True, "!= concatenated deltas"),
    "function arguments done missing": (
        tool_stream, lambda ev: ev.remove(find(ev, "response.function_call_arguments.done")), True,
        "without response.function_call_arguments.done"),
    "function arguments done with another name": (
        tool_stream, lambda ev: _set(find(ev, "response.function_call_arguments.done"), "name", "other"), True,
        "differs from the item's"),
    "function call done with other arguments": (
        tool_stream, lambda ev: [_set(find(ev, "response.output_item.done"), "item.arguments", "{}"),
                                 _set(ev[-1], "response.output.0.arguments", "{}")], True,
        "item.arguments"),
    "echoed function tool without strict": (
        tool_stream, lambda ev: ev[-1]["response"]["tools"][0].pop("strict"), True,
        "missing required key 'strict'"),
    "annotation not in the done part": (
        reasoning_refusal_stream, lambda ev: _set(find(ev, "response.content_part.done", 2), "part.annotations", []),
        True, "part.annotations"),
    "annotation index skipping": (
        reasoning_refusal_stream,
        lambda ev: _set(find(ev, "response.output_text.annotation.added"), "annotation_index", 1), True,
        "annotation_index must be 0"),
    "refusal delta mismatch": (
        reasoning_refusal_stream, lambda ev: _set(find(ev, "response.refusal.delta"), "delta", "No"), True,
        "refusal"),
    "reasoning text done mismatch": (
        reasoning_refusal_stream, lambda ev: _set(find(ev, "response.reasoning_text.done"), "text", "x"), True,
        "!= concatenated deltas"),
    "summary missing from the done item": (
        reasoning_refusal_stream,
        lambda ev: [_set(find(ev, "response.output_item.done"), "item.summary", []),
                    _set(ev[-1], "response.output.0.summary", [])], True, "item.summary has 0 parts"),
    "refusal delta into a text part": (
        reasoning_refusal_stream,
        lambda ev: _set(find(ev, "response.refusal.delta"), "content_index", 1), True, "content_index 1"),
}


@pytest.mark.parametrize("name", list(STREAM_MUTATIONS))
def test_stream_rejects(name):
    builder, change, renumber, fragment = STREAM_MUTATIONS[name]
    events = mutate(builder, change, renumber)
    message = rejected(lambda: c.validate_stream(events), fragment)
    assert message.startswith(("stream event[", "stream:")), message


def test_stream_rejection_names_the_event():
    events = text_stream()
    events[6]["delta"] = 42
    rejected(lambda: c.validate_stream(events), "stream event[6]", "'response.output_text.delta'",
             "sequence_number=6")


def test_three_hundred_events_validate_fast():
    events = text_stream("x" * 292, size=1)  # 4 opening events, 292 deltas, 4 closing events
    assert len(events) == 300
    c.validate_stream(text_stream())  # warm the schema and model caches
    start = time.perf_counter()
    c.validate_stream(events)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5, f"300 events took {elapsed:.3f}s"


# ------------------------------------------------------------------------------------------------
# error envelopes
# ------------------------------------------------------------------------------------------------

def test_error_envelope():
    body = {"error": {"message": "Model 'nope' not found.", "type": "invalid_request_error", "param": "model",
                      "code": "model_not_found"}}
    assert c.validate_error_envelope(body, 400, param="model", code="model_not_found")["param"] == "model"
    c.validate_error_envelope({"error": {"message": "upstream failed", "type": "server_error", "param": None,
                                         "code": "upstream_error"}}, 502, param=None)
    rejected(lambda: c.validate_error_envelope(body, 400, param="input"), "param 'model', expected 'input'")
    rejected(lambda: c.validate_error_envelope(body, 400, code=None), "code 'model_not_found', expected None")
    rejected(lambda: c.validate_error_envelope(body, 500), "HTTP 500 must have type 'server_error'")
    rejected(lambda: c.validate_error_envelope(body, 200), "4xx/5xx")
    for key in ("message", "type", "param", "code"):
        broken = {"error": {k: v for k, v in body["error"].items() if k != key}}
        rejected(lambda broken=broken: c.validate_error_envelope(broken, 400), f"missing required key '{key}'")
    rejected(lambda: c.validate_error_envelope({"error": {**body["error"], "message": ""}}, 400),
             "'message' must be a non-empty string")
    rejected(lambda: c.validate_error_envelope({**body, "detail": "x"}, 400), "exactly")
    rejected(lambda: c.validate_error_envelope({"detail": "Not Found"}, 404), "exactly")


# ------------------------------------------------------------------------------------------------
# chat completions, embeddings, models
# ------------------------------------------------------------------------------------------------

def chat_completion() -> dict:
    return {"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion", "created": 1741569952,
            "model": "gpt-4.1-2025-04-14",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! How can I assist you today?",
                                                  "refusal": None, "annotations": []},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
                      "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                    "accepted_prediction_tokens": 0,
                                                    "rejected_prediction_tokens": 0}},
            "service_tier": "default"}


def test_chat_completion():
    assert c.validate_chat_completion(chat_completion()).choices[0].message.content.startswith("Hello")
    bad = chat_completion()
    del bad["choices"][0]["logprobs"]
    rejected(lambda: c.validate_chat_completion(bad), "choices[0]", "'logprobs'")
    bad = chat_completion()
    del bad["choices"][0]["message"]["refusal"]
    rejected(lambda: c.validate_chat_completion(bad), "'refusal'")
    bad = chat_completion()
    bad["choices"][0]["finish_reason"] = "done"
    rejected(lambda: c.validate_chat_completion(bad), "openai ChatCompletion", "finish_reason")
    bad = chat_completion()
    bad["usage"]["total_tokens"] = 30
    rejected(lambda: c.validate_chat_completion(bad), "total_tokens 30")
    rejected(lambda: c.validate_chat_completion({**chat_completion(), "created": "1741569952"}), "created")


def test_chat_chunk():
    chunk = {"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
             "model": "gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb",
             "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                          "finish_reason": None}]}
    c.validate_chat_chunk(chunk)
    c.validate_chat_chunk({**chunk, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2,
                                                             "total_tokens": 3}})
    bad = copy.deepcopy(chunk)
    del bad["choices"][0]["finish_reason"]
    rejected(lambda: c.validate_chat_chunk(bad), "missing required key 'finish_reason'")
    rejected(lambda: c.validate_chat_chunk({**chunk, "object": "chat.completion"}), "chat.completion.chunk")


def test_embeddings():
    body = {"object": "list", "model": "text-embedding-ada-002",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.0023064255, -0.009327292, -0.0028842222]}],
            "usage": {"prompt_tokens": 8, "total_tokens": 8}}
    c.validate_embeddings(body, dimensions=3)
    rejected(lambda: c.validate_embeddings(body, dimensions=4), "expected 4")
    rejected(lambda: c.validate_embeddings({**body, "data": [{**body["data"][0], "embedding": ["x"]}]}),
             "array of numbers")
    rejected(lambda: c.validate_embeddings({**body, "data": [{**body["data"][0], "index": 1}]}), "index 0")
    encoded = base64.b64encode(struct.pack("<3f", 0.1, 0.2, 0.3)).decode()
    as_base64 = {**body, "data": [{**body["data"][0], "embedding": encoded}]}
    c.validate_embeddings(as_base64, encoding_format="base64", dimensions=3)
    rejected(lambda: c.validate_embeddings(as_base64), "array of numbers")
    rejected(lambda: c.validate_embeddings({**as_base64, "data": [{**body["data"][0], "embedding": "abc"}]},
                                           encoding_format="base64"), "base64")


def test_models():
    model = {"id": "openai/gpt-4o", "object": "model", "created": 1686935002, "owned_by": "openai"}
    assert c.validate_model(model).id == "openai/gpt-4o"
    assert len(c.validate_model_list({"object": "list", "data": [model, {**model, "id": "local/smollm2"}]})) == 2
    rejected(lambda: c.validate_model({k: v for k, v in model.items() if k != "owned_by"}), "'owned_by'")
    rejected(lambda: c.validate_model({**model, "created": "yesterday"}), "openai Model", "created")
    rejected(lambda: c.validate_model_list({"object": "list", "data": [model, model]}), "duplicate model ids")
    rejected(lambda: c.validate_model_list({"data": [model]}), "'object'")
