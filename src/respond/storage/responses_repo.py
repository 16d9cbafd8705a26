"""`ResponseStore`: stored Response objects with their own input items.

One row per response. The Response object and its input items are JSON documents; `id`, `created_at`,
`model`, `status`, `previous_response_id`, the conversation id and the owner are copied into index columns.
Writes are a single `INSERT .. ON CONFLICT (id) DO UPDATE` statement (Core, no ORM), so saving a response
first as `in_progress` and again when done is one round trip each.

A row holds only what that response added: its input items and (in the Response) its output. The context
of a chain is assembled by `chain()`: one recursive query over `previous_response_id` returning, for each
response of the chain, its input items and output (not the rest of the Response document). A row stores a
full `context_items` copy only when its history could not be assembled from stored rows (rows written
before migration 0002, and continuations of a WebSocket connection's unstored responses); the chain query
stops there, as it does at a response that belongs to a conversation (whose context is the conversation).
Every statement filters by `owner`.

Listing pages like OpenAI's: newest first by default, `after` is the id of the last item of the previous
page, `has_more` says whether another page follows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Integer, and_, bindparam, delete, literal, or_, select
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from respond.errors import InvalidRequest, not_found
from respond.storage.engine import Database
from respond.storage.tables import responses

_c = responses.c


@dataclass
class StoredResponse:
    response: dict
    input_items: list[dict]
    context_items: list[dict] | None = None  # the full context, when stored (see the module docstring)


@dataclass
class ChainLink:
    """One response of a chain, as `chain()` returns it (oldest first)."""

    id: str
    input_items: list[dict]
    output: list[dict]
    context_items: list[dict] | None  # set on the first link only: the full context before its own output
    conversation_id: str | None  # set on the first link only: its context is that conversation's items
    conversation_position: int | None
    status: str | None = None  # the response's status (queued / in_progress: it has not finished yet)


@dataclass
class Page:
    data: list[dict]
    has_more: bool
    first_id: str | None
    last_id: str | None

    def to_dict(self) -> dict:
        """The OpenAI list object."""
        return {"object": "list", "data": self.data, "first_id": self.first_id, "last_id": self.last_id,
                "has_more": self.has_more}

    @classmethod
    def of(cls, data: list[dict], has_more: bool) -> Page:
        return cls(data=data, has_more=has_more,
                   first_id=data[0].get("id") if data else None,
                   last_id=data[-1].get("id") if data else None)


def _conversation_id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else None


def check_page_args(limit: int, order: str) -> None:
    if order not in ("asc", "desc"):
        raise InvalidRequest(f"Invalid 'order': expected 'asc' or 'desc', got {order!r}.", param="order",
                             code="invalid_value")
    if limit < 1:
        raise InvalidRequest(f"Invalid 'limit': must be at least 1, got {limit}.", param="limit",
                             code="invalid_value")


class ResponseStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        insert = sqlite_dialect.insert if db.is_sqlite else pg_dialect.insert
        stmt = insert(responses)
        updated = ("created_at", "model", "status", "previous_response_id", "conversation_id",
                   "conversation_position", "response", "input_items", "context_items", "instance")
        self._upsert = stmt.on_conflict_do_update(
            index_elements=[_c.id], set_={name: stmt.excluded[name] for name in updated},
            where=_c.owner == stmt.excluded.owner)

    def row(self, owner: str, response: dict, input_items: list[dict], context_items: list[dict] | None = None,
            conversation_position: int | None = None, instance: str | None = None) -> dict[str, Any]:
        created_at = response.get("created_at")
        return {
            "id": response["id"],
            "owner": owner,
            "created_at": float(created_at) if created_at is not None else time.time(),
            "model": response.get("model"),
            "status": response.get("status"),
            "previous_response_id": response.get("previous_response_id"),
            "conversation_id": _conversation_id(response.get("conversation")),
            "conversation_position": conversation_position,
            "response": response,
            "input_items": input_items,
            "context_items": context_items,
            "instance": instance,  # set while a foreground response runs (responses/runs.py)
        }

    async def save(self, response: dict, input_items: list[dict], context_items: list[dict] | None = None, *,
                   owner: str) -> None:
        """Insert or replace the response stored under `response["id"]` (its list position is kept).

        `context_items`: only when the history before this response is not itself stored (see above)."""
        await self.db.write_one(_execute, self._upsert, self.row(owner, response, input_items, context_items))

    def save_in(self, conn: Connection, row: dict[str, Any]) -> None:
        """`save` as part of a caller's transaction (`row` from `row()`)."""
        conn.execute(self._upsert, row)

    async def get(self, response_id: str, *, owner: str) -> StoredResponse | None:
        return await self.db.read(_get, owner, response_id)

    async def chain(self, response_id: str, *, owner: str) -> list[ChainLink] | None:
        """The chain ending at `response_id`, oldest first (None if that response is not stored)."""
        return await self.db.read(_chain, owner, response_id)

    async def delete(self, response_id: str, *, owner: str) -> bool:
        return await self.db.write_one(_delete, owner, response_id)

    async def list(self, *, owner: str, after: str | None = None, limit: int = 20, order: str = "desc",
                   model: str | None = None) -> Page:
        """A page of stored responses ordered by creation (then insertion) time."""
        check_page_args(limit, order)
        return await self.db.read(_list, owner, after, limit, order, model)

    async def list_input_items(self, response_id: str, *, owner: str, after: str | None = None,
                               before: str | None = None, limit: int = 20, order: str = "desc") -> Page:
        """A page of the response's input items; "desc" is newest first (the reverse of input order).

        `after` / `before` are item ids and exclusive bounds in the chosen order. With only `before`, the page
        is the `limit` items just before it (and `has_more` says whether earlier ones exist); otherwise the
        page starts right after `after` (or at the start) and `has_more` says whether later ones exist.
        """
        check_page_args(limit, order)
        stored = await self.db.read(_input_items, owner, response_id)
        if stored is None:
            raise not_found("Response", response_id, param="response_id")
        items: list[dict] = stored if order == "asc" else stored[::-1]
        start, end = 0, len(items)
        if after is not None:
            start = _position(items, after, "after") + 1
        if before is not None:
            end = _position(items, before, "before")
        window = items[start:end] if start < end else []
        if before is not None and after is None:
            return Page.of(window[-limit:], has_more=len(window) > limit)
        return Page.of(window[:limit], has_more=len(window) > limit)


# -- the statements, run by Database.read / Database.write on a synchronous Connection -----------------------

_OWNED = and_(_c.id == bindparam("response_id"), _c.owner == bindparam("owner"))
_GET = select(_c.response, _c.input_items, _c.context_items).where(_OWNED)
_GET_INPUT_ITEMS = select(_c.input_items).where(_OWNED)
_GET_CURSOR = select(_c.created_at, _c.seq).where(_OWNED)
_DELETE = delete(responses).where(_OWNED)


def _chain_query() -> Any:
    """Recursive CTE: from one response back through `previous_response_id` until the first response, or one
    whose context is stored otherwise (full `context_items`, or a conversation)."""
    link = select(_c.id, _c.previous_response_id, _c.input_items, _c.response["output"].label("output"),
                  _c.context_items, _c.conversation_id, _c.conversation_position, _c.status,
                  literal(0, Integer).label("depth")).where(_OWNED).cte("chain", recursive=True)
    parent = (select(_c.id, _c.previous_response_id, _c.input_items, _c.response["output"], _c.context_items,
                     _c.conversation_id, _c.conversation_position, _c.status, link.c.depth + 1)
              .join(link, _c.id == link.c.previous_response_id)
              .where(_c.owner == bindparam("owner"), link.c.context_items.is_(None),
                     link.c.conversation_id.is_(None)))
    chain = link.union_all(parent)
    return select(chain.c.id, chain.c.input_items, chain.c.output, chain.c.context_items, chain.c.conversation_id,
                  chain.c.conversation_position, chain.c.status).order_by(chain.c.depth.desc())


_CHAIN = _chain_query()


def _execute(conn: Connection, statement: Any, params: dict[str, Any]) -> None:
    conn.execute(statement, params)


def _get(conn: Connection, owner: str, response_id: str) -> StoredResponse | None:
    row = conn.execute(_GET, {"response_id": response_id, "owner": owner}).first()
    if row is None:
        return None
    return StoredResponse(response=row[0], input_items=row[1], context_items=row[2])


def _chain(conn: Connection, owner: str, response_id: str) -> list[ChainLink] | None:
    rows = conn.execute(_CHAIN, {"response_id": response_id, "owner": owner}).all()
    if not rows:
        return None
    return [ChainLink(id=r[0], input_items=r[1], output=r[2] or [], context_items=r[3], conversation_id=r[4],
                      conversation_position=r[5], status=r[6]) for r in rows]


def _input_items(conn: Connection, owner: str, response_id: str) -> list[dict] | None:
    row = conn.execute(_GET_INPUT_ITEMS, {"response_id": response_id, "owner": owner}).first()
    return None if row is None else row[0]


def _delete(conn: Connection, owner: str, response_id: str) -> bool:
    return conn.execute(_DELETE, {"response_id": response_id, "owner": owner}).rowcount > 0


def _list(conn: Connection, owner: str, after: str | None, limit: int, order: str, model: str | None) -> Page:
    conditions = [_c.owner == owner]
    if model is not None:
        conditions.append(_c.model == model)
    if after is not None:
        cursor = conn.execute(_GET_CURSOR, {"response_id": after, "owner": owner}).first()
        if cursor is None:
            raise not_found("Response", after, param="after")
        created_at, seq = cursor
        if order == "desc":
            conditions.append(or_(_c.created_at < created_at, and_(_c.created_at == created_at, _c.seq < seq)))
        else:
            conditions.append(or_(_c.created_at > created_at, and_(_c.created_at == created_at, _c.seq > seq)))
    ordering = (_c.created_at.desc(), _c.seq.desc()) if order == "desc" else (_c.created_at.asc(), _c.seq.asc())
    rows = conn.execute(select(_c.response).where(*conditions).order_by(*ordering).limit(limit + 1)).all()
    return Page.of([row[0] for row in rows[:limit]], has_more=len(rows) > limit)


def _position(items: list[dict], item_id: str, param: str) -> int:
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get("id") == item_id:
            return index
    raise not_found("Input item", item_id, param=param)
