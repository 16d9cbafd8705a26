"""Responses over HTTP with the official SDK: create, chain, store, retrieve, list, delete, input items.

Runs on SQLite and on PostgreSQL (`any_client`), against the scripted upstream (`up/scripted`).
"""

from __future__ import annotations

import openai
import pytest

from tests.api.wire import create, retrieve
from tests.support.conformance import validate_error_envelope, validate_item
from tests.support.upstream import reply

MODEL = "up/scripted"


def test_create_retrieve_delete(any_client: openai.OpenAI, upstream) -> None:
    upstream.script(reply("Saturn", " has rings."))
    r = create(any_client, model=MODEL, input="Which planet has rings and starts with S?")
    assert r.status == "completed"
    assert r.output_text == "Saturn has rings."
    assert r.model == MODEL
    assert r.usage is not None and r.usage.output_tokens > 0 and r.usage.input_tokens > 0
    assert upstream.last_chat["messages"] == [{"role": "user", "content": "Which planet has rings and starts with S?"}]
    assert upstream.last_chat["model"] == "scripted"

    got = retrieve(any_client, r.id)
    assert got.id == r.id and got.output_text == r.output_text and got.status == "completed"

    deleted = any_client.responses.delete(r.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    with pytest.raises(openai.NotFoundError) as err:
        retrieve(any_client, r.id)
    validate_error_envelope(err.value.response.json(), 404)
    with pytest.raises(openai.NotFoundError):
        any_client.responses.delete(r.id)


def test_previous_response_id_carries_the_chain_but_not_instructions(any_client: openai.OpenAI, upstream) -> None:
    upstream.script(reply("Saturn."), reply("SATURN."), reply("Done."))
    r1 = create(any_client, model=MODEL, input="Which planet?", instructions="Be brief.")
    assert upstream.last_chat["messages"][0] == {"role": "system", "content": "Be brief."}
    r2 = create(any_client, model=MODEL, input="Repeat your previous response in all caps.",
                                     previous_response_id=r1.id)
    assert r2.previous_response_id == r1.id
    assert r2.instructions is None
    assert upstream.last_chat["messages"] == [
        {"role": "user", "content": "Which planet?"},
        {"role": "assistant", "content": "Saturn."},
        {"role": "user", "content": "Repeat your previous response in all caps."},
    ]
    r3 = create(any_client, model=MODEL, input="Thanks", previous_response_id=r2.id, instructions="New.")
    assert [m["content"] for m in upstream.last_chat["messages"]] == [
        "New.", "Which planet?", "Saturn.", "Repeat your previous response in all caps.", "SATURN.", "Thanks"]
    assert r3.output_text == "Done."


def test_store_false_is_not_retrievable_nor_continuable(any_client: openai.OpenAI, upstream) -> None:
    upstream.script(reply("ephemeral"))
    r = create(any_client, model=MODEL, input="hi", store=False)
    assert r.store is False and r.output_text == "ephemeral"
    with pytest.raises(openai.NotFoundError):
        retrieve(any_client, r.id)
    with pytest.raises(openai.NotFoundError) as err:
        create(any_client, model=MODEL, input="again", previous_response_id=r.id)
    body = err.value.response.json()
    validate_error_envelope(body, 404, param="previous_response_id", code="previous_response_not_found")


def test_parameters_are_echoed_and_sent_upstream(any_client: openai.OpenAI, upstream) -> None:
    upstream.script(reply("ok"))
    r = create(
        any_client, model=MODEL, input="hi", temperature=0.2, top_p=0.5, max_output_tokens=50, metadata={"k": "v"},
        user="u1", safety_identifier="s1", prompt_cache_key="p1", parallel_tool_calls=False, truncation="auto",
        prompt_cache_retention="24h", text={"verbosity": "low"})
    assert (r.temperature, r.top_p, r.max_output_tokens, r.metadata) == (0.2, 0.5, 50, {"k": "v"})
    assert (r.user, r.safety_identifier, r.prompt_cache_key, r.truncation) == ("u1", "s1", "p1", "auto")
    sent = upstream.last_chat
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"]) == (0.2, 0.5, 50)
    assert (sent["user"], sent["safety_identifier"], sent["prompt_cache_key"]) == ("u1", "s1", "p1")
    assert (sent["prompt_cache_retention"], sent["verbosity"]) == ("24h", "low") and r.text.verbosity == "low"
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}

    upstream.script(reply("ok"))
    r = create(any_client, model=MODEL, input="hi")
    # unset sampling parameters are not sent, and are echoed with their defaults (never null)
    assert not {"temperature", "top_p", "max_tokens", "tools", "tool_choice"} & set(upstream.last_chat)
    assert (r.temperature, r.top_p, r.tool_choice, r.truncation, r.tools) == (1.0, 1.0, "auto", "disabled", [])


def test_input_items_pagination(any_client: openai.OpenAI, upstream) -> None:
    upstream.script(reply("ok"))
    items = [{"role": "user", "content": f"m{i}"} for i in range(5)]
    r = create(any_client, model=MODEL, input=items)
    page = any_client.responses.input_items.list(r.id)
    texts = [i.content[0].text for i in page.data]
    assert texts == ["m4", "m3", "m2", "m1", "m0"]  # newest first by default
    for item in any_client.get(f"/responses/{r.id}/input_items", cast_to=object)["data"]:
        validate_item(item)
    asc = any_client.responses.input_items.list(r.id, order="asc", limit=2)
    assert [i.content[0].text for i in asc.data] == ["m0", "m1"] and asc.has_more
    nxt = any_client.responses.input_items.list(r.id, order="asc", limit=2, after=asc.data[-1].id)
    assert [i.content[0].text for i in nxt.data] == ["m2", "m3"]
    before = any_client.responses.input_items.list(r.id, order="asc", extra_query={"before": page.data[0].id})
    assert [i.content[0].text for i in before.data] == ["m0", "m1", "m2", "m3"]
    with pytest.raises(openai.NotFoundError):
        any_client.responses.input_items.list("resp_missing")


def test_list_responses(any_server, upstream, request) -> None:
    client = any_server.client(request.node.nodeid)
    upstream.script(reply("a"), reply("b"), reply("c"))
    ids = [create(client, model=MODEL, input=f"q{i}", metadata={"t": request.node.name}).id
           for i in range(3)]
    listed = client.get("/responses", cast_to=object, options={"params": {"limit": 100}})
    listed_ids = [r["id"] for r in listed["data"]]
    assert listed_ids.index(ids[2]) < listed_ids.index(ids[1]) < listed_ids.index(ids[0])  # newest first
    page = client.get("/responses", cast_to=object, options={"params": {"limit": 1, "order": "asc",
                                                                        "after": ids[0]}})
    assert page["data"][0]["id"] == ids[1] and page["has_more"] is True
    none = client.get("/responses", cast_to=object, options={"params": {"model": "up/other"}})
    assert all(r["model"] == "up/other" for r in none["data"])


def test_string_and_part_content_and_images(any_client: openai.OpenAI, upstream) -> None:
    upstream.script(reply("a cat"))
    create(any_client, model=MODEL, input=[
        {"role": "developer", "content": "dev rules"},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "earlier answer"}], "phase": "final_answer"},
        {"role": "user", "content": "and now?"}])
    assert upstream.last_chat["messages"] == [
        {"role": "system", "content": "dev rules"},
        {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=",
                                                                         "detail": "low"}}]},
        {"role": "assistant", "content": "earlier answer"},
        {"role": "user", "content": "and now?"}]
