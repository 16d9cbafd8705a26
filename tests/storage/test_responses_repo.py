"""ResponseStore against real SQLite files and a real PostgreSQL server (both via `database_url`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from respond.errors import InvalidRequest, NotFound
from respond.storage import Database, Page, ResponseStore, StoredResponse
from respond.storage.migrate import head
from respond.storage.tables import DEFAULT_OWNER as OWNER
from respond.storage.tables import responses


def make_response(rid: str, *, created_at: float = 1_700_000_000, model: str = "local/smollm2-135m",
                  status: str = "completed", previous: str | None = None, **extra) -> dict:
    return {
        "id": rid,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "model": model,
        "previous_response_id": previous,
        "output": [{"type": "message", "id": f"msg_{rid}", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": f"answer of {rid}", "annotations": []}]}],
        "usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
        **extra,
    }


def items(*ids: str) -> list[dict]:
    return [{"type": "message", "id": i, "role": "user", "content": [{"type": "input_text", "text": i}]}
            for i in ids]


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.create_all()
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def store(db: Database) -> ResponseStore:
    return ResponseStore(db)


async def collect(store: ResponseStore, **kwargs) -> tuple[list[str], list[Page]]:
    """Walk every page with `after` cursors; return the ids in order and the pages seen."""
    ids: list[str] = []
    pages: list[Page] = []
    after = None
    while True:
        page = await store.list(owner=OWNER, after=after, **kwargs)
        pages.append(page)
        ids += [r["id"] for r in page.data]
        if not page.has_more:
            return ids, pages
        after = page.last_id
        assert len(pages) < 100


# -- schema -------------------------------------------------------------------------------------------------

async def test_create_all_is_idempotent_and_records_the_revision(db: Database):
    assert await db.create_all() == head()
    assert await db.upgrade() == head()
    assert await db.schema_revision() == head()
    assert db.dialect in ("sqlite", "postgresql")


async def test_sqlite_pragmas_and_parent_dirs(tmp_path):
    path = tmp_path / "deep" / "er" / "respond.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await database.create_all()
        assert path.exists()

        def pragmas(conn) -> tuple:
            return tuple(conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                         for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout"))

        # NORMAL is synchronous=1; readers and the writer each get the pragmas on their own connections
        assert await database.read(pragmas) == ("wal", 1, 1, 30_000)
        assert await database.write(pragmas) == ("wal", 1, 1, 30_000)
    finally:
        await database.close()


async def test_write_is_a_transaction(db: Database, store: ResponseStore):
    """`Database.write` commits what `fn` did when it returns and rolls all of it back when it raises."""
    def insert_two_then_fail(conn, fail: bool) -> None:
        for rid in ("resp_tx1", "resp_tx2"):
            conn.execute(insert(responses).values(id=rid, created_at=1.0, response={"id": rid},
                                                  input_items=[], context_items=[]))
        if fail:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await db.write(insert_two_then_fail, True)
    assert await store.get("resp_tx1", owner=OWNER) is None and await store.get("resp_tx2", owner=OWNER) is None
    await db.write(insert_two_then_fail, fail=False)
    assert (await store.get("resp_tx2", owner=OWNER)).response == {"id": "resp_tx2"}
    # a failing single statement (duplicate id) leaves the row as it was
    with pytest.raises(IntegrityError):
        await db.write_one(lambda conn: conn.execute(insert(responses).values(
            id="resp_tx1", created_at=2.0, response={}, input_items=[], context_items=[])))
    assert (await store.get("resp_tx1", owner=OWNER)).response == {"id": "resp_tx1"}


@pytest.mark.parametrize("url", ["sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:"])
async def test_in_memory_sqlite(url: str):
    database = Database(url)
    try:
        await database.create_all()
        store = ResponseStore(database)
        await store.save(make_response("resp_mem"), items("i1"), owner=OWNER)
        assert (await store.get("resp_mem", owner=OWNER)).input_items == items("i1")
        assert [r["id"] for r in (await store.list(owner=OWNER)).data] == ["resp_mem"]
    finally:
        await database.close()


async def test_plain_sqlite_url(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'plain.db'}")
    try:
        await database.create_all()
        assert database.dialect == "sqlite" and await database.schema_revision() == head()
    finally:
        await database.close()


def test_rejects_unsupported_url():
    with pytest.raises(ValueError):
        Database("mysql+aiomysql://localhost/x")


# -- save / get / upsert / delete -----------------------------------------------------------------------------

async def test_save_and_get_roundtrip_unicode_and_nested(store: ResponseStore):
    response = make_response(
        "resp_uni",
        instructions="Réponds en français, s'il te plaît ✓ — 日本語も 🙂",
        metadata={"clé": "välue", "emoji": "👩‍💻", "nul": "a\u0000b", "quote": "\"'\\\n\t"},
        tools=[{"type": "function", "name": "f", "parameters": {
            "type": "object", "properties": {"x": {"type": "array", "items": {"type": ["number", "null"]}}}}}],
        temperature=0.7, top_p=None, parallel_tool_calls=True, big=2**53 + 1, nested=[[[[{"deep": [1, [2, [3]]]}]]]],
    )
    inputs = items("msg_in_1") + [{"type": "function_call_output", "id": "fco_1", "call_id": "call_1",
                                   "output": "{\"temp\": \"22 °C\"}"}]
    context = items("msg_old") + inputs
    await store.save(response, inputs, context, owner=OWNER)

    got = await store.get("resp_uni", owner=OWNER)
    assert isinstance(got, StoredResponse)
    assert got.response == response
    assert list(got.response) == list(response)  # key order survives
    assert list(got.response["metadata"]) == list(response["metadata"])
    assert got.input_items == inputs
    assert got.context_items == context


async def test_get_unknown_returns_none(store: ResponseStore):
    assert await store.get("resp_missing", owner=OWNER) is None


async def test_index_columns_are_filled(store: ResponseStore, db: Database):
    await store.save(make_response("resp_a", created_at=1_700_000_123, conversation={"id": "conv_1"}), [], owner=OWNER)
    await store.save(make_response("resp_b", previous="resp_a", model="openai/gpt-4o", status="incomplete",
                                   conversation="conv_2"), [], owner=OWNER)
    await store.save({"id": "resp_c", "model": None, "output": []}, [], owner=OWNER)  # bare: created_at defaults to now
    rows = await db.read(lambda conn: {r.id: r for r in conn.execute(select(responses)).all()})
    a, b, c = rows["resp_a"], rows["resp_b"], rows["resp_c"]
    assert (a.created_at, a.model, a.status, a.previous_response_id, a.conversation_id) == (
        1_700_000_123, "local/smollm2-135m", "completed", None, "conv_1")
    assert (b.model, b.status, b.previous_response_id, b.conversation_id) == (
        "openai/gpt-4o", "incomplete", "resp_a", "conv_2")
    assert c.created_at > 1_700_000_000 and c.model is None and c.status is None
    assert a.seq < b.seq < c.seq


async def test_upsert_replaces_document_and_keeps_list_position(store: ResponseStore):
    await store.save(make_response("resp_1", status="in_progress", output=[]), items("msg_1"), items("msg_1"), owner=OWNER)
    await store.save(make_response("resp_2"), [], owner=OWNER)
    done = make_response("resp_1", status="completed")
    await store.save(done, items("msg_1", "msg_1b"), items("msg_0", "msg_1"), owner=OWNER)

    got = await store.get("resp_1", owner=OWNER)
    assert got is not None
    assert got.response == done
    assert [i["id"] for i in got.input_items] == ["msg_1", "msg_1b"]
    assert [i["id"] for i in got.context_items] == ["msg_0", "msg_1"]
    page = await store.list(owner=OWNER, order="asc")
    assert [r["id"] for r in page.data] == ["resp_1", "resp_2"]
    assert page.data[0]["status"] == "completed"


async def test_delete(store: ResponseStore):
    await store.save(make_response("resp_1"), items("msg_1"), owner=OWNER)
    await store.save(make_response("resp_2"), [], owner=OWNER)
    assert await store.delete("resp_1", owner=OWNER) is True
    assert await store.get("resp_1", owner=OWNER) is None
    assert await store.delete("resp_1", owner=OWNER) is False
    assert await store.delete("resp_never", owner=OWNER) is False
    assert [r["id"] for r in (await store.list(owner=OWNER)).data] == ["resp_2"]
    with pytest.raises(NotFound):
        await store.list_input_items("resp_1", owner=OWNER)


# -- list -----------------------------------------------------------------------------------------------------

async def seed_list(store: ResponseStore) -> list[str]:
    """Seven responses in creation order; several share a created_at second, so seq breaks ties."""
    spec = [("resp_g", 100, "m1"), ("resp_c", 100, "m2"), ("resp_a", 100, "m1"), ("resp_f", 101, "m1"),
            ("resp_b", 102, "m2"), ("resp_e", 102, "m1"), ("resp_d", 103, "m1")]
    for rid, created, model in spec:
        await store.save(make_response(rid, created_at=created, model=model), [], owner=OWNER)
    return [rid for rid, _, _ in spec]


async def test_list_desc_pagination(store: ResponseStore):
    created = await seed_list(store)
    ids, pages = await collect(store, limit=3)
    assert ids == created[::-1]
    assert [len(p.data) for p in pages] == [3, 3, 1]
    assert [p.has_more for p in pages] == [True, True, False]
    assert (pages[0].first_id, pages[0].last_id) == ("resp_d", "resp_b")
    assert (pages[1].first_id, pages[1].last_id) == ("resp_f", "resp_c")
    assert (pages[2].first_id, pages[2].last_id) == ("resp_g", "resp_g")
    # default order is desc and default limit (20) takes everything
    page = await store.list(owner=OWNER)
    assert [r["id"] for r in page.data] == created[::-1] and page.has_more is False
    assert page.data[0] == make_response("resp_d", created_at=103, model="m1")


async def test_list_asc_pagination(store: ResponseStore):
    created = await seed_list(store)
    ids, pages = await collect(store, limit=2, order="asc")
    assert ids == created
    assert [p.has_more for p in pages] == [True, True, True, False]
    # an exact multiple of the page size: the last full page says has_more=False
    page = await store.list(owner=OWNER, limit=7, order="asc")
    assert len(page.data) == 7 and page.has_more is False
    page = await store.list(owner=OWNER, after="resp_e", order="asc")
    assert [r["id"] for r in page.data] == ["resp_d"] and page.has_more is False
    page = await store.list(owner=OWNER, after="resp_d", order="asc")
    assert page == Page(data=[], has_more=False, first_id=None, last_id=None)


async def test_list_model_filter(store: ResponseStore):
    await seed_list(store)
    ids, pages = await collect(store, limit=2, model="m1")
    assert ids == ["resp_d", "resp_e", "resp_f", "resp_a", "resp_g"]
    assert [p.has_more for p in pages] == [True, True, False]
    ids, _ = await collect(store, limit=1, model="m2", order="asc")
    assert ids == ["resp_c", "resp_b"]
    assert (await store.list(owner=OWNER, model="nope")).data == []
    # a cursor from another model still positions the page
    page = await store.list(owner=OWNER, after="resp_b", model="m1")
    assert [r["id"] for r in page.data] == ["resp_f", "resp_a", "resp_g"]


async def test_list_empty_and_unknown_cursor(store: ResponseStore):
    assert await store.list(owner=OWNER) == Page(data=[], has_more=False, first_id=None, last_id=None)
    await seed_list(store)
    with pytest.raises(NotFound) as err:
        await store.list(owner=OWNER, after="resp_zzz")
    assert err.value.param == "after" and err.value.status_code == 404


async def test_list_rejects_bad_arguments(store: ResponseStore):
    with pytest.raises(InvalidRequest) as err:
        await store.list(owner=OWNER, order="sideways")
    assert err.value.param == "order"
    with pytest.raises(InvalidRequest) as err:
        await store.list(owner=OWNER, limit=0)
    assert err.value.param == "limit"


# -- input items ----------------------------------------------------------------------------------------------

async def test_list_input_items(store: ResponseStore):
    inputs = items("i1", "i2", "i3", "i4", "i5")
    await store.save(make_response("resp_1"), inputs, items("old") + inputs, owner=OWNER)

    page = await store.list_input_items("resp_1", owner=OWNER)
    assert [i["id"] for i in page.data] == ["i5", "i4", "i3", "i2", "i1"]
    assert (page.has_more, page.first_id, page.last_id) == (False, "i5", "i1")
    assert page.data[0] == inputs[4]

    page = await store.list_input_items("resp_1", owner=OWNER, limit=2)
    assert [i["id"] for i in page.data] == ["i5", "i4"] and page.has_more
    page = await store.list_input_items("resp_1", owner=OWNER, limit=2, after=page.last_id)
    assert [i["id"] for i in page.data] == ["i3", "i2"] and page.has_more
    page = await store.list_input_items("resp_1", owner=OWNER, limit=2, after=page.last_id)
    assert [i["id"] for i in page.data] == ["i1"] and not page.has_more

    page = await store.list_input_items("resp_1", owner=OWNER, order="asc", limit=3)
    assert [i["id"] for i in page.data] == ["i1", "i2", "i3"] and page.has_more
    page = await store.list_input_items("resp_1", owner=OWNER, order="asc", after="i3")
    assert [i["id"] for i in page.data] == ["i4", "i5"] and not page.has_more

    # before: the items just before the cursor, in list order
    page = await store.list_input_items("resp_1", owner=OWNER, order="asc", before="i5", limit=2)
    assert [i["id"] for i in page.data] == ["i3", "i4"] and page.has_more
    page = await store.list_input_items("resp_1", owner=OWNER, order="asc", before="i3", limit=2)
    assert [i["id"] for i in page.data] == ["i1", "i2"] and not page.has_more
    page = await store.list_input_items("resp_1", owner=OWNER, before="i2")  # desc
    assert [i["id"] for i in page.data] == ["i5", "i4", "i3"] and not page.has_more
    page = await store.list_input_items("resp_1", owner=OWNER, order="asc", after="i1", before="i5", limit=2)
    assert [i["id"] for i in page.data] == ["i2", "i3"] and page.has_more
    page = await store.list_input_items("resp_1", owner=OWNER, order="asc", after="i4", before="i2")
    assert page == Page(data=[], has_more=False, first_id=None, last_id=None)


async def test_list_input_items_unknown_ids(store: ResponseStore):
    await store.save(make_response("resp_1"), items("i1"), owner=OWNER)
    await store.save(make_response("resp_empty"), [], owner=OWNER)
    with pytest.raises(NotFound) as err:
        await store.list_input_items("resp_nope", owner=OWNER)
    assert err.value.param == "response_id"
    for param in ("after", "before"):
        with pytest.raises(NotFound) as err:
            await store.list_input_items("resp_1", owner=OWNER, **{param: "i_nope"})
        assert err.value.param == param
    assert await store.list_input_items("resp_empty", owner=OWNER) == Page(data=[], has_more=False, first_id=None,
                                                              last_id=None)
    with pytest.raises(InvalidRequest):
        await store.list_input_items("resp_1", owner=OWNER, order="up")


# -- concurrency ----------------------------------------------------------------------------------------------

async def test_concurrent_saves_reads_and_deletes(store: ResponseStore):
    n = 150

    async def one(k: int) -> None:
        rid = f"resp_{k:04d}"
        await store.save(make_response(rid, status="in_progress", output=[]), items(f"m{k}"), owner=OWNER)
        assert (await store.get(rid, owner=OWNER)) is not None
        await store.save(make_response(rid, created_at=1_700_000_000 + k % 7), items(f"m{k}"), owner=OWNER)
        if k % 10 == 0:
            assert await store.delete(rid, owner=OWNER)

    await asyncio.gather(*(one(k) for k in range(n)))
    ids, _ = await collect(store, limit=100)
    assert len(ids) == n - n // 10 == len(set(ids))
    for rid in ids:
        got = await store.get(rid, owner=OWNER)
        assert got is not None and got.response["status"] == "completed"
        assert got.input_items == items(f"m{int(rid[5:])}")


async def test_two_sqlite_engines_on_one_file_do_not_lock(tmp_path):
    """Two Databases on one file behave like two processes: only SQLite's busy timeout keeps them apart."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    first, second = Database(url), Database(url)
    try:
        await first.create_all()
        await second.create_all()
        stores = [ResponseStore(first), ResponseStore(second)]
        await asyncio.gather(*(stores[k % 2].save(make_response(f"resp_{k}"), items(f"m{k}"), owner=OWNER)
                               for k in range(120)))
        page = await stores[1].list(owner=OWNER, limit=200)
        assert len(page.data) == 120
    finally:
        await first.close()
        await second.close()
