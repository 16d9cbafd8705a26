"""ConversationStore against real SQLite files and a real PostgreSQL server (both via `database_url`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from respond.errors import InvalidRequest, NotFound
from respond.storage import Database
from respond.storage.conversations_repo import ConversationStore
from respond.storage.tables import DEFAULT_OWNER, conversation_items

OWNER = DEFAULT_OWNER


def msg(item_id: str) -> dict:
    return {"type": "message", "id": item_id, "role": "user", "status": "completed",
            "content": [{"type": "input_text", "text": item_id}]}


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[ConversationStore]:
    db = Database(database_url)
    await db.upgrade()
    try:
        yield ConversationStore(db)
    finally:
        await db.close()


async def new(store: ConversationStore, conv_id: str = "conv_1", items: list[dict] | None = None,
              owner: str = OWNER) -> None:
    await store.create(owner, {"id": conv_id, "created_at": 1_700_000_000, "metadata": {"k": "v"}}, items or [])


async def test_create_get_update_delete(store: ConversationStore):
    await new(store, items=[msg("a"), msg("b")])
    assert await store.get(OWNER, "conv_1") == {"id": "conv_1", "object": "conversation",
                                                "created_at": 1_700_000_000, "metadata": {"k": "v"}}
    assert (await store.update_metadata(OWNER, "conv_1", {"x": "y"}))["metadata"] == {"x": "y"}
    assert await store.update_metadata(OWNER, "conv_nope", {}) is None
    assert await store.delete(OWNER, "conv_1") is True
    assert await store.get(OWNER, "conv_1") is None and await store.delete(OWNER, "conv_1") is False
    count = await store.db.read(lambda c: c.execute(select(func.count()).select_from(conversation_items)).scalar())
    assert count == 0  # the items went with it


async def test_owner_isolation(store: ConversationStore):
    await new(store, items=[msg("a")])
    other = "another-owner"
    assert await store.get(other, "conv_1") is None
    assert await store.items(other, "conv_1") is None
    assert await store.list_items(other, "conv_1") is None
    assert await store.get_item(other, "conv_1", "a") is None
    assert await store.append(other, "conv_1", [msg("x")]) is None
    assert await store.delete_item(other, "conv_1", "a") is False
    assert await store.delete(other, "conv_1") is False
    assert [i["id"] for i in await store.items(OWNER, "conv_1")] == ["a"]


async def test_positions_pages_and_item_deletion(store: ConversationStore):
    await new(store, items=[msg(f"i{k}") for k in range(5)])
    appended = await store.append(OWNER, "conv_1", [msg(f"i{k}") for k in range(5, 12)])
    assert (appended.first_position, appended.last_position) == (5, 11)
    page = await store.list_items(OWNER, "conv_1", limit=5)
    assert [i["id"] for i in page.data] == ["i11", "i10", "i9", "i8", "i7"] and page.has_more
    page = await store.list_items(OWNER, "conv_1", limit=5, after="i3")
    assert [i["id"] for i in page.data] == ["i2", "i1", "i0"] and not page.has_more
    page = await store.list_items(OWNER, "conv_1", order="asc", after="i8")
    assert [i["id"] for i in page.data] == ["i9", "i10", "i11"] and not page.has_more
    assert await store.delete_item(OWNER, "conv_1", "i5") is True
    assert await store.get_item(OWNER, "conv_1", "i5") is None
    assert (await store.append(OWNER, "conv_1", [msg("new")])).first_position == 12  # never reused
    assert [i["id"] for i in await store.items(OWNER, "conv_1", up_to=6)] == ["i0", "i1", "i2", "i3", "i4", "i6"]
    with pytest.raises(NotFound):
        await store.list_items(OWNER, "conv_1", after="i5")
    with pytest.raises(InvalidRequest):
        await store.list_items(OWNER, "conv_1", order="sideways")


async def test_concurrent_appends_land_whole_and_in_order(store: ConversationStore):
    await new(store)
    batches = 24

    async def append(b: int) -> int:
        result = await store.append(OWNER, "conv_1", [msg(f"b{b}-{k}") for k in range(5)], response_id=f"resp_{b}")
        return result.first_position

    starts = await asyncio.gather(*(append(b) for b in range(batches)))
    assert sorted(starts) == list(range(0, 5 * batches, 5))
    items = await store.items(OWNER, "conv_1")
    assert len(items) == 5 * batches == len({i["id"] for i in items})
    for start in range(0, len(items), 5):  # each batch contiguous and in its own order
        batch = items[start:start + 5]
        prefix = batch[0]["id"].split("-")[0]
        assert [i["id"] for i in batch] == [f"{prefix}-{k}" for k in range(5)]
