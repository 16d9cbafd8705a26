"""Alembic migrations on real SQLite files and a real PostgreSQL: fresh databases, databases created by the
code before migrations existed (with data in them), idempotence, concurrent starts, and `respond db`."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from respond.cli import main as cli_main
from respond.responses.history import History
from respond.storage import Database, ResponseStore
from respond.storage.conversations_repo import ConversationStore
from respond.storage.files_tables import NOT_IN_METADATA
from respond.storage.migrate import head
from respond.storage.tables import DEFAULT_OWNER, metadata
from tests.support.upstream import reply

LEGACY = Path(__file__).parent / "legacy"


def message(item_id: str, role: str, text: str) -> dict:
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "id": item_id, "role": role, "status": "completed",
            "content": [{"type": kind, "text": text}]}


def legacy_rows() -> list[dict]:
    """A 3-turn chain stored as the old code stored it: each row copies the whole context before it."""
    rows, context, previous = [], [], None
    for turn in range(1, 4):
        rid = f"resp_legacy{turn}"
        inputs = [message(f"msg_in{turn}", "user", f"question {turn}")]
        output = [message(f"msg_out{turn}", "assistant", f"answer {turn}")]
        context = context + inputs
        response = {"id": rid, "object": "response", "created_at": 1_700_000_000 + turn, "status": "completed",
                    "model": "up/scripted", "previous_response_id": previous, "output": output, "store": True}
        rows.append({"id": rid, "created_at": float(1_700_000_000 + turn), "model": "up/scripted",
                     "status": "completed", "previous_response_id": previous, "conversation_id": None,
                     "response": response, "input_items": inputs, "context_items": list(context)})
        context = context + output
        previous = rid
    return rows


_INSERT = ("INSERT INTO responses (id, created_at, model, status, previous_response_id, conversation_id, "
           "response, input_items, context_items) VALUES ({})")


def create_legacy_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.executescript((LEGACY / "schema_v1.sqlite.sql").read_text())
        for row in legacy_rows():
            conn.execute(_INSERT.format(", ".join("?" * 9)), [
                json.dumps(v) if isinstance(v, dict | list) else v for v in row.values()])
        conn.commit()
    finally:
        conn.close()


async def create_legacy_pg(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute((LEGACY / "schema_v1.postgresql.sql").read_text())
        for row in legacy_rows():
            await conn.execute(_INSERT.format(", ".join(f"${k}" for k in range(1, 10))), *[
                json.dumps(v) if isinstance(v, dict | list) else v for v in row.values()])
    finally:
        await conn.close()


async def create_legacy(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        create_legacy_sqlite(Path(database_url.split(":///", 1)[1]))
    else:
        await create_legacy_pg(database_url)


def _schema_diff(conn) -> list:
    def include_name(name, type_, parent_names) -> bool:  # what migrations make beside tables.py (FTS5, tsv)
        return not (name or "").startswith(NOT_IN_METADATA)

    return compare_metadata(MigrationContext.configure(conn, opts={"include_name": include_name}), metadata)


async def test_fresh_database_is_at_head_and_matches_tables(database_url: str):
    db = Database(database_url)
    try:
        assert await db.upgrade() == head() == "0004_api_keys"
        assert await db.schema_revision() == head()
        assert await db.read(_schema_diff) == []
        assert await db.upgrade() == head()  # idempotent
        names = await db.read(lambda conn: set(inspect(conn).get_table_names()))
        assert {"responses", "conversations", "conversation_items", "alembic_version"} <= names
        assert "schema_version" not in names
    finally:
        await db.close()


async def test_legacy_database_with_data_upgrades_without_loss(database_url: str):
    await create_legacy(database_url)
    db = Database(database_url)
    try:
        assert await db.schema_revision() is None  # before: no alembic_version, only schema_version
        assert await db.upgrade() == head()
        assert await db.read(_schema_diff) == []
        store = ResponseStore(db)
        rows = legacy_rows()
        for row in rows:  # every response still there, as stored, owned by the default owner
            stored = await store.get(row["id"], owner=DEFAULT_OWNER)
            assert stored is not None
            assert stored.response == row["response"]
            assert stored.input_items == row["input_items"]
            assert stored.context_items == row["context_items"]
        page = await store.list(owner=DEFAULT_OWNER, order="asc")
        assert [r["id"] for r in page.data] == [r["id"] for r in rows]
        assert (await store.list(owner="someone-else")).data == []
        # continuable: the context of the last one is the whole chain, as before the upgrade
        history = History(store, ConversationStore(db))
        expected = rows[-1]["context_items"] + rows[-1]["response"]["output"]
        assert await history.chain(DEFAULT_OWNER, "resp_legacy3") == expected
        # a new turn after an old one: stored the new way, the chain reaches through the old row
        new_input = [message("msg_in4", "user", "question 4")]
        new_output = [message("msg_out4", "assistant", "answer 4")]
        await store.save({"id": "resp_new4", "created_at": 1_800_000_000, "status": "completed",
                          "previous_response_id": "resp_legacy3", "output": new_output}, new_input,
                         owner=DEFAULT_OWNER)
        assert (await store.get("resp_new4", owner=DEFAULT_OWNER)).context_items is None
        assert await history.chain(DEFAULT_OWNER, "resp_new4") == expected + new_input + new_output
    finally:
        await db.close()


async def test_concurrent_upgrades_of_one_legacy_database_run_once(database_url: str):
    await create_legacy(database_url)
    databases = [Database(database_url) for _ in range(3)]
    try:
        assert await asyncio.gather(*(db.upgrade() for db in databases)) == [head()] * 3
        page = await ResponseStore(databases[0]).list(owner=DEFAULT_OWNER)
        assert len(page.data) == 3
    finally:
        for db in databases:
            await db.close()


async def test_in_memory_sqlite_migrates():
    db = Database("sqlite://")
    try:
        assert await db.upgrade() == head()
        assert await db.read(_schema_diff) == []
    finally:
        await db.close()


def test_cli_db_upgrade_and_current(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    create_legacy_sqlite(tmp_path / "respond.db")
    assert cli_main(["db", "current", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.split("\t")[0] == "(empty)"
    assert cli_main(["db", "upgrade", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == f"{head()}\thead"
    conn = sqlite3.connect(tmp_path / "respond.db")
    try:
        assert conn.execute("SELECT count(*) FROM responses WHERE owner = 'default'").fetchone() == (3,)
    finally:
        conn.close()


async def test_server_on_legacy_database_serves_and_continues_old_responses(database_url, make_server, upstream):
    """The real server started on a database created by the old code: it migrates on start; the old
    responses are retrievable and a new turn continues them with their whole history."""
    from tests.support.server import scripted_provider

    await create_legacy(database_url)
    server = await asyncio.to_thread(make_server, [scripted_provider(upstream)], database_url=database_url)
    client = server.async_client()
    old = await client.responses.retrieve("resp_legacy2")
    assert old.output_text == "answer 2" and old.previous_response_id == "resp_legacy1"
    items = await client.responses.input_items.list("resp_legacy3", order="asc")
    assert [i.id for i in items.data] == ["msg_in3"]
    upstream.script(reply("answer 4"))
    new = await client.responses.create(model="up/scripted", input="question 4",
                                        previous_response_id="resp_legacy3")
    assert new.output_text == "answer 4"
    sent = [(m["role"], m["content"] if isinstance(m["content"], str) else m["content"][0]["text"])
            for m in upstream.last_chat["messages"]]
    assert sent == [("user", "question 1"), ("assistant", "answer 1"), ("user", "question 2"),
                    ("assistant", "answer 2"), ("user", "question 3"), ("assistant", "answer 3"),
                    ("user", "question 4")]
    upstream.script(reply("answer 5"))
    await client.responses.create(model="up/scripted", input="question 5", previous_response_id=new.id)
    assert len(upstream.last_chat["messages"]) == 9
