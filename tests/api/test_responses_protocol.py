"""Protocol faults found by outside conformance runs (issue 6): message order for tool results, media in tool
outputs, upstream rejections, service_tier, logprobs in streams, unknown/mistyped parameters, a missing
model, /responses/compact. The real server over HTTP with the scripted upstream; the upstream's requests are
asserted exactly."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
import pytest

from tests.api.wire import create, post_stream, retrieve
from tests.support.conformance import validate_error_envelope, validate_response, validate_stream
from tests.support.server import scripted_provider
from tests.support.upstream import chunk, chunks, delay, error, reply, tool_call

MODEL = "up/scripted"
TOOLS = [{"type": "function", "name": "get_weather"}, {"type": "function", "name": "get_time"}]
PNG = "data:image/png;base64,iVBORw0KGgo="


def _post(server: Any, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.base_url}{path}", json=body, timeout=30)


def _call(call_id: str, name: str, arguments: str = "{}") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


# -- 1. tool outputs follow their calls ------------------------------------------------------------------------

def test_tool_output_after_a_user_message_follows_its_call(client: openai.OpenAI, upstream) -> None:
    upstream.script(reply(tool_call("get_weather", "{}", id="call_W")), reply("Sunny."))
    r1 = create(client, model=MODEL, input="Weather?", tools=TOOLS)
    r2 = create(client, model=MODEL, previous_response_id=r1.id, tools=TOOLS, input=[
        {"role": "user", "content": "Answer in one word."},
        {"type": "function_call_output", "call_id": "call_W", "output": "sunny"}])
    assert r2.output_text == "Sunny."
    assert upstream.last_chat["messages"] == [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "", "tool_calls": [_call("call_W", "get_weather")]},
        {"role": "tool", "tool_call_id": "call_W", "content": "sunny"},
        {"role": "user", "content": "Answer in one word."}]


def test_parallel_outputs_in_any_order_follow_their_calls(client: openai.OpenAI, upstream) -> None:
    upstream.script(reply("ok"))
    create(client, model=MODEL, tools=TOOLS, input=[
        {"role": "user", "content": "Weather and time?"},
        {"type": "function_call_output", "call_id": "c2", "output": "noon"},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
        {"role": "user", "content": "quickly"},
        {"type": "function_call", "call_id": "c2", "name": "get_time", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "rain"},
        {"role": "developer", "content": "be brief"}])
    assert upstream.last_chat["messages"] == [
        {"role": "user", "content": "Weather and time?"},
        {"role": "assistant", "content": "", "tool_calls": [_call("c1", "get_weather")]},
        {"role": "tool", "tool_call_id": "c1", "content": "rain"},
        {"role": "user", "content": "quickly"},
        {"role": "assistant", "content": "", "tool_calls": [_call("c2", "get_time")]},
        {"role": "tool", "tool_call_id": "c2", "content": "noon"},
        {"role": "system", "content": "be brief"}]

    upstream.script(reply("ok"))
    create(client, model=MODEL, tools=TOOLS, input=[
        {"role": "user", "content": "Weather and time?"},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "get_time", "arguments": "{}"},
        {"role": "user", "content": "here you go"},
        {"type": "function_call_output", "call_id": "c2", "output": "noon"},
        {"type": "function_call_output", "call_id": "c1", "output": "rain"}])
    assert upstream.last_chat["messages"] == [
        {"role": "user", "content": "Weather and time?"},
        {"role": "assistant", "content": "", "tool_calls": [_call("c1", "get_weather"), _call("c2", "get_time")]},
        {"role": "tool", "tool_call_id": "c1", "content": "rain"},
        {"role": "tool", "tool_call_id": "c2", "content": "noon"},
        {"role": "user", "content": "here you go"}]


# -- 2. images and files in function_call_output ---------------------------------------------------------------

def test_images_in_tool_outputs_go_in_a_user_message_after_the_tool_messages(client: openai.OpenAI,
                                                                             upstream) -> None:
    upstream.script(reply("A cat and a chart."))
    create(client, model=MODEL, tools=TOOLS, input=[
        {"role": "user", "content": "Screenshot and chart?"},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "get_time", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": [
            {"type": "input_image", "image_url": PNG, "detail": "low"}]},
        {"type": "function_call_output", "call_id": "c2", "output": [
            {"type": "input_text", "text": "chart attached"},
            {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0=", "filename": "c.pdf"}]}])
    assert upstream.last_chat["messages"] == [
        {"role": "user", "content": "Screenshot and chart?"},
        {"role": "assistant", "content": "", "tool_calls": [_call("c1", "get_weather"), _call("c2", "get_time")]},
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "(see the image below)"}]},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "chart attached"}]},
        {"role": "user", "content": [
            {"type": "text", "text": "The output of tool call c1 includes:"},
            {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
            {"type": "text", "text": "The output of tool call c2 includes:"},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "c.pdf"}}]}]


# -- 3. upstream rejections keep their meaning -----------------------------------------------------------------

def test_upstream_rejection_of_a_non_streamed_create_is_its_http_error(server, client, upstream) -> None:
    upstream.script(error(400, "Invalid image data.", code="invalid_base64_image", param="messages[0]"))
    before = httpx.get(f"{server.base_url}/responses?limit=100").json()["data"]
    response = _post(server, "/responses", {"model": MODEL, "input": "x"})
    assert response.status_code == 400, response.text
    body = response.json()
    validate_error_envelope(body, 400, param="messages[0]")
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["code"] == "invalid_base64_image"
    assert "Invalid image data." in body["error"]["message"]
    after = httpx.get(f"{server.base_url}/responses?limit=100").json()["data"]
    assert after == before  # as with OpenAI: no response was created (none stored)

    upstream.script(error(404, "no such model upstream", code="model_not_found"))
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.create(model=MODEL, input="x")
    assert err.value.code == "model_not_found"
    # a server fault stays a failed response (stored)
    upstream.script(error(500, "boom"))
    r = create(client, model=MODEL, input="x")
    assert r.status == "failed" and r.error.code == "server_error" and retrieve(client, r.id).status == "failed"


@pytest.mark.parametrize(("code", "expected"), [("invalid_image_url", "invalid_image_url"),
                                                ("failed_to_download_image", "failed_to_download_image"),
                                                ("invalid_base64_image", "invalid_base64_image"),
                                                (None, "invalid_prompt"), ("some_other_code", "invalid_prompt")])
def test_streamed_upstream_rejection_carries_openais_code(server, client, upstream, code, expected) -> None:
    upstream.script(error(400, "rejected", code=code))
    events = post_stream(server.base_url, {"model": MODEL, "input": "x"})
    final = validate_stream(events)
    assert events[-1]["type"] == "response.failed" and final["error"]["code"] == expected
    assert retrieve(client, final["id"]).error.code == expected  # streamed: the client saw it, so it is stored


@pytest.mark.parametrize(("part", "code"), [
    ({"type": "input_image", "image_url": "data:image/png;base64,@@not-base64@@"}, "invalid_base64_image"),
    ({"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo"}, "invalid_base64_image"),
    ({"type": "input_image", "image_url": "data:image/png,rawbytes"}, "invalid_image_url"),
])
def test_bad_image_data_urls_are_rejected_before_the_upstream(server, upstream, part, code) -> None:
    for stream in (False, True):
        response = _post(server, "/responses", {"model": MODEL, "stream": stream, "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "what is it?"}, part]}]})
        assert response.status_code == 400, response.text
        validate_error_envelope(response.json(), 400, param="input[0].content[1].image_url")
        assert response.json()["error"]["code"] == code
    response = _post(server, "/responses", {"model": MODEL, "tools": TOOLS, "input": [
        {"type": "function_call", "call_id": "c1", "name": "get_time", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": [part]}]})
    assert response.status_code == 400
    validate_error_envelope(response.json(), 400, param="input[1].output[0].image_url")
    assert not upstream.chat_bodies


# -- 4. service_tier ------------------------------------------------------------------------------------------

def _tier_turn(tier: str) -> Any:
    return chunks([chunk({"role": "assistant", "content": "ok"}) | {"service_tier": tier},
                   chunk({}, finish_reason="stop") | {"service_tier": tier}])


def test_service_tier_is_forwarded_and_the_served_tier_echoed(server, client, upstream) -> None:
    upstream.script(_tier_turn("flex"))
    events = post_stream(server.base_url, {"model": MODEL, "input": "x", "service_tier": "flex"})
    final = validate_stream(events)
    assert upstream.last_chat["service_tier"] == "flex"
    assert events[0]["response"]["service_tier"] == "flex" and final["service_tier"] == "flex"

    upstream.script(_tier_turn("default"))  # asked for priority, served on default
    assert create(client, model=MODEL, input="x", service_tier="priority").service_tier == "default"

    upstream.script(reply("ok"))  # unset: not forwarded; "auto" until served, then "default" as OpenAI says
    events = post_stream(server.base_url, {"model": MODEL, "input": "x"})
    assert "service_tier" not in upstream.last_chat
    assert events[0]["response"]["service_tier"] == "auto" and validate_stream(events)["service_tier"] == "default"

    upstream.script(error(400, "Invalid service_tier for this model.", code="invalid_value", param="service_tier"))
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=MODEL, input="x", service_tier="scale")
    assert err.value.param == "service_tier"
    response = _post(server, "/responses", {"model": MODEL, "input": "x", "service_tier": "turbo"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "service_tier"


# -- 5. logprobs in streams -----------------------------------------------------------------------------------

def test_logprobs_ride_on_text_events_not_on_content_part_done(server, upstream) -> None:
    lp = {"content": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}]}
    upstream.script(chunks([chunk({"role": "assistant"}), chunk({"content": "Hi"}) | {"choices": [
        {"index": 0, "delta": {"content": "Hi"}, "finish_reason": None, "logprobs": lp}]},
        chunk({}, finish_reason="stop")]))
    events = post_stream(server.base_url, {"model": MODEL, "input": "hi",
                                           "include": ["message.output_text.logprobs"]})
    final = validate_stream(events)
    by_type = {e["type"]: e for e in events}
    token = {"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}
    assert by_type["response.output_text.delta"]["logprobs"] == [token]
    assert by_type["response.output_text.done"]["logprobs"] == [token]
    assert by_type["response.content_part.done"]["part"] == {"type": "output_text", "text": "Hi",
                                                             "annotations": [], "logprobs": []}
    assert by_type["response.output_item.done"]["item"]["content"][0]["logprobs"] == [token]
    assert final["output"][0]["content"][0]["logprobs"] == [token]


# -- 6. unknown and mistyped parameters -----------------------------------------------------------------------

def test_accepted_parameters_match_the_sdk() -> None:
    """Pinned in request.py; an SDK upgrade that adds a parameter fails here (add it there)."""
    import typing

    from openai.types.responses import Response, input_token_count_params, response_compact_params
    from openai.types.responses import response_create_params as create_params

    from respond.responses import objects, request

    sdk = set(create_params.ResponseCreateParamsBase.__annotations__)
    sdk |= set(create_params.ResponseCreateParamsStreaming.__annotations__)
    assert request.CREATE_PARAMETERS == sdk | {"client_metadata"}
    assert request.COMPACT_PARAMETERS == set(response_compact_params.ResponseCompactParams.__annotations__) | {
        "client_metadata"}
    assert request.INPUT_TOKENS_PARAMETERS == set(input_token_count_params.InputTokenCountParams.__annotations__) | {
        "client_metadata"}
    tiers = typing.get_args(typing.get_args(Response.model_fields["service_tier"].annotation)[0])
    assert set(objects.SERVICE_TIERS) == set(tiers)
    assert set(typing.get_args(typing.get_args(request.CreateResponseRequest.model_fields["service_tier"]
                                               .annotation)[0])) == set(tiers)


def test_unknown_parameters_are_a_400(server, client, upstream) -> None:
    for path in ("/responses", "/responses/input_tokens", "/responses/compact"):
        response = _post(server, path, {"model": MODEL, "input": "x", "temprature": 0.5})
        assert response.status_code == 400, (path, response.text)
        validate_error_envelope(response.json(), 400, param="temprature")
        assert response.json()["error"]["code"] == "unknown_parameter"
        assert response.json()["error"]["message"] == "Unknown parameter: 'temprature'."
    # compact takes only what the SDK's responses.compact sends
    response = _post(server, "/responses/compact", {"model": MODEL, "input": "x", "tools": []})
    assert response.status_code == 400 and response.json()["error"]["param"] == "tools"
    long_name = "x" * 10_000
    response = _post(server, "/responses", {"model": MODEL, "input": "x", long_name: 1})
    assert response.status_code == 400 and len(response.json()["error"]["message"]) < 200
    assert not upstream.chat_bodies
    # what real clients send is accepted: every SDK parameter, and Codex's client_metadata
    upstream.script(reply("ok"), reply("ok"))
    assert create(client, model=MODEL, input="x", extra_body={"client_metadata": {"x": "1"}}).output_text == "ok"
    r = client.responses.create(model=MODEL, input="x", store=True, stream=False, include=[], metadata={},
                                parallel_tool_calls=True, truncation="disabled", safety_identifier="s",
                                prompt_cache_key="k", stream_options=None)
    assert r.status == "completed"


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("stream", "yes", "a boolean"), ("stream", "true", "a boolean"), ("stream", 1, "a boolean"),
    ("store", "false", "a boolean"), ("parallel_tool_calls", 0, "a boolean"), ("background", "no", "a boolean"),
    ("max_output_tokens", "100", "an integer"), ("top_logprobs", 1.5, "an integer"),
    ("temperature", "0.5", "a number"), ("top_p", True, "a number"),
    ("text", {"format": {"type": "json_schema", "name": "n", "schema": {}, "strict": "true"}}, "a boolean"),
])
def test_booleans_and_integers_are_typed(server, upstream, field, value, expected) -> None:
    response = _post(server, "/responses", {"model": MODEL, "input": "x", field: value})
    assert response.status_code == 400, response.text
    param = "text.format.strict" if field == "text" else field
    validate_error_envelope(response.json(), 400, param=param)
    assert response.json()["error"]["code"] == "invalid_type"
    assert f"expected {expected}" in response.json()["error"]["message"]
    assert not upstream.chat_bodies


def test_strict_parameters_false_accepts_and_ignores_unknown_ones(make_server, upstream) -> None:
    running = make_server([scripted_provider(upstream)], strict_parameters=False)
    upstream.script(reply("ok"))
    response = _post(running, "/responses", {"model": MODEL, "input": "x", "temprature": 0.5})
    assert response.status_code == 200 and response.json()["output"][0]["content"][0]["text"] == "ok"
    validate_response(response.json())
    assert "temprature" not in upstream.last_chat and "temperature" not in upstream.last_chat
    response = _post(running, "/responses", {"model": MODEL, "input": "x", "stream": "yes"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_type"


# -- 7. no model; long ids in messages ------------------------------------------------------------------------

def test_a_request_without_a_model_and_no_default_is_missing_model(make_server, upstream) -> None:
    running = make_server([scripted_provider(upstream)], default_model=None)
    for path in ("/responses", "/responses/input_tokens"):
        response = _post(running, path, {"input": "x"})
        assert response.status_code == 400, response.text
        validate_error_envelope(response.json(), 400, param="model")
        assert response.json()["error"]["code"] == "missing_required_parameter"
        assert response.json()["error"]["message"] == "Missing required parameter: 'model'."
    assert not upstream.chat_bodies


def test_error_messages_cut_long_ids(server) -> None:
    huge = "resp_" + "a" * 10_000
    for method, path, body in [("GET", f"/responses/{huge}", None), ("DELETE", f"/responses/{huge}", None),
                               ("POST", "/responses", {"model": "up/" + "m" * 10_000, "input": "x"}),
                               ("POST", "/responses", {"model": MODEL, "input": "x", "previous_response_id": huge}),
                               ("GET", f"/models/{'m' * 10_000}", None)]:
        response = httpx.request(method, f"{server.base_url}{path}", json=body, timeout=30)
        assert response.status_code in (400, 404), (path[:40], response.text[:200])
        validate_error_envelope(response.json(), response.status_code)
        message = response.json()["error"]["message"]
        assert "a" * 200 not in message and "m" * 200 not in message and "..." in message, message[:300]


# -- 8. /responses/compact ------------------------------------------------------------------------------------

def test_compact_requires_a_model(server, upstream) -> None:
    response = _post(server, "/responses/compact", {"input": "Which planet has rings?"})
    assert response.status_code == 400
    validate_error_envelope(response.json(), 400, param="model")
    assert response.json()["error"]["code"] == "missing_required_parameter"
    assert not upstream.chat_bodies


def test_compact_sends_the_conversation_as_a_turn_would_then_the_instruction(client: openai.OpenAI,
                                                                             upstream) -> None:
    from respond.responses.compact import INSTRUCTION

    upstream.script(reply(tool_call("get_weather", "{}", id="call_W")), reply("Sunny."), reply("Summary."))
    r1 = create(client, model=MODEL, input="Weather?", instructions="Be brief.", tools=TOOLS)
    r2 = create(client, model=MODEL, previous_response_id=r1.id, instructions="Be brief.", tools=TOOLS,
                input=[{"type": "function_call_output", "call_id": "call_W", "output": "sunny"}])
    turn_messages = upstream.last_chat["messages"] + [{"role": "assistant", "content": "Sunny."}]
    compacted = client.post("/responses/compact", cast_to=object, body={
        "model": MODEL, "previous_response_id": r2.id, "instructions": "Be brief.", "prompt_cache_key": "k1"})
    assert compacted["object"] == "response.compaction"
    sent = upstream.last_chat
    assert sent["messages"] == turn_messages + [{"role": "user", "content": INSTRUCTION}]
    assert sent["messages"][:3] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather?"},
                                    {"role": "assistant", "content": "", "tool_calls": [_call("call_W", "get_weather")]}]
    assert sent["prompt_cache_key"] == "k1"


async def test_compact_stops_its_upstream_call_when_the_client_goes_away(server, upstream) -> None:
    upstream.script(reply("Saturn."), delay(0.5, reply("A", "long", "summary", chunk_delay=0.5)))
    async with server.async_client() as aclient:
        r1 = await aclient.responses.create(model=MODEL, input="Which planet has rings?")
        task = asyncio.create_task(aclient.post("/responses/compact", cast_to=object, body={
            "model": MODEL, "previous_response_id": r1.id}))
        while len(upstream.chat_bodies) < 2:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.7)  # the upstream has started streaming the summary
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    gone = await upstream.wait_disconnected(1, timeout=5)
    assert gone[0].body["messages"][-1]["role"] == "user" and not gone[0].completed

