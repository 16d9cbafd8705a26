"""`ApiKeyStore`: keys created through the admin API (table `api_keys`). Only digests are stored.

`find` is the authentication lookup (by digest, not revoked); the admin statements list and revoke keys of
every owner (the admin API is the one place that spans owners).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from respond.storage.auth_tables import api_keys
from respond.storage.engine import Database

_c = api_keys.c
_PUBLIC = (_c.id, _c.owner, _c.name, _c.prefix, _c.created_at, _c.revoked_at, _c.requests_per_minute,
           _c.tokens_per_minute)


@dataclass(frozen=True)
class KeyMatch:
    id: str
    owner: str
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None


def key_object(row: Any) -> dict[str, Any]:
    """The admin API's view of a key: never the key or its digest."""
    return {"id": row.id, "object": "api_key", "owner": row.owner, "name": row.name,
            "redacted_value": row.prefix, "created_at": row.created_at, "revoked_at": row.revoked_at,
            "requests_per_minute": row.requests_per_minute, "tokens_per_minute": row.tokens_per_minute}


class ApiKeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, *, key_id: str, owner: str, name: str | None, key_hash: str, prefix: str,
                     requests_per_minute: int | None = None, tokens_per_minute: int | None = None) -> dict[str, Any]:
        row = {"id": key_id, "owner": owner, "name": name, "key_hash": key_hash, "prefix": prefix,
               "created_at": int(time.time()), "revoked_at": None, "requests_per_minute": requests_per_minute,
               "tokens_per_minute": tokens_per_minute}
        await self.db.write_one(_insert, row)
        return key_object(_Row(**{k: v for k, v in row.items() if k != "key_hash"}))

    async def find(self, key_hash: str) -> KeyMatch | None:
        return await self.db.read(_find, key_hash)

    async def get(self, key_id: str) -> dict[str, Any] | None:
        return await self.db.read(_get, key_id)

    async def list(self, *, owner: str | None, after: str | None, limit: int) -> tuple[list[dict[str, Any]], bool]:
        return await self.db.read(_list, owner, after, limit)

    async def revoke(self, key_id: str) -> bool:
        """Mark the key revoked; False if there is no such (unrevoked) key."""
        return await self.db.write_one(_revoke, key_id, int(time.time()))


@dataclass
class _Row:
    id: str
    owner: str
    name: str | None
    prefix: str
    created_at: int
    revoked_at: int | None
    requests_per_minute: int | None
    tokens_per_minute: int | None


def _insert(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(api_keys).values(**row))


def _find(conn: Connection, key_hash: str) -> KeyMatch | None:
    row = conn.execute(select(_c.id, _c.owner, _c.requests_per_minute, _c.tokens_per_minute).where(
        _c.key_hash == key_hash, _c.revoked_at.is_(None))).first()
    return None if row is None else KeyMatch(id=row.id, owner=row.owner, requests_per_minute=row.requests_per_minute,
                                             tokens_per_minute=row.tokens_per_minute)


def _get(conn: Connection, key_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(*_PUBLIC).where(_c.id == key_id)).first()
    return None if row is None else key_object(row)


def _list(conn: Connection, owner: str | None, after: str | None, limit: int) -> tuple[list[dict[str, Any]], bool]:
    query = select(*_PUBLIC)
    if owner is not None:
        query = query.where(_c.owner == owner)
    if after is not None:
        seq = conn.execute(select(_c.seq).where(_c.id == after)).scalar()
        if seq is not None:
            query = query.where(_c.seq > seq)
    rows = conn.execute(query.order_by(_c.seq).limit(limit + 1)).all()
    return [key_object(r) for r in rows[:limit]], len(rows) > limit


def _revoke(conn: Connection, key_id: str, now: int) -> bool:
    return conn.execute(update(api_keys).where(_c.id == key_id, _c.revoked_at.is_(None))
                        .values(revoked_at=now)).rowcount > 0
