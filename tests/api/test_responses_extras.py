"""compact, input_tokens, truncation=auto, and the frame format of the stream."""

from __future__ import annotations

import openai
import pytest

from respond.responses.compact import INSTRUCTION
from tests.api.wire import create
from tests.support.upstream import error, reply

MODEL = "up/scripted"


def test_compact_output_is_accepted_back_as_input(client: openai.OpenAI, upstream) -> None:
    upstream.script(reply("Saturn."), reply("User asked about ringed planets; answer was Saturn."),
                    reply("Yes, Saturn."))
    r1 = create(client, model=MODEL, input="Which planet has rings?")
    compacted = client.post("/responses/compact", cast_to=object,
                            body={"model": MODEL, "previous_response_id": r1.id})
    assert compacted["object"] == "response.compaction"
    kinds = [i["type"] for i in compacted["output"]]
    assert kinds == ["message", "compaction"]
    assert compacted["output"][0]["role"] == "user"
    assert upstream.chat_bodies[-1]["messages"] == [
        {"role": "user", "content": "Which planet has rings?"}, {"role": "assistant", "content": "Saturn."},
        {"role": "user", "content": INSTRUCTION}]

    r2 = create(client, model=MODEL, input=compacted["output"] + [{"role": "user", "content": "Sure?"}])
    assert r2.output_text == "Yes, Saturn."
    sent = upstream.last_chat["messages"]
    assert sent[0] == {"role": "user", "content": "Which planet has rings?"}
    assert sent[1]["role"] == "system" and "answer was Saturn" in sent[1]["content"]
    assert sent[2] == {"role": "user", "content": "Sure?"}


def test_forged_compaction_item_is_rejected(client: openai.OpenAI) -> None:
    try:
        create(client, model=MODEL, input=[{"type": "compaction", "encrypted_content": "garbage"}])
    except openai.BadRequestError as err:
        assert err.response.json()["error"]["code"] == "invalid_encrypted_content"
    else:
        raise AssertionError("expected a 400")


def test_input_tokens_counts(client: openai.OpenAI, upstream) -> None:
    small = client.post("/responses/input_tokens", cast_to=object, body={"model": MODEL, "input": "hi"})
    big = client.post("/responses/input_tokens", cast_to=object,
                      body={"model": MODEL, "input": "hello world " * 100, "instructions": "be nice"})
    assert small["object"] == "response.input_tokens"
    assert 0 < small["input_tokens"] < 20 and big["input_tokens"] > 200
    assert not upstream.chat_bodies  # counting does not call the model


def test_truncation_auto_drops_oldest_turns_on_context_overflow(client: openai.OpenAI, upstream) -> None:
    upstream.script(reply("first"), reply("second"))
    r1 = create(client, model=MODEL, input="one")
    r2 = create(client, model=MODEL, input="two", previous_response_id=r1.id)
    overflow = error(400, "This model's maximum context length is 10 tokens.", code="context_length_exceeded")
    upstream.script(overflow, reply("third"))
    r3 = create(client, model=MODEL, input="three", previous_response_id=r2.id, truncation="auto")
    assert r3.status == "completed" and r3.output_text == "third"
    first, retry = upstream.chat_bodies[-2:]
    assert len(first["messages"]) == 5 and [m["content"] for m in retry["messages"]] == ["two", "second", "three"]

    upstream.script(overflow)
    with pytest.raises(openai.BadRequestError) as err:  # truncation disabled: the upstream's 400 as it came
        client.responses.create(model=MODEL, input="four", previous_response_id=r3.id)
    assert err.value.code == "context_length_exceeded" and "context length" in err.value.message


def test_input_tokens_needs_a_known_model(client: openai.OpenAI) -> None:
    try:
        client.post("/responses/input_tokens", cast_to=object, body={"model": "zz/zz", "input": "hi"})
    except openai.BadRequestError as err:
        assert err.response.json()["error"]["param"] == "model"
    else:
        raise AssertionError("expected a 400")


def test_max_tokens_field_follows_the_provider(make_server, upstream) -> None:
    from tests.support.server import scripted_provider

    provider = scripted_provider(upstream).model_copy(update={"max_tokens_field": "max_completion_tokens"})
    client = make_server([provider]).client()
    upstream.script(reply("ok"))
    create(client, model=MODEL, input="x", max_output_tokens=32)
    assert upstream.last_chat["max_completion_tokens"] == 32 and "max_tokens" not in upstream.last_chat


def test_truncation_auto_with_the_embedded_model(client: openai.OpenAI) -> None:
    long_history = [{"role": "user", "content": "word " * 9000}, {"role": "assistant", "content": "ok"},
                    {"role": "user", "content": "Say hi"}]
    r = create(client, model="local/smollm2-135m", input=long_history, truncation="auto",
                                temperature=0, max_output_tokens=16)
    assert r.status in ("completed", "incomplete") and r.output_text
    r = create(client, model="local/smollm2-135m", input=long_history, temperature=0,
                                max_output_tokens=16)
    assert r.status == "failed" and r.error.code == "invalid_prompt"
