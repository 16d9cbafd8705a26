"""Authentication and per-owner isolation (issue 12), end to end with the official openai SDK.

One real server per backend (SQLite, PostgreSQL) with auth on: two static API keys (owners "alice" and
"bob", bob's given only as its sha256 in the config) and an admin key. Each owner creates every kind of
object; the other owner sees none of it in listings, and every access with the other's id (retrieve,
delete, input items, chain continuation, conversation use, file reference, vector store reference,
search, content) answers exactly what an unknown id answers. Admin keys manage database keys; a revoked
key stops working on the next request. WebSocket handshakes, logs (no secret), library mode.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import websockets
import websockets.sync.client

from respond.config import AuthConfig
from tests.api.wire import create
from tests.support.conformance import validate_error_envelope
from tests.support.retrieval import wait_for_store
from tests.support.server import RunningServer, make_config, scripted_provider, start_server
from tests.support.upstream import reply, tool_call

ALICE = "sk-alice-7c1d2e9a4b6f08e3d5a1c7b9e2f4a6d8"
BOB = "sk-bob-3e8f1a5c7d9b2e4f6a8c0d1e3f5a7b9c"
ADMIN = "sk-admin-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
EMBED = {"embedding_model": "up/scripted-embed"}
TEXT = b"The launch code of project Nimbus is 4417. Nimbus ships in May."


def auth_config() -> AuthConfig:
    return AuthConfig(api_keys=[{"key": ALICE, "owner": "alice"},
                                {"key_sha256": hashlib.sha256(BOB.encode()).hexdigest(), "owner": "bob"}],
                      admin_keys=[ADMIN], key_cache_seconds=30)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def auth_server(request: pytest.FixtureRequest, upstream_server: Any) -> Any:
    with tempfile.TemporaryDirectory(prefix="respond-auth-") as tmp:
        fields: dict[str, Any] = {}
        schema = None
        if request.param == "postgresql":
            cluster = request.getfixturevalue("pg_cluster")
            schema, fields["database_url"] = cluster.create_schema_url()
        running = start_server(make_config(Path(tmp), [scripted_provider(upstream_server.upstream)],
                                           auth=auth_config(), **fields))
        yield running
        running.stop()
        if schema is not None:
            cluster.drop_schema(schema)


def sdk(server: RunningServer, key: str | None) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=key or "", max_retries=0)


@pytest.fixture(scope="module")
def alice(auth_server: RunningServer) -> openai.OpenAI:
    return sdk(auth_server, ALICE)


@pytest.fixture(scope="module")
def bob(auth_server: RunningServer) -> openai.OpenAI:
    return sdk(auth_server, BOB)


@pytest.fixture(scope="module")
def alices(auth_server: RunningServer, alice: openai.OpenAI, upstream_server: Any) -> dict[str, str]:
    """One of each of alice's objects: response (in a chain), conversation (+ item), file, vector store."""
    first = create(alice, model="up/scripted", input="remember 4417")
    second = create(alice, model="up/scripted", input="and?", previous_response_id=first.id)
    conv = alice.conversations.create(items=[{"type": "message", "role": "user", "content": "hello"}])
    item = alice.conversations.items.list(conv.id).data[0]
    file_id = alice.files.create(file=("nimbus.txt", TEXT), purpose="assistants").id
    store = alice.vector_stores.create(name="nimbus", file_ids=[file_id], extra_body=EMBED)
    assert wait_for_store(alice, store.id).file_counts.completed == 1
    return {"response": second.id, "first": first.id, "conversation": conv.id, "item": item.id, "file": file_id,
            "store": store.id}


def listed_responses(client: openai.OpenAI) -> set[str]:
    """GET /v1/responses (the SDK has no method for it) with the client's key."""
    page = httpx.get(f"{client.base_url}responses", params={"limit": 100},
                     headers={"Authorization": f"Bearer {client.api_key}"})
    assert page.status_code == 200, page.text
    return {r["id"] for r in page.json()["data"]}


def error_of(call: Any) -> tuple[int, dict]:
    with pytest.raises(openai.APIStatusError) as err:
        call()
    return err.value.status_code, err.value.response.json()


def same_as_unknown(call_with: Any, real_id: str, unknown_id: str) -> dict:
    """Calling with another owner's id answers exactly what calling with an unknown id answers."""
    status, body = error_of(lambda: call_with(real_id))
    unknown_status, unknown_body = error_of(lambda: call_with(unknown_id))
    assert status == unknown_status, (body, unknown_body)
    assert json.dumps(body).replace(real_id, "ID") == json.dumps(unknown_body).replace(unknown_id, "ID")
    validate_error_envelope(body, status)
    return body


# -- credentials -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", [None, "sk-wrong-0123456789abcdef0123456789", ALICE + "x", "Basic abc"])
def test_missing_or_bad_key_is_401(auth_server: RunningServer, key: str | None,
                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    if key is None:  # the SDK refuses to send no key at all
        answer = httpx.get(f"{auth_server.base_url}/responses")
        status, body = answer.status_code, answer.json()
    else:
        status, body = error_of(lambda: sdk(auth_server, key).files.list())
    assert status == 401
    error = validate_error_envelope(body, 401, code="invalid_api_key", error_type="invalid_request_error")
    if key and len(key) > 16:
        assert key not in error["message"] and error["message"].startswith("Incorrect API key provided: ")
        assert error["message"].endswith(key[-4:] + ".")  # masked like OpenAI's: the start and the last 4
    raw = httpx.get(f"{auth_server.base_url}/models", headers={"Authorization": f"Bearer {key}"} if key else {})
    assert raw.status_code == 401 and raw.headers["www-authenticate"].startswith("Bearer")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "rejected: invalid_api_key" in logged
    if key:
        assert key not in logged and hashlib.sha256(key.encode()).hexdigest() not in logged


def test_health_and_openapi_are_public_everything_else_needs_a_key(auth_server: RunningServer) -> None:
    assert httpx.get(f"{auth_server.url}/health").status_code == 200
    assert httpx.get(f"{auth_server.url}/openapi.json").status_code == 200
    assert httpx.get(f"{auth_server.base_url}/models").status_code == 401
    assert httpx.get(f"{auth_server.base_url}/no/such/route").status_code == 401  # routes don't leak either
    assert sdk(auth_server, ALICE).models.list().data


# -- isolation ------------------------------------------------------------------------------------------------

def test_each_owner_lists_only_its_own_objects(alices: dict, alice: openai.OpenAI, bob: openai.OpenAI) -> None:
    mine = create(bob, model="up/scripted", input="bob's")
    bob_file = bob.files.create(file=("b.txt", b"bob notes"), purpose="assistants").id
    bob_store = bob.vector_stores.create(name="bob", extra_body=EMBED).id
    bob_conv = bob.conversations.create().id
    try:
        assert {f.id for f in bob.files.list()} == {bob_file}
        assert {s.id for s in bob.vector_stores.list()} == {bob_store}
        alice_files = {f.id for f in alice.files.list()}
        assert alices["file"] in alice_files and bob_file not in alice_files
        alice_stores = {s.id for s in alice.vector_stores.list()}
        assert alices["store"] in alice_stores and bob_store not in alice_stores
        alice_responses = listed_responses(alice)
        assert {alices["response"], alices["first"]} <= alice_responses and mine.id not in alice_responses
        assert listed_responses(bob) == {mine.id}
        assert bob.conversations.retrieve(bob_conv).id == bob_conv
        assert alice.conversations.retrieve(alices["conversation"]).id == alices["conversation"]
    finally:
        bob.files.delete(bob_file)
        bob.vector_stores.delete(bob_store)
        bob.conversations.delete(bob_conv)
        bob.responses.delete(mine.id)


def test_another_owners_response_is_an_unknown_id(alices: dict, bob: openai.OpenAI, alice: openai.OpenAI,
                                                    upstream: Any) -> None:
    rid, unknown = alices["response"], "resp_" + "0" * 48
    same_as_unknown(lambda i: bob.responses.retrieve(i), rid, unknown)
    same_as_unknown(lambda i: bob.responses.input_items.list(i), rid, unknown)
    same_as_unknown(lambda i: bob.responses.delete(i), rid, unknown)
    same_as_unknown(lambda i: bob.responses.cancel(i), rid, unknown)
    same_as_unknown(lambda i: bob.responses.retrieve(i, stream=True, starting_after=0), rid, unknown)
    calls = len(upstream.chat_bodies)
    same_as_unknown(lambda i: bob.responses.create(model="up/scripted", input="go on", previous_response_id=i),
                    rid, unknown)
    same_as_unknown(lambda i: bob.responses.create(model="up/scripted", input="go on", previous_response_id=i,
                                                   stream=True), rid, unknown)
    same_as_unknown(lambda i: bob.responses.input_tokens.count(model="up/scripted", input="x",
                                                               previous_response_id=i), rid, unknown)
    same_as_unknown(lambda i: bob.responses.compact(model="up/scripted", previous_response_id=i), rid, unknown)
    assert len(upstream.chat_bodies) == calls  # no model call was made for bob
    # alice's chain is intact and hers to continue
    assert alice.responses.retrieve(rid).id == rid
    follow = create(alice, model="up/scripted", input="still there?", previous_response_id=rid)
    assert "remember 4417" in json.dumps(upstream.chat_bodies[-1]["messages"]) and follow.status == "completed"


def test_another_owners_conversation_is_an_unknown_id(alices: dict, bob: openai.OpenAI,
                                                        alice: openai.OpenAI) -> None:
    cid, iid, unknown = alices["conversation"], alices["item"], "conv_" + "0" * 48
    same_as_unknown(lambda i: bob.conversations.retrieve(i), cid, unknown)
    same_as_unknown(lambda i: bob.conversations.update(i, metadata={"x": "y"}), cid, unknown)
    same_as_unknown(lambda i: bob.conversations.items.list(i), cid, unknown)
    same_as_unknown(lambda i: bob.conversations.items.retrieve(iid, conversation_id=i), cid, unknown)
    same_as_unknown(lambda i: bob.conversations.items.delete(iid, conversation_id=i), cid, unknown)
    same_as_unknown(lambda i: bob.conversations.items.create(
        i, items=[{"type": "message", "role": "user", "content": "sneak"}]), cid, unknown)
    same_as_unknown(lambda i: bob.responses.create(model="up/scripted", input="hi", conversation=i), cid, unknown)
    same_as_unknown(lambda i: bob.conversations.delete(i), cid, unknown)
    items = alice.conversations.items.list(cid).data
    assert [i.id for i in items] == [iid] and alice.conversations.retrieve(cid).metadata in ({}, None)


def test_another_owners_file_is_an_unknown_id(alices: dict, bob: openai.OpenAI, alice: openai.OpenAI) -> None:
    fid, unknown = alices["file"], "file-" + "0" * 24
    same_as_unknown(lambda i: bob.files.retrieve(i), fid, unknown)
    same_as_unknown(lambda i: bob.files.content(i), fid, unknown)
    same_as_unknown(lambda i: bob.files.delete(i), fid, unknown)
    same_as_unknown(lambda i: bob.responses.create(model="up/scripted", input=[{"role": "user", "content": [
        {"type": "input_file", "file_id": i}, {"type": "input_text", "text": "summarize"}]}]), fid, unknown)
    bob_store = bob.vector_stores.create(name="b", extra_body=EMBED).id
    try:
        same_as_unknown(lambda i: bob.vector_stores.files.create(bob_store, file_id=i), fid, unknown)
        same_as_unknown(lambda i: bob.vector_stores.file_batches.create(bob_store, file_ids=[i]), fid, unknown)
        same_as_unknown(lambda i: bob.vector_stores.create(name="x", file_ids=[i], extra_body=EMBED), fid, unknown)
        assert bob.vector_stores.files.list(bob_store).data == []
    finally:
        bob.vector_stores.delete(bob_store)
    assert alice.files.content(fid).read() == TEXT


def test_another_owners_vector_store_is_an_unknown_id(alices: dict, bob: openai.OpenAI, alice: openai.OpenAI,
                                                        upstream: Any) -> None:
    sid, fid, unknown = alices["store"], alices["file"], "vs_" + "0" * 48
    same_as_unknown(lambda i: bob.vector_stores.retrieve(i), sid, unknown)
    same_as_unknown(lambda i: bob.vector_stores.update(i, name="mine now"), sid, unknown)
    same_as_unknown(lambda i: bob.vector_stores.search(i, query="launch code"), sid, unknown)
    same_as_unknown(lambda i: bob.vector_stores.files.list(i), sid, unknown)
    same_as_unknown(lambda i: bob.vector_stores.files.retrieve(fid, vector_store_id=i), sid, unknown)
    same_as_unknown(lambda i: bob.vector_stores.files.content(fid, vector_store_id=i), sid, unknown)
    same_as_unknown(lambda i: bob.vector_stores.files.delete(fid, vector_store_id=i), sid, unknown)
    calls = len(upstream.chat_bodies)
    body = same_as_unknown(lambda i: bob.responses.create(
        model="up/scripted", input="launch code?", tools=[{"type": "file_search", "vector_store_ids": [i]}]),
        sid, unknown)
    assert body["error"]["param"] == "tools[0].vector_store_ids[0]"
    assert len(upstream.chat_bodies) == calls
    same_as_unknown(lambda i: bob.vector_stores.delete(i), sid, unknown)
    # still alice's, searchable by her, through the API and the tool
    hits = alice.vector_stores.search(sid, query="launch code Nimbus").data
    assert hits and "4417" in hits[0].content[0].text
    upstream.script(reply(tool_call("file_search", {"query": "Nimbus launch code"})), reply("It is 4417."))
    answer = create(alice, model="up/scripted", input="code?", tools=[{"type": "file_search",
                                                                       "vector_store_ids": [sid]}])
    assert answer.output[0].status == "completed" and "4417" in json.dumps(upstream.chat_bodies[-1]["messages"])


# -- admin API ----------------------------------------------------------------------------------------------

def test_admin_creates_lists_and_revokes_a_key(auth_server: RunningServer, upstream: Any,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    admin = httpx.Client(base_url=auth_server.base_url, headers={"Authorization": f"Bearer {ADMIN}"})
    created = admin.post("/admin/api_keys", json={"owner": "carol", "name": "ci"})
    assert created.status_code == 200, created.text
    key = created.json()
    value = key["value"]
    assert value.startswith("sk-respond-") and key["owner"] == "carol" and key["revoked_at"] is None
    assert key["redacted_value"].endswith("...") and value not in json.dumps({**key, "value": None})

    carol = sdk(auth_server, value)
    response = create(carol, model="up/scripted", input="carol here")
    assert carol.responses.retrieve(response.id).id == response.id
    status, _ = error_of(lambda: sdk(auth_server, ALICE).responses.retrieve(response.id))
    assert status == 404

    listed = admin.get("/admin/api_keys", params={"owner": "carol"}).json()
    assert [k["id"] for k in listed["data"]] == [key["id"]]
    assert value not in json.dumps(listed) and hashlib.sha256(value.encode()).hexdigest() not in json.dumps(listed)
    assert "value" not in listed["data"][0]

    # not for non-admins, with auth on or off
    for who in (ALICE, value):
        denied = httpx.get(f"{auth_server.base_url}/admin/api_keys", headers={"Authorization": f"Bearer {who}"})
        validate_error_envelope(denied.json(), 403, code="insufficient_permissions")
        assert denied.status_code == 403

    revoked = admin.delete(f"/admin/api_keys/{key['id']}")
    assert revoked.json() == {"id": key["id"], "object": "api_key.deleted", "deleted": True}
    # the very next request with the key fails, although it was cached for 30 s (key_cache_seconds)
    status, body = error_of(lambda: carol.responses.retrieve(response.id))
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    assert admin.get(f"/admin/api_keys/{key['id']}").json()["revoked_at"] is not None
    assert admin.delete(f"/admin/api_keys/{key['id']}").status_code == 404  # already revoked
    bad = admin.post("/admin/api_keys", json={"name": "no owner"})
    validate_error_envelope(bad.json(), 400, param="owner")

    # secrets never reach the logs: not the keys, not their digests
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert any("api key" in r.getMessage() for r in caplog.records)
    for secret in (value, ALICE, BOB, ADMIN):
        assert secret not in text and hashlib.sha256(secret.encode()).hexdigest() not in text


def test_admin_key_is_no_owner_key(auth_server: RunningServer, alices: dict) -> None:
    # the admin key acts as its own owner ("admin") outside /v1/admin: it does not see alice's objects
    admin = sdk(auth_server, ADMIN)
    status, _ = error_of(lambda: admin.responses.retrieve(alices["response"]))
    assert status == 404


# -- WebSocket ------------------------------------------------------------------------------------------------

def test_websocket_handshake_needs_a_key(auth_server: RunningServer, upstream: Any) -> None:
    with pytest.raises(websockets.exceptions.InvalidStatus) as err:  # no Authorization header at all
        with websockets.sync.client.connect(f"ws://127.0.0.1:{auth_server.config.port}/v1/responses"):
            pass
    assert err.value.response.status_code == 401
    validate_error_envelope(json.loads(err.value.response.body), 401, code="invalid_api_key")
    with pytest.raises(websockets.exceptions.InvalidStatus) as err:  # what the openai SDK surfaces
        with sdk(auth_server, "sk-wrong-0123456789abcdef0123456789").responses.connect():
            pass
    assert err.value.response.status_code == 401
    validate_error_envelope(json.loads(err.value.response.body), 401, code="invalid_api_key")

    with sdk(auth_server, BOB).responses.connect() as connection:
        connection.response.create(model="up/scripted", input="over the socket")
        done = None
        for event in connection:
            if event.type == "response.completed":
                done = event.response
                break
        assert done is not None and done.status == "completed"
    assert sdk(auth_server, BOB).responses.retrieve(done.id).id == done.id
    assert error_of(lambda: sdk(auth_server, ALICE).responses.retrieve(done.id))[0] == 404
