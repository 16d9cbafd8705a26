"""The README's flows against a real model, replayed from tests/recordings (re-record: `make record`).

Recorded from the embedded SmolLM2-135M at temperature 0 by default; the assertions hold for any model.
"""

from __future__ import annotations

import json

import openai

from tests.api.wire import create, post_stream
from tests.support.conformance import validate_chat_chunk, validate_embeddings, validate_stream
from tests.support.recorded import RECORDED_MODEL

WEATHER = {"type": "function", "name": "get_weather", "description": "Current weather for a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}, "strict": True}


def test_readme_example(recorded_client: openai.OpenAI, recorded_server, request) -> None:
    r = create(recorded_client, model=RECORDED_MODEL, input="Which planet has rings and starts with S?",
               temperature=0, max_output_tokens=64)
    assert r.status in ("completed", "incomplete") and r.output_text.strip()
    r2 = create(recorded_client, model=r.model, input="Repeat your previous response in all caps.",
                previous_response_id=r.id, temperature=0, max_output_tokens=64)
    assert r2.output_text.strip() and r2.usage.input_tokens > r.usage.input_tokens
    events = post_stream(recorded_server.base_url, {"model": r.model, "input": "Count to 5", "temperature": 0,
                                                    "max_output_tokens": 32}, test_id=request.node.nodeid)
    final = validate_stream(events)
    assert [e["type"] for e in events][:2] == ["response.created", "response.in_progress"]
    assert final["output"][0]["content"][0]["text"]


def test_forced_function_call_round_trip(recorded_client: openai.OpenAI) -> None:
    r1 = create(recorded_client, model=RECORDED_MODEL, input="What's the weather in Paris?", tools=[WEATHER],
                tool_choice={"type": "function", "name": "get_weather"}, temperature=0)
    call = r1.output[-1]
    assert call.type == "function_call" and call.name == "get_weather"
    assert isinstance(json.loads(call.arguments)["city"], str)
    r2 = create(recorded_client, model=RECORDED_MODEL, previous_response_id=r1.id, tools=[WEATHER], temperature=0,
                max_output_tokens=48,
                input=[{"type": "function_call_output", "call_id": call.call_id, "output": "18°C and sunny"}])
    assert r2.status in ("completed", "incomplete") and r2.output_text.strip()


def test_structured_output(recorded_client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"planet": {"type": "string"}}, "required": ["planet"],
              "additionalProperties": False}
    r = create(recorded_client, model=RECORDED_MODEL, input="Which planet has rings? Answer in JSON.", temperature=0,
               max_output_tokens=40, text={"format": {"type": "json_schema", "name": "answer", "schema": schema,
                                                      "strict": True}})
    assert isinstance(json.loads(r.output_text)["planet"], str)


def test_chat_completions_and_embeddings(recorded_client: openai.OpenAI) -> None:
    chunks = list(recorded_client.chat.completions.create(
        model=RECORDED_MODEL, messages=[{"role": "user", "content": "Say hello."}], stream=True, temperature=0,
        max_tokens=16))
    for chunk in chunks:
        validate_chat_chunk(chunk.model_dump(mode="json", exclude_unset=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
    raw = recorded_client.embeddings.with_raw_response.create(model="local/all-minilm-l6-v2",
                                                              input=["a cat", "a kitten", "a tax form"])
    validate_embeddings(raw.http_response.json(), encoding_format="base64")  # what the SDK asks for
    vectors = [d.embedding for d in raw.parse().data]

    def cos(a, b):
        return sum(x * y for x, y in zip(a, b, strict=True)) / (
            sum(x * x for x in a) ** 0.5 * sum(y * y for y in b) ** 0.5)
    assert len(vectors[0]) == 384 and cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2])
