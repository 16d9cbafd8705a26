"""`History`: the context of a turn assembled from stored rows, on real SQLite and PostgreSQL databases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import event, select

from respond.errors import InvalidRequest, NotFound
from respond.responses.history import History, TurnHistory
from respond.storage import Database, ResponseStore, StoredResponse
from respond.storage.conversations_repo import ConversationStore
from respond.storage.tables import DEFAULT_OWNER, responses

OWNER = DEFAULT_OWNER


def msg(item_id: str, role: str = "user") -> dict:
    return {"type": "message", "id": item_id, "role": role, "status": "completed",
            "content": [{"type": "input_text" if role == "user" else "output_text", "text": item_id}]}


def response(rid: str, previous: str | None, output: list[dict], status: str = "completed", store: bool = True,
             conversation: str | None = None) -> dict:
    out = {"id": rid, "object": "response", "created_at": 1_700_000_000, "status": status, "store": store,
           "previous_response_id": previous, "output": output, "instructions": "long instructions " * 50}
    if conversation:
        out["conversation"] = {"id": conversation}
    return out


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.upgrade()
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def history(db: Database) -> History:
    return History(ResponseStore(db), ConversationStore(db))


async def make_chain(history: History, turns: int) -> list[str]:
    ids, previous = [], None
    for turn in range(turns):
        rid = f"resp_{turn}"
        await history.record(OWNER, response(rid, previous, [msg(f"out{turn}", "assistant")]), [msg(f"in{turn}")],
                             [], TurnHistory(items=[]))
        ids.append(rid)
        previous = rid
    return ids


def count_queries(db: Database) -> list[str]:
    """Statements run on `db` from now on (SQLite's engine, or PostgreSQL's sync engine under asyncpg)."""
    statements: list[str] = []
    engine = db._sync_engine if db._sync_engine is not None else db._async_engine.sync_engine
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    return statements


async def test_chain_is_stored_once_and_assembled_in_one_query(db: Database, history: History):
    ids = await make_chain(history, 40)
    rows = await db.read(lambda conn: conn.execute(select(responses.c.id, responses.c.input_items,
                                                          responses.c.context_items)).all())
    assert all(row.context_items is None and len(row.input_items) == 1 for row in rows)  # each item once
    statements = count_queries(db)
    items = await history.chain(OWNER, ids[-1])
    assert [i["id"] for i in items] == [f"{kind}{t}" for t in range(40) for kind in ("in", "out")]
    assert len(statements) == 1 and "RECURSIVE" in statements[0].upper()
    loaded = await history.load(OWNER, previous_id=ids[19], conversation_id=None, local=None, running={})
    assert [i["id"] for i in loaded.items] == [f"{kind}{t}" for t in range(20) for kind in ("in", "out")]
    assert loaded.stored is True


async def test_chain_does_not_load_the_rest_of_each_response(db: Database, history: History):
    """Only input items and output come back from the ancestors, not their whole documents."""
    ids = await make_chain(history, 3)
    links = await history.responses.chain(ids[-1], owner=OWNER)
    assert [link.id for link in links] == ids
    assert links[0].output == [msg("out0", "assistant")] and links[0].input_items == [msg("in0")]


async def test_chain_filters_by_owner(history: History):
    ids = await make_chain(history, 3)
    assert await history.chain("someone-else", ids[-1]) is None
    with pytest.raises(NotFound):
        await history.load("someone-else", previous_id=ids[-1], conversation_id=None, local=None, running={})


async def test_unknown_and_running_previous(history: History):
    with pytest.raises(NotFound) as err:
        await history.load(OWNER, previous_id="resp_nope", conversation_id=None, local=None, running={})
    assert err.value.code == "previous_response_not_found"
    with pytest.raises(InvalidRequest) as err:
        await history.load(OWNER, previous_id="resp_run", conversation_id=None, local=None,
                           running={"resp_run": OWNER})
    assert err.value.code == "previous_response_in_progress"
    with pytest.raises(NotFound):  # another owner's running response is not there for this one
        await history.load("someone-else", previous_id="resp_run", conversation_id=None, local=None,
                           running={"resp_run": OWNER})


async def test_continuing_an_unstored_response_stores_the_full_context(history: History):
    """A WebSocket connection's store=false response is only in memory: a stored continuation of it keeps
    the whole context in its row, so it stays continuable after the connection is gone."""
    class Local:
        items = {"resp_mem": StoredResponse(response=response("resp_mem", None, [msg("out0", "assistant")],
                                                              store=False),
                                            input_items=[msg("in0")], context_items=[msg("in0")])}

    turn = await history.load(OWNER, previous_id="resp_mem", conversation_id=None, local=Local(), running={})
    assert turn.stored is False and [i["id"] for i in turn.items] == ["in0", "out0"]
    context = turn.items + [msg("in1")]
    await history.record(OWNER, response("resp_1", "resp_mem", [msg("out1", "assistant")]), [msg("in1")],
                         context, turn)
    stored = await history.responses.get("resp_1", owner=OWNER)
    assert stored.context_items == context
    await history.record(OWNER, response("resp_2", "resp_1", [msg("out2", "assistant")]), [msg("in2")], [],
                         TurnHistory(items=[]))
    assert [i["id"] for i in await history.chain(OWNER, "resp_2")] == [
        "in0", "out0", "in1", "out1", "in2", "out2"]


async def test_conversation_turns_append_and_chain_from_them(db: Database, history: History):
    conversations = history.conversations
    await conversations.create(OWNER, {"id": "conv_1", "created_at": 1, "metadata": {}}, [msg("first")])
    turn = await history.load(OWNER, previous_id=None, conversation_id="conv_1", local=None, running={})
    assert [i["id"] for i in turn.items] == ["first"]
    await history.record(OWNER, response("resp_a", None, [msg("outa", "assistant")], conversation="conv_1"),
                         [msg("ina")], [], turn)
    # failed and cancelled turns append nothing; store=false turns append but keep no response row
    for rid, status, store in (("resp_f", "failed", True), ("resp_c", "cancelled", True),
                               ("resp_u", "completed", False)):
        await history.record(OWNER, response(rid, None, [msg(f"out_{rid}", "assistant")], status=status,
                                             store=store, conversation="conv_1"), [msg(f"in_{rid}")], [], turn)
    items = await conversations.items(OWNER, "conv_1")
    assert [i["id"] for i in items] == ["first", "ina", "outa", "in_resp_u", "out_resp_u"]
    assert await history.responses.get("resp_u", owner=OWNER) is None
    assert (await history.responses.get("resp_f", owner=OWNER)).response["status"] == "failed"
    # a chain starting at a conversation turn: the conversation up to that turn, then the chain
    await history.record(OWNER, response("resp_next", "resp_a", [msg("outn", "assistant")]), [msg("inn")], [],
                         TurnHistory(items=[]))
    assert [i["id"] for i in await history.chain(OWNER, "resp_next")] == [
        "first", "ina", "outa", "inn", "outn"]
    with pytest.raises(NotFound) as err:
        await history.load(OWNER, previous_id=None, conversation_id="conv_nope", local=None, running={})
    assert err.value.message == "Conversation 'conv_nope' not found."


async def test_postgres_connections_never_use_a_stale_generic_plan(db: Database):
    """asyncpg caches prepared statements; a generic plan made while `responses` was small turned each step
    of the chain query into a table scan (bench/context_load.py --pg). Connections plan per execution."""
    if db.dialect != "postgresql":
        pytest.skip("PostgreSQL only")
    assert await db.read(lambda conn: conn.exec_driver_sql("SHOW plan_cache_mode").scalar()) == "force_custom_plan"
