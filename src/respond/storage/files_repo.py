"""`FileStore`: rows of the `files` table. Every statement filters by `owner`; expired files are invisible."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select

from respond.errors import InvalidRequest
from respond.storage.engine import Database
from respond.storage.files_tables import files

_c = files.c
_COLUMNS = (_c.id, _c.created_at, _c.expires_at, _c.filename, _c.purpose, _c.bytes, _c.blob_key, _c.content_type)


def file_object(row: Any) -> dict[str, Any]:
    """The OpenAI `FileObject` of a row."""
    return {"id": row.id, "object": "file", "bytes": row.bytes, "created_at": row.created_at,
            "filename": row.filename, "purpose": row.purpose, "status": "processed",
            "expires_at": row.expires_at, "status_details": None}


def _visible(owner: str) -> Any:
    return (_c.owner == owner) & or_(_c.expires_at.is_(None), _c.expires_at > int(time.time()))


class FileStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, owner: str, row: dict[str, Any]) -> None:
        await self.db.write_one(_insert, {**row, "owner": owner})

    async def get(self, owner: str, file_id: str) -> Any | None:
        return await self.db.read(_get, owner, file_id)

    async def get_many(self, owner: str, file_ids: list[str]) -> dict[str, Any]:
        return await self.db.read(_get_many, owner, file_ids)

    async def list(self, owner: str, *, purpose: str | None, after: str | None, limit: int,
                   order: str) -> tuple[list[Any], bool]:
        return await self.db.read(_list, owner, purpose, after, limit, order)

    async def delete(self, owner: str, file_id: str) -> bool:
        return await self.db.write_one(_delete, owner, file_id)

    async def expired(self, now: int, limit: int = 100) -> list[Any]:
        """Expired rows of every owner (for the cleanup sweep)."""
        return await self.db.read(_expired, now, limit)

    async def delete_rows(self, ids: list[str]) -> None:
        await self.db.write_one(lambda conn: conn.execute(delete(files).where(_c.id.in_(ids))))


def _insert(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(files).values(**row))


def _get(conn: Connection, owner: str, file_id: str) -> Any | None:
    return conn.execute(select(*_COLUMNS).where(_visible(owner), _c.id == file_id)).first()


def _get_many(conn: Connection, owner: str, file_ids: list[str]) -> dict[str, Any]:
    if not file_ids:
        return {}
    rows = conn.execute(select(*_COLUMNS).where(_visible(owner), _c.id.in_(file_ids))).all()
    return {row.id: row for row in rows}


def _list(conn: Connection, owner: str, purpose: str | None, after: str | None, limit: int,
          order: str) -> tuple[list[Any], bool]:
    query = select(*_COLUMNS).where(_visible(owner))
    if purpose is not None:
        query = query.where(_c.purpose == purpose)
    if after is not None:
        seq = conn.execute(select(_c.seq).where(_c.owner == owner, _c.id == after)).scalar()
        if seq is None:
            raise InvalidRequest(f"No file with id '{after}' to list after.", param="after", code="invalid_value")
        query = query.where(_c.seq < seq if order == "desc" else _c.seq > seq)
    query = query.order_by(_c.seq.desc() if order == "desc" else _c.seq.asc()).limit(limit + 1)
    rows = conn.execute(query).all()
    return rows[:limit], len(rows) > limit


def _delete(conn: Connection, owner: str, file_id: str) -> bool:
    return conn.execute(delete(files).where(_c.owner == owner, _c.id == file_id)).rowcount > 0


def _expired(conn: Connection, now: int, limit: int) -> list[Any]:
    return conn.execute(select(_c.id, _c.owner, _c.blob_key).where(_c.expires_at.is_not(None), _c.expires_at <= now)
                        .limit(limit)).all()
