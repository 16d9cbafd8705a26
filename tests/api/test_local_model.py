"""The README's example on the real embedded model (SmolLM2-135M, temperature 0): a few smoke tests."""

from __future__ import annotations

import openai

from tests.api.wire import create, post_stream
from tests.support.conformance import validate_stream

MODEL = "local/smollm2-135m"


def test_issue_example_on_the_embedded_model(client: openai.OpenAI, server) -> None:
    r = create(client, model=MODEL, input="Which planet has rings and starts with S?", temperature=0,
               max_output_tokens=48)
    assert r.status in ("completed", "incomplete") and r.output_text.strip()
    assert r.model == MODEL and r.usage.input_tokens > 0 and r.usage.output_tokens > 0

    r2 = create(client, model=r.model, input="Repeat your previous response in all caps.",
                                 previous_response_id=r.id, temperature=0, max_output_tokens=48)
    assert r2.previous_response_id == r.id and r2.output_text.strip()
    assert r2.usage.input_tokens > r.usage.input_tokens  # the first turn is part of the context

    events = post_stream(server.base_url, {"model": MODEL, "input": "Count to 5", "temperature": 0,
                                           "max_output_tokens": 32})
    final = validate_stream(events)
    assert any(e["type"] == "response.output_text.delta" for e in events)
    assert final["status"] in ("completed", "incomplete") and final["output"][0]["content"][0]["text"]


def test_embedded_model_is_deterministic_at_temperature_zero(client: openai.OpenAI) -> None:
    texts = [create(client, model=MODEL, input="Name a color.", temperature=0,
                                     max_output_tokens=16).output_text for _ in range(2)]
    assert texts[0] == texts[1]
