"""`ConversationStore`: conversations and their items.

A conversation is one row (`conversations`: id, owner, created_at, metadata, next_position). Its items are
rows of `conversation_items`, one per item, each with its position in the conversation (unique per
conversation, indexed): listing a page is an indexed range query, retrieving an item is an index lookup,
and loading the context of a turn reads the item documents of one conversation in position order without
touching anything else.

Appending n items first moves the conversation's `next_position` on by n (`UPDATE .. RETURNING`), then
inserts the items at the positions it reserved, in the same transaction. The UPDATE locks the conversation
row on PostgreSQL until commit (SQLite has a single writer), so concurrent appends to one conversation run
one after the other: each batch lands contiguous, in commit order, nothing lost or interleaved. Positions
are never reused (deleting an item leaves a gap).

Every statement filters by `owner`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from respond.errors import not_found
from respond.storage.engine import Database
from respond.storage.responses_repo import Page, check_page_args
from respond.storage.tables import conversation_items, conversations

_conv = conversations.c
_item = conversation_items.c


@dataclass
class AppendedItems:
    first_position: int
    last_position: int


def conversation_object(row: Any) -> dict[str, Any]:
    return {"id": row.id, "object": "conversation", "created_at": row.created_at, "metadata": row.metadata}


class ConversationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, owner: str, conversation: dict[str, Any], items: list[dict[str, Any]]) -> None:
        """Insert a conversation (`id`, `created_at`, `metadata`) with its first items, in one transaction."""
        await self.db.write(_create, owner, conversation, items)

    async def get(self, owner: str, conversation_id: str) -> dict[str, Any] | None:
        return await self.db.read(_get, owner, conversation_id)

    async def update_metadata(self, owner: str, conversation_id: str,
                              metadata: dict[str, str]) -> dict[str, Any] | None:
        return await self.db.write(_update_metadata, owner, conversation_id, metadata)

    async def delete(self, owner: str, conversation_id: str) -> bool:
        """Delete the conversation and every item in it."""
        return await self.db.write(_delete, owner, conversation_id)

    async def append(self, owner: str, conversation_id: str, items: list[dict[str, Any]],
                     response_id: str | None = None) -> AppendedItems | None:
        """Append `items` at the end, contiguous; None if there is no such conversation."""
        return await self.db.write(append_items, owner, conversation_id, items, response_id)

    async def items(self, owner: str, conversation_id: str, *,
                    up_to: int | None = None) -> list[dict[str, Any]] | None:
        """Every item (position order), or those at positions <= `up_to`: the context of a turn. None if
        there is no such conversation."""
        return await self.db.read(_all_items, owner, conversation_id, up_to)

    async def list_items(self, owner: str, conversation_id: str, *, after: str | None = None, limit: int = 20,
                         order: str = "desc") -> Page | None:
        """A page of items; "desc" is newest first. None if there is no such conversation."""
        check_page_args(limit, order)
        return await self.db.read(_list_items, owner, conversation_id, after, limit, order)

    async def get_item(self, owner: str, conversation_id: str, item_id: str) -> dict[str, Any] | None:
        return await self.db.read(_get_item, owner, conversation_id, item_id)

    async def delete_item(self, owner: str, conversation_id: str, item_id: str) -> bool:
        return await self.db.write(_delete_item, owner, conversation_id, item_id)


# -- the statements, run by Database.read / Database.write on a synchronous Connection -----------------------

def _create(conn: Connection, owner: str, conversation: dict[str, Any], items: list[dict[str, Any]]) -> None:
    conn.execute(insert(conversations).values(id=conversation["id"], owner=owner,
                                              created_at=conversation["created_at"],
                                              metadata=conversation["metadata"], next_position=0))
    if items:
        append_items(conn, owner, conversation["id"], items, None)


def _get(conn: Connection, owner: str, conversation_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(_conv.id, _conv.created_at, _conv.metadata).where(
        _conv.id == conversation_id, _conv.owner == owner)).first()
    return None if row is None else conversation_object(row)


def _update_metadata(conn: Connection, owner: str, conversation_id: str,
                     metadata: dict[str, str]) -> dict[str, Any] | None:
    row = conn.execute(update(conversations).where(_conv.id == conversation_id, _conv.owner == owner)
                       .values(metadata=metadata)
                       .returning(_conv.id, _conv.created_at, _conv.metadata)).first()
    return None if row is None else conversation_object(row)


def _delete(conn: Connection, owner: str, conversation_id: str) -> bool:
    conn.execute(delete(conversation_items).where(_item.conversation_id == conversation_id, _item.owner == owner))
    return conn.execute(delete(conversations).where(_conv.id == conversation_id,
                                                    _conv.owner == owner)).rowcount > 0


def append_items(conn: Connection, owner: str, conversation_id: str, items: list[dict[str, Any]],
                 response_id: str | None) -> AppendedItems | None:
    """Reserve positions (locking the conversation row) and insert `items` there. Part of a transaction."""
    end = conn.execute(update(conversations).where(_conv.id == conversation_id, _conv.owner == owner)
                       .values(next_position=_conv.next_position + len(items))
                       .returning(_conv.next_position)).scalar()
    if end is None:
        return None
    start = end - len(items)
    if items:
        conn.execute(insert(conversation_items), [
            {"conversation_id": conversation_id, "position": start + k, "id": item["id"], "owner": owner,
             "type": item["type"], "response_id": response_id, "item": item}
            for k, item in enumerate(items)])
    return AppendedItems(first_position=start, last_position=end - 1)


def _all_items(conn: Connection, owner: str, conversation_id: str,
               up_to: int | None) -> list[dict[str, Any]] | None:
    if not _exists(conn, owner, conversation_id):
        return None
    query = select(_item.item).where(_item.conversation_id == conversation_id, _item.owner == owner)
    if up_to is not None:
        query = query.where(_item.position <= up_to)
    return list(conn.execute(query.order_by(_item.position)).scalars())


def _exists(conn: Connection, owner: str, conversation_id: str) -> bool:
    return conn.execute(select(_conv.seq).where(_conv.id == conversation_id, _conv.owner == owner)).first() \
        is not None


def _position_of(conn: Connection, owner: str, conversation_id: str, item_id: str) -> int | None:
    return conn.execute(select(_item.position).where(
        _item.conversation_id == conversation_id, _item.id == item_id, _item.owner == owner)
        .order_by(_item.position).limit(1)).scalar()


def _list_items(conn: Connection, owner: str, conversation_id: str, after: str | None, limit: int,
                order: str) -> Page | None:
    if not _exists(conn, owner, conversation_id):
        return None
    query = select(_item.item).where(_item.conversation_id == conversation_id, _item.owner == owner)
    if after is not None:
        position = _position_of(conn, owner, conversation_id, after)
        if position is None:
            raise not_found("Item", after, param="after")
        query = query.where(_item.position < position if order == "desc" else _item.position > position)
    query = query.order_by(_item.position.desc() if order == "desc" else _item.position.asc()).limit(limit + 1)
    rows = list(conn.execute(query).scalars())
    return Page.of(rows[:limit], has_more=len(rows) > limit)


def _get_item(conn: Connection, owner: str, conversation_id: str, item_id: str) -> dict[str, Any] | None:
    return conn.execute(select(_item.item).where(
        _item.conversation_id == conversation_id, _item.id == item_id, _item.owner == owner)
        .order_by(_item.position).limit(1)).scalar()


def _delete_item(conn: Connection, owner: str, conversation_id: str, item_id: str) -> bool:
    return conn.execute(delete(conversation_items).where(
        _item.conversation_id == conversation_id, _item.id == item_id, _item.owner == owner)).rowcount > 0
