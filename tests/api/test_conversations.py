"""/v1/conversations and responses in a conversation, on the real server (SQLite and PostgreSQL), driven by
the official SDK; raw JSON validated against the `openai` package's conversation types."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
import pytest

from respond import jsonutil
from tests.support.conformance import validate_error_envelope, validate_response, validate_stream
from tests.support.conversations import (
    validate_conversation,
    validate_conversation_deleted,
    validate_conversation_item,
    validate_conversation_item_list,
)
from tests.support.upstream import delay, error, reply, tool_call

MODEL = "up/scripted"
FAKE_ID = "conv_zzzzzzzzz5dc81908289d62779d2ac510a2b0b602ef00a44"


@pytest.fixture
def http(any_server) -> httpx.Client:
    with httpx.Client(base_url=any_server.base_url, timeout=30) as client:
        yield client


def texts(items: list[Any]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        item = item if isinstance(item, dict) else item.model_dump()
        part = item["content"][0]
        out.append((item["role"], part.get("text")))
    return out


def sent_messages(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"] if isinstance(m["content"], str) else m["content"][0]["text"])
            for m in body["messages"]]


# -- the seed 001 script ------------------------------------------------------------------------------------

def test_seed_001_script_end_to_end(any_client: openai.OpenAI, http: httpx.Client, upstream) -> None:
    client = any_client
    conversation = client.conversations.create(metadata={"topic": "demo"},
                                               items=[{"type": "message", "role": "user", "content": "Hello!"}])
    conv_id = conversation.id
    raw = http.get(f"/conversations/{conv_id}").json()
    validate_conversation(raw)
    assert raw["metadata"] == {"topic": "demo"} and raw["created_at"] == conversation.created_at

    assert client.conversations.retrieve(conv_id).metadata == {"topic": "demo"}
    updated = client.conversations.update(conv_id, metadata={"topic": "project-x"})
    assert updated.id == conv_id and updated.metadata == {"topic": "project-x"}
    assert client.conversations.retrieve(conv_id).metadata == {"topic": "project-x"}

    created = client.conversations.items.create(conv_id, items=[
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello!"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "How are you?"}]}])
    assert len(created.data) == 2 and created.first_id == created.data[0].id and not created.has_more

    listed = client.conversations.items.list(conv_id, limit=10)
    assert texts(listed.data) == [("user", "How are you?"), ("user", "Hello!"), ("user", "Hello!")]
    validate_conversation_item_list(http.get(f"/conversations/{conv_id}/items", params={"limit": 10}).json())

    item_id = listed.data[0].id
    item = client.conversations.items.retrieve(conversation_id=conv_id, item_id=item_id)
    assert item.id == item_id and item.content[0].text == "How are you?"
    validate_conversation_item(http.get(f"/conversations/{conv_id}/items/{item_id}").json())

    after_delete = client.conversations.items.delete(conversation_id=conv_id, item_id=item_id)
    assert after_delete.id == conv_id and after_delete.object == "conversation"  # returns the conversation
    assert [i.id for i in client.conversations.items.list(conv_id).data] == [i.id for i in listed.data[1:]]
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.retrieve(conversation_id=conv_id, item_id=item_id)

    deleted = client.conversations.delete(conv_id)
    assert deleted.id == conv_id and deleted.deleted
    validate_conversation_deleted(deleted.model_dump())
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conv_id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.list(conv_id)

    # responses in a conversation, three turns in a row
    conversation2 = client.conversations.create()
    upstream.script(reply("Dodge, duck, dip, dive and dodge."), reply("Dodge, duck... (second time)"),
                    reply("Dodge, duck... (third time)"))
    first = client.responses.create(model=MODEL, input=[{"role": "user", "content": "What are the 5 Ds?"}],
                                    conversation=conversation2.id)
    assert first.conversation.id == conversation2.id
    validate_response(http.get(f"/responses/{first.id}").json())
    assert client.conversations.retrieve(conversation2.id).id == conversation2.id
    for n in ("second", "third"):
        client.responses.create(model=MODEL, input=[{"role": "user", "content": f"Repeat ({n})"}],
                                conversation=conversation2.id)
    assert sent_messages(upstream.chat_bodies[2]) == [
        ("user", "What are the 5 Ds?"), ("assistant", "Dodge, duck, dip, dive and dodge."),
        ("user", "Repeat (second)"), ("assistant", "Dodge, duck... (second time)"), ("user", "Repeat (third)")]
    items = client.conversations.items.list(conversation2.id)
    assert texts(items.data) == [
        ("assistant", "Dodge, duck... (third time)"), ("user", "Repeat (third)"),
        ("assistant", "Dodge, duck... (second time)"), ("user", "Repeat (second)"),
        ("assistant", "Dodge, duck, dip, dive and dodge."), ("user", "What are the 5 Ds?")]
    assert items.data[-2].id == first.output[0].id
    validate_conversation_item_list(http.get(f"/conversations/{conversation2.id}/items").json())

    # the made-up id
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.create(model=MODEL, input=[{"role": "user", "content": "say hello"}],
                                conversation=FAKE_ID)
    assert err.value.body["message"] == f"Conversation '{FAKE_ID}' not found."
    assert len(upstream.chat_bodies) == 3


# -- pagination and ordering ----------------------------------------------------------------------------------

def walk(client: openai.OpenAI, conv_id: str, order: str, limit: int) -> tuple[list[str], list[Any]]:
    ids, pages, after = [], [], None
    while True:
        page = client.conversations.items.list(conv_id, order=order, limit=limit,
                                               **({"after": after} if after else {}))
        pages.append(page)
        ids += [i.id for i in page.data]
        if not page.has_more:
            return ids, pages
        after = page.last_id


def test_item_pagination_both_ways(any_client: openai.OpenAI, http: httpx.Client) -> None:
    conv = any_client.conversations.create(items=[{"role": "user", "content": f"m{k}"} for k in range(20)])
    for start in (20, 40):
        any_client.conversations.items.create(conv.id, items=[
            {"role": "user", "content": f"m{k}"} for k in range(start, min(start + 20, 45))])
    every = [i.id for i in any_client.conversations.items.list(conv.id, order="asc", limit=100).data]
    assert len(every) == 45 == len(set(every))
    assert [t for _, t in texts(any_client.conversations.items.list(conv.id, order="asc", limit=100).data)] == [
        f"m{k}" for k in range(45)]

    ids, pages = walk(any_client, conv.id, "desc", 7)
    assert ids == every[::-1]
    assert [len(p.data) for p in pages] == [7] * 6 + [3]
    assert [p.has_more for p in pages] == [True] * 6 + [False]
    assert all(p.first_id == p.data[0].id and p.last_id == p.data[-1].id for p in pages)
    ids, pages = walk(any_client, conv.id, "asc", 9)  # an exact multiple: the last full page has no more
    assert ids == every and [p.has_more for p in pages] == [True] * 4 + [False]

    default = http.get(f"/conversations/{conv.id}/items").json()  # default: 20, newest first
    assert [i["id"] for i in default["data"]] == every[::-1][:20] and default["has_more"] is True
    empty = http.get(f"/conversations/{conv.id}/items", params={"after": every[-1], "order": "asc"}).json()
    assert empty == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
    for params in ({"limit": 0}, {"limit": 101}, {"order": "sideways"}):
        response = http.get(f"/conversations/{conv.id}/items", params=params)
        assert response.status_code == 400, params
        validate_error_envelope(response.json(), 400)
    response = http.get(f"/conversations/{conv.id}/items", params={"after": "msg_nope"})
    validate_error_envelope(response.json(), 404, param="after")
    response = http.get(f"/conversations/{conv.id}/items", params={"include": ["nope"]})
    validate_error_envelope(response.json(), 400, param="include")
    ok = http.get(f"/conversations/{conv.id}/items", params={"include": ["message.output_text.logprobs"]})
    assert ok.status_code == 200


# -- item types ------------------------------------------------------------------------------------------------

ALL_ITEM_TYPES: list[dict[str, Any]] = [
    {"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "look"},
        {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "low"},
        {"type": "input_file", "file_id": "file_abc", "filename": "notes.txt"}]},
    {"type": "message", "role": "system", "content": "be brief"},
    {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "dev note"}]},
    {"type": "message", "role": "assistant", "content": [
        {"type": "output_text", "text": "hi", "annotations": []}, {"type": "refusal", "refusal": "no"}]},
    {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"},
    {"type": "function_call_output", "call_id": "call_1", "output": "{\"temp\": 22}"},
    {"type": "reasoning", "summary": [{"type": "summary_text", "text": "thinking"}]},
    {"type": "compaction", "encrypted_content": "opaque-summary"},
    {"type": "file_search_call", "id": "fs_1", "queries": ["cats"], "status": "completed", "results": None},
    {"type": "web_search_call", "id": "ws_1", "status": "completed",
     "action": {"type": "search", "query": "weather paris"}},
    {"type": "mcp_list_tools", "id": "mcpl_1", "server_label": "deepwiki",
     "tools": [{"name": "ask", "input_schema": {"type": "object"}}]},
    {"type": "mcp_call", "id": "mcp_1", "server_label": "deepwiki", "name": "ask", "arguments": "{}",
     "output": "42", "status": "completed"},
    {"type": "mcp_approval_request", "id": "mcpr_1", "server_label": "deepwiki", "name": "ask",
     "arguments": "{}"},
    {"type": "mcp_approval_response", "approval_request_id": "mcpr_1", "approve": True},
]


def test_every_item_type_round_trips_and_validates(any_client: openai.OpenAI, http: httpx.Client) -> None:
    conv = any_client.conversations.create()
    created = []
    for start in range(0, len(ALL_ITEM_TYPES), 5):
        response = http.post(f"/conversations/{conv.id}/items", json={"items": ALL_ITEM_TYPES[start:start + 5]})
        assert response.status_code == 200, response.text
        created += response.json()["data"]
    assert [i["type"] for i in created] == [i["type"] for i in ALL_ITEM_TYPES]
    for item in created:
        validate_conversation_item(item)
        got = http.get(f"/conversations/{conv.id}/items/{item['id']}").json()
        assert got == item
        assert any_client.conversations.items.retrieve(item["id"], conversation_id=conv.id).type == item["type"]
    listed = http.get(f"/conversations/{conv.id}/items", params={"order": "asc", "limit": 100}).json()
    validate_conversation_item_list(listed)
    assert listed["data"] == created
    assert [m["role"] for m in created if m["type"] == "message"] == ["user", "system", "developer", "assistant"]


def test_bad_items_are_400_and_store_nothing(any_client: openai.OpenAI, http: httpx.Client) -> None:
    conv = any_client.conversations.create()
    bad = [
        {"items": [{"role": "user", "content": "x"}] * 21},
        {"items": [{"type": "message", "role": "wizard", "content": "x"}]},
        {"items": [{"role": "user", "content": "ok"}, {"type": "nonsense"}]},
        {"items": "not a list"},
        {},
    ]
    for body in bad:
        response = http.post(f"/conversations/{conv.id}/items", json=body)
        assert response.status_code == 400, body
        validate_error_envelope(response.json(), 400)
    assert any_client.conversations.items.list(conv.id).data == []
    response = http.post("/conversations", json={"items": [{"role": "user", "content": "x"}] * 21})
    validate_error_envelope(response.json(), 400, param="items", code="array_above_max_length")


# -- metadata, ids, errors ---------------------------------------------------------------------------------

def test_metadata_limits(any_client: openai.OpenAI, http: httpx.Client) -> None:
    ok = {f"k{k}": "v" * 512 for k in range(16)} | {"x" * 64: "y"}
    ok.pop("k0")
    conv = any_client.conversations.create(metadata=ok)
    assert conv.metadata == ok
    for metadata in ({f"k{k}": "v" for k in range(17)}, {"x" * 65: "v"}, {"k": "v" * 513}, {"k": 1}, "str"):
        for response in (http.post("/conversations", json={"metadata": metadata}),
                         http.post(f"/conversations/{conv.id}", json={"metadata": metadata})):
            assert response.status_code == 400, metadata
            error_body = validate_error_envelope(response.json(), 400)
            assert error_body["param"].startswith("metadata")
    assert any_client.conversations.retrieve(conv.id).metadata == ok  # unchanged
    response = http.post(f"/conversations/{conv.id}", json={})
    validate_error_envelope(response.json(), 400, param="metadata", code="missing_required_parameter")


def test_unknown_and_malformed_ids(any_client: openai.OpenAI, http: httpx.Client) -> None:
    for method, path in (("GET", ""), ("POST", ""), ("DELETE", ""), ("GET", "/items"), ("POST", "/items"),
                         ("GET", "/items/msg_1"), ("DELETE", "/items/msg_1")):
        body = {"metadata": {}, "items": []} if method == "POST" else None
        response = http.request(method, f"/conversations/{FAKE_ID}{path}", json=body)
        error_body = validate_error_envelope(response.json(), 404)
        assert error_body["message"] == f"Conversation '{FAKE_ID}' not found.", (method, path)
        response = http.request(method, f"/conversations/not-a-conversation{path}", json=body)
        validate_error_envelope(response.json(), 400, param="conversation_id")
    conv = any_client.conversations.create()
    response = http.get(f"/conversations/{conv.id}/items/msg_nope")
    validate_error_envelope(response.json(), 404, param="item_id")
    response = http.delete(f"/conversations/{conv.id}/items/msg_nope")
    validate_error_envelope(response.json(), 404, param="item_id")
    response = http.post("/conversations", content=b"[1]", headers={"content-type": "application/json"})
    validate_error_envelope(response.json(), 400)


def test_conversation_parameter_errors(any_client: openai.OpenAI, http: httpx.Client, upstream) -> None:
    conv = any_client.conversations.create()
    first = any_client.responses.create(model=MODEL, input="hi")
    response = http.post("/responses", json={"model": MODEL, "input": "x", "conversation": conv.id,
                                             "previous_response_id": first.id})
    error_body = validate_error_envelope(response.json(), 400, param="conversation")
    assert "previous_response_id" in error_body["message"] and "conversation" in error_body["message"]
    for value, param in (("nope", "conversation"), ({"id": "nope"}, "conversation.id"), (7, "conversation"),
                         ({"id": 7}, "conversation.id")):
        response = http.post("/responses", json={"model": MODEL, "input": "x", "conversation": value})
        validate_error_envelope(response.json(), 400, param=param)
    response = http.post("/responses", json={"model": MODEL, "input": "x", "conversation": {"id": FAKE_ID}})
    validate_error_envelope(response.json(), 404, param="conversation")
    assert len(upstream.chat_bodies) == 1  # only the first, valid response reached the model
    assert any_client.conversations.items.list(conv.id).data == []


def test_deleting_a_conversation_deletes_its_items(any_client: openai.OpenAI, http: httpx.Client) -> None:
    keep = any_client.conversations.create(items=[{"role": "user", "content": "keep me"}])
    gone = any_client.conversations.create(items=[{"role": "user", "content": "x"}] * 3)
    item_id = any_client.conversations.items.list(gone.id).data[0].id
    validate_conversation_deleted(http.delete(f"/conversations/{gone.id}").json())
    validate_error_envelope(http.get(f"/conversations/{gone.id}/items/{item_id}").json(), 404)
    validate_error_envelope(http.delete(f"/conversations/{gone.id}").json(), 404)
    assert texts(any_client.conversations.items.list(keep.id).data) == [("user", "keep me")]


# -- responses in a conversation ---------------------------------------------------------------------------

def test_streamed_turns_and_conversation_object_form(any_client: openai.OpenAI, http: httpx.Client,
                                                     upstream) -> None:
    conv = any_client.conversations.create(items=[{"role": "developer", "content": "Answer in one word."}])
    upstream.script(reply("Pa", "ris"), reply("Rome"))
    with http.stream("POST", "/responses", json={"model": MODEL, "input": "Capital of France?",
                                                 "conversation": {"id": conv.id}, "stream": True}) as sse:
        events = [jsonutil.loads(line[6:]) for line in sse.iter_lines() if line.startswith("data: ")]
    final = validate_stream(events)
    assert final["conversation"] == {"id": conv.id} and events[0]["response"]["conversation"] == {"id": conv.id}
    second = any_client.responses.create(model=MODEL, input="And Italy?", conversation=conv.id)
    assert sent_messages(upstream.chat_bodies[1]) == [
        ("system", "Answer in one word."), ("user", "Capital of France?"), ("assistant", "Paris"),
        ("user", "And Italy?")]
    assert [t for _, t in texts(any_client.conversations.items.list(conv.id, order="asc").data)] == [
        "Answer in one word.", "Capital of France?", "Paris", "And Italy?", "Rome"]
    stored = http.get(f"/responses/{second.id}").json()
    validate_response(stored)
    assert stored["conversation"] == {"id": conv.id}
    # input items of a response in a conversation: its own input only
    assert [i.id for i in any_client.responses.input_items.list(second.id).data] == [
        any_client.conversations.items.list(conv.id).data[1].id]


def test_tool_turns_in_a_conversation(any_client: openai.OpenAI, upstream) -> None:
    conv = any_client.conversations.create()
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}]
    upstream.script(reply(tool_call("get_weather", {"city": "Paris"}, id="call_w1")), reply("Sunny."))
    first = any_client.responses.create(model=MODEL, input="Weather?", tools=tools, conversation=conv.id)
    assert first.output[0].type == "function_call"
    any_client.responses.create(model=MODEL, tools=tools, conversation=conv.id, input=[
        {"type": "function_call_output", "call_id": "call_w1", "output": "sunny, 20C"}])
    types = [i.type for i in any_client.conversations.items.list(conv.id, order="asc").data]
    assert types == ["message", "function_call", "function_call_output", "message"]
    assert upstream.chat_bodies[1]["messages"][1]["tool_calls"][0]["id"] == "call_w1"


def test_failed_and_cancelled_responses_append_nothing(any_server, any_client: openai.OpenAI, upstream) -> None:
    conv = any_client.conversations.create(items=[{"role": "user", "content": "before"}])
    upstream.script(error(500, "upstream broke"))
    failed = any_client.responses.create(model=MODEL, input="will fail", conversation=conv.id)
    assert failed.status == "failed"
    upstream.script(delay(5, reply("too late")))

    async def cancel_midway() -> str:
        client = any_server.async_client()
        stream = await client.responses.create(model=MODEL, input="will be cancelled", conversation=conv.id,
                                               stream=True)
        async for event in stream:
            if event.type == "response.in_progress":
                response_id = event.response.id
                break
        await stream.close()
        for _ in range(200):  # the server notices the disconnect, cancels and stores the response
            retrieved = await client.responses.retrieve(response_id)
            if retrieved.status != "in_progress":
                break
            await asyncio.sleep(0.05)
        await client.close()
        assert retrieved.status == "cancelled"
        return response_id

    asyncio.run(cancel_midway())
    assert texts(any_client.conversations.items.list(conv.id).data) == [("user", "before")]
    # the conversation still works afterwards
    upstream.script(reply("fine"))
    any_client.responses.create(model=MODEL, input="again", conversation=conv.id)
    assert [t for _, t in texts(any_client.conversations.items.list(conv.id, order="asc").data)] == [
        "before", "again", "fine"]


def test_store_false_appends_to_the_conversation_but_keeps_no_response(any_client: openai.OpenAI,
                                                                       http: httpx.Client, upstream) -> None:
    conv = any_client.conversations.create()
    upstream.script(reply("kept in the conversation"))
    response = any_client.responses.create(model=MODEL, input="unstored turn", conversation=conv.id, store=False)
    assert response.store is False and response.conversation.id == conv.id
    validate_error_envelope(http.get(f"/responses/{response.id}").json(), 404)
    assert [t for _, t in texts(any_client.conversations.items.list(conv.id, order="asc").data)] == [
        "unstored turn", "kept in the conversation"]


def test_previous_response_id_continues_from_a_conversation_turn(any_client: openai.OpenAI, upstream) -> None:
    conv = any_client.conversations.create(items=[{"role": "user", "content": "my name is Ada"}])
    upstream.script(reply("noted"), reply("later in the conversation"), reply("Ada"))
    first = any_client.responses.create(model=MODEL, input="remember it", conversation=conv.id)
    any_client.responses.create(model=MODEL, input="more", conversation=conv.id)
    any_client.responses.create(model=MODEL, input="my name?", previous_response_id=first.id)
    assert sent_messages(upstream.chat_bodies[2]) == [
        ("user", "my name is Ada"), ("user", "remember it"), ("assistant", "noted"), ("user", "my name?")]


# -- concurrency -----------------------------------------------------------------------------------------------

def test_concurrent_responses_in_one_conversation_all_land(any_server, any_client: openai.OpenAI,
                                                           upstream) -> None:
    conv = any_client.conversations.create(items=[{"role": "user", "content": "start"}])
    n = 6
    upstream.script(*[delay(0.05 * (n - k), reply(f"answer {k}")) for k in range(n)])

    async def run_all() -> list[Any]:
        client = any_server.async_client()
        try:
            return await asyncio.gather(*(client.responses.create(
                model=MODEL, input=[{"role": "user", "content": f"q{k}a"}, {"role": "user", "content": f"q{k}b"}],
                conversation=conv.id) for k in range(n)))
        finally:
            await client.close()

    responses = asyncio.run(run_all())
    assert all(r.status == "completed" for r in responses)
    items = any_client.conversations.items.list(conv.id, order="asc", limit=100).data
    assert len(items) == 1 + 3 * n and len({i.id for i in items}) == len(items)
    # each turn's items are contiguous: its two inputs, then its output
    body = [t for _, t in texts(items[1:])]
    turns = [body[k:k + 3] for k in range(0, len(body), 3)]
    for turn in turns:
        k = turn[0][1:-1]
        assert turn[1] == f"q{k}b" and turn[2].startswith("answer ")
    assert sorted(t[0] for t in turns) == sorted(f"q{k}a" for k in range(n))
    by_output = {r.output[0].id: r for r in responses}
    assert all(items[1 + 3 * t + 2].id in by_output for t in range(n))


# -- WebSocket mode ------------------------------------------------------------------------------------------

async def test_websocket_turns_in_a_conversation(any_server, upstream) -> None:
    client = any_server.async_client()
    conv = await client.conversations.create()
    upstream.script(reply("one"), reply("two"))
    async with client.responses.connect() as conn:
        for text in ("first", "second"):
            await conn.response.create(model=MODEL, input=text, conversation=conv.id)
            while True:
                event = await asyncio.wait_for(conn.recv(), 30)
                if event.type in ("response.completed", "response.failed", "error"):
                    break
            assert event.type == "response.completed" and event.response.conversation.id == conv.id
    assert sent_messages(upstream.chat_bodies[1]) == [("user", "first"), ("assistant", "one"), ("user", "second")]
    listed = await client.conversations.items.list(conv.id, order="asc")
    assert [t for _, t in texts(listed.data)] == ["first", "one", "second", "two"]
    await client.close()
