"""Cost of reading a request body: orjson parse alone vs `api.http.parse_json` (parse + the depth check).

    PYTHONPATH=src python bench/request_parse.py

Before the limit, reading a body was `orjson.loads`; now it is `parse_json` (loads + the depth check).
Bodies: a typical ~2 KB /v1/responses body (a few messages, one function tool with a small schema), a
~64 KB body of 60 messages, 20 MB of text, 20 MB of image data URLs, 12 MB of small objects. Prints the
median per-call time.
"""

from __future__ import annotations

import statistics
import time

import orjson

from respond.api.http import nested_too_deep, parse_json


def typical_body() -> bytes:
    body = {
        "model": "openai/gpt-4o", "instructions": "You are a helpful assistant. Answer briefly.",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "What's the weather in Paris today? " * 4}]},
            {"type": "function_call", "call_id": "call_abc123", "name": "get_weather",
             "arguments": "{\"city\": \"Paris\", \"unit\": \"celsius\"}"},
            {"type": "function_call_output", "call_id": "call_abc123", "output": "{\"temp\": 21, \"sky\": \"sunny\"}"},
            {"role": "user", "content": "And tomorrow? Please also tell me whether I need an umbrella. " * 3},
        ],
        "tools": [{"type": "function", "name": "get_weather", "description": "The weather in a city on a day.",
                   "parameters": {"type": "object", "properties": {
                       "city": {"type": "string", "description": "City name"},
                       "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                       "day": {"type": "string", "description": "ISO date, default today"}},
                       "required": ["city"], "additionalProperties": False}, "strict": True}],
        "temperature": 0.2, "max_output_tokens": 512, "store": True, "stream": True,
        "metadata": {"user": "u-123", "session": "s-456"}, "text": {"format": {"type": "text"}},
    }
    raw = orjson.dumps(body)
    while len(raw) < 2048:
        body["input"].append({"role": "user", "content": "Padding message to reach a typical size."})
        raw = orjson.dumps(body)
    return raw


def many_messages(n: int, words: int) -> bytes:
    return orjson.dumps({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text",
                                                                                "text": "word " * words}]}
                                                 for _ in range(n)]})


def median_us(fn, raw: bytes, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        fn(raw)
        samples.append(time.perf_counter_ns() - started)
    return statistics.median(samples) / 1000


def main() -> None:
    images = orjson.dumps({"model": "m", "input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": "data:image/png;base64," + "A" * 1_000_000}]} for _ in range(20)]})
    objects = orjson.dumps({"model": "m", "input": [{"a": [1, 2]} for _ in range(1_000_000)]})
    cases = [("typical 2 KB", typical_body(), 20000), ("60 messages", many_messages(60, 200), 2000),
             ("20 MB of text", many_messages(2000, 2000), 9), ("20 MB of images", images, 9),
             ("12 MB of small objects", objects, 3)]
    for name, raw, runs in cases:
        loads, parse = median_us(orjson.loads, raw, runs), median_us(parse_json, raw, runs)
        print(f"{name} ({len(raw)} bytes): orjson.loads {loads:.1f} us, parse_json {parse:.1f} us "
              f"(+{100 * (parse - loads) / loads:.1f}%); the depth check alone: bracket count "
              f"{median_us(lambda r: r.count(b'{') + r.count(b'['), raw, runs):.2f} us, write-check "
              f"{median_us(lambda r: nested_too_deep(orjson.loads(r)), raw, runs) - loads:.1f} us")


if __name__ == "__main__":
    main()
