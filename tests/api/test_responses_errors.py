"""Bad input gets an OpenAI error envelope; upstream faults end the response `failed`; the server keeps going."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest

from tests.api.wire import create, post_stream, retrieve
from tests.support.conformance import validate_error_envelope, validate_stream
from tests.support.server import scripted_provider
from tests.support.upstream import cut, delay, error, midstream_error, reply

MODEL = "up/scripted"


@pytest.mark.parametrize(("body", "status", "param"), [
    ({"model": "nope/none", "input": "x"}, 400, "model"),
    ({"model": MODEL, "input": "x", "temperature": 3}, 400, "temperature"),
    ({"model": MODEL, "input": "x", "top_p": -1}, 400, "top_p"),
    ({"model": MODEL, "input": "x", "max_output_tokens": 0}, 400, "max_output_tokens"),
    ({"model": MODEL, "input": [{"type": "banana"}]}, 400, "input[0].type"),
    ({"model": MODEL, "input": [{"role": "wizard", "content": "x"}]}, 400, "input[0].role"),
    ({"model": MODEL, "input": [{"role": "user", "content": [{"type": "input_image"}]}]}, 400,
     "input[0].content[0].image_url"),
    ({"model": MODEL, "input": [{"type": "function_call_output", "output": "x"}]}, 400, "input[0].call_id"),
    ({"model": MODEL, "input": 5}, 400, "input"),
    ({"model": MODEL}, 400, "input"),
    ({"model": MODEL, "input": "x", "metadata": {"k": "v" * 600}}, 400, "metadata"),
    ({"model": MODEL, "input": "x", "previous_response_id": "resp_nope"}, 404, "previous_response_id"),
    ({"model": MODEL, "input": "x", "text": {"format": {"type": "json_schema"}}}, 400, "text.format.name"),
    ({"model": MODEL, "input": "x", "text": {"format": {"type": "json_schema", "name": "n"}}}, 400,
     "text.format.schema"),
    ({"model": MODEL, "input": "x", "max_output_tokens": 15}, 400, "max_output_tokens"),
    ({"model": MODEL, "input": "x", "include": ["bogus"]}, 400, "include[0]"),
    ({"model": MODEL, "input": "x", "prompt": {"id": "pmpt_1"}}, 400, "prompt"),
    ({"model": MODEL, "input": [{"type": "item_reference", "id": "msg_1"}]}, 400, "input[0].type"),
    ({"model": MODEL, "input": [{"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                                {"type": "function_call_output", "call_id": "c1", "output": ["x"]}]}, 400,
     "input[1].output[0].type"),
    ({"model": MODEL, "input": [{"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                                {"type": "function_call_output", "call_id": "c1",
                                 "output": [{"type": "input_text"}]}]}, 400, "input[1].output[0].text"),
    ({"model": MODEL, "input": [{"type": "function_call_output", "call_id": "nope", "output": "x"}]}, 400,
     "input"),
    ({"model": MODEL, "input": [{"role": "user", "content": "x"},
                                {"type": "function_call", "call_id": "c9", "name": "f", "arguments": "{}"},
                                {"role": "user", "content": "never mind"}]}, 400, "input"),
    ({"model": MODEL, "input": "x", "truncation": "sometimes"}, 400, "truncation"),
])
def test_bad_input_is_an_error_envelope(server, upstream, body, status, param) -> None:
    for stream in (False, True):
        response = httpx.post(f"{server.base_url}/responses", json={**body, "stream": stream}, timeout=10)
        assert response.status_code == status, response.text
        validate_error_envelope(response.json(), status, param=param)
    assert not upstream.chat_bodies


def test_unknown_model_names_the_available_ones(server) -> None:
    response = httpx.post(f"{server.base_url}/responses", json={"model": "gpt-9", "input": "x"})
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "up/scripted" in message and response.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]"])
def test_malformed_bodies(server, raw) -> None:
    response = httpx.post(f"{server.base_url}/responses", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400
    validate_error_envelope(response.json(), 400)


def test_unknown_routes_and_ids(server) -> None:
    for method, path, status in [("GET", "/v1/nothing", 404), ("GET", "/v1/responses/resp_x", 404),
                                 ("DELETE", "/v1/responses/resp_x", 404),
                                 ("GET", "/v1/responses/resp_x/input_items", 404),
                                 ("PUT", "/v1/responses", 405)]:
        response = httpx.request(method, f"{server.url}{path}")
        assert response.status_code == status, (method, path)
        validate_error_envelope(response.json(), status)


@pytest.mark.parametrize("turn", [error(500, "upstream exploded"), error(503, "overloaded"),
                                  cut(reply("partial ", "answer ", "here"), after=3),
                                  cut(reply("partial ", "answer"), after=2, abort=False),
                                  midstream_error(reply("partial ", "answer"), after=2, message="model crashed")])
def test_upstream_failure_ends_failed_and_is_stored(client: openai.OpenAI, server, upstream, turn) -> None:
    upstream.script(turn)
    events = post_stream(server.base_url, {"model": MODEL, "input": "x"})
    final = validate_stream(events)
    assert events[-1]["type"] == "response.failed"
    assert final["status"] == "failed" and final["error"]["code"] == "server_error" and final["error"]["message"]
    stored = retrieve(client, final["id"])
    assert stored.status == "failed" and stored.error.message == final["error"]["message"]

    upstream.script(turn)
    r = create(client, model=MODEL, input="x")
    assert r.status == "failed" and r.error is not None
    # the server keeps serving
    upstream.script(reply("fine again"))
    assert create(client, model=MODEL, input="x").output_text == "fine again"


def test_upstream_rate_limit_and_bad_request_codes(client: openai.OpenAI, upstream) -> None:
    upstream.script(error(429, "slow down"))
    assert create(client, model=MODEL, input="x").error.code == "rate_limit_exceeded"
    upstream.script(error(400, "bad prompt", code="invalid_value"))
    events = post_stream(client.base_url.__str__().rstrip("/"), {"model": MODEL, "input": "x"})
    assert validate_stream(events)["error"]["code"] == "invalid_prompt"
    upstream.script(error(400, "bad prompt", code="invalid_value"))  # not streamed: the upstream's 400 itself
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=MODEL, input="x")
    assert err.value.code == "invalid_value"


def test_upstream_unreachable_and_timeout(make_server, upstream) -> None:
    dead = scripted_provider(upstream).model_copy(update={"id": "dead", "base_url": "http://127.0.0.1:9/v1"})
    slow = scripted_provider(upstream).model_copy(update={"id": "slow", "timeout": 0.5})
    running = make_server([dead, slow])
    client = running.client()
    r = create(client, model="dead/scripted", input="x")
    assert r.status == "failed" and r.error.code == "server_error"
    upstream.script(delay(3, reply("too late")))
    started = time.monotonic()
    r = create(client, model="slow/scripted", input="x")
    assert r.status == "failed" and time.monotonic() - started < 2.5
    assert retrieve(client, r.id).status == "failed"


async def test_client_disconnect_stops_the_work_and_keeps_the_response(server, upstream) -> None:
    upstream.script(reply(*[f"w{i} " for i in range(200)], chunk_delay=0.02))
    async with httpx.AsyncClient(timeout=10) as http:
        async with http.stream("POST", f"{server.base_url}/responses",
                               json={"model": MODEL, "input": "long", "stream": True}) as response:
            lines = response.aiter_lines()
            response_id = None
            async for line in lines:
                if line.startswith("data: ") and '"response.created"' in line:
                    import json
                    response_id = json.loads(line[6:])["response"]["id"]
                if line.startswith("data: ") and "output_text.delta" in line:
                    break
    await upstream.wait_disconnected(1, timeout=5)  # respond closed its upstream stream too
    for _ in range(50):
        got = httpx.get(f"{server.base_url}/responses/{response_id}")
        if got.status_code == 200:
            break
        await asyncio.sleep(0.05)
    assert got.status_code == 200
    stored = got.json()
    assert stored["status"] == "cancelled"
    assert stored["output"][0]["content"][0]["text"].startswith("w0 ")


def test_upstream_auth_failure_is_the_servers_fault(client: openai.OpenAI, upstream) -> None:
    upstream.script(error(401, "Incorrect API key provided"))
    r = create(client, model=MODEL, input="x")
    assert r.status == "failed" and r.error.code == "server_error" and "API key" in r.error.message


def test_a_dangling_function_call_needs_its_output(client: openai.OpenAI, upstream) -> None:
    from tests.support.upstream import tool_call

    upstream.script(reply(tool_call("f", {}, id="call_d")))
    r = create(client, model=MODEL, input="call f", tools=[{"type": "function", "name": "f"}])
    with pytest.raises(openai.BadRequestError) as err:
        create(client, model=MODEL, input="never mind", previous_response_id=r.id)
    assert "call_d" in err.value.response.json()["error"]["message"]


async def test_abandoned_non_streamed_request_stops_its_work(server, upstream) -> None:
    upstream.script(reply(*[f"w{i} " for i in range(100)], chunk_delay=0.05))
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(f"{server.base_url}/responses", json={"model": MODEL, "input": "slow"}, timeout=0.4)
    gone = await upstream.wait_disconnected(1, timeout=5)  # respond hung up on its upstream too
    assert gone and not gone[0].completed
    listed = httpx.get(f"{server.base_url}/responses", params={"limit": 5}).json()["data"]
    assert listed[0]["status"] == "cancelled" and listed[0]["output"][0]["content"][0]["text"].startswith("w0")


async def test_a_streaming_response_is_retrievable_while_it_runs(server, upstream) -> None:
    upstream.script(reply(*[f"w{i} " for i in range(40)], chunk_delay=0.02))
    async with httpx.AsyncClient(timeout=10) as http:
        async with http.stream("POST", f"{server.base_url}/responses",
                               json={"model": MODEL, "input": "x", "stream": True}) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: ") and '"response.created"' in line:
                    import json
                    response_id = json.loads(line[6:])["response"]["id"]
                    got = await http.get(f"{server.base_url}/responses/{response_id}")
                    assert got.status_code == 200 and got.json()["status"] == "in_progress"
                if line.startswith("data: ") and '"response.completed"' in line:
                    # stored before the terminal event went out: a follow-up can chain on it at once
                    done = await http.get(f"{server.base_url}/responses/{response_id}")
                    assert done.json()["status"] == "completed"
