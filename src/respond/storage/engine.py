"""`Database`: the one engine (and connection pool) of an app, for SQLite or PostgreSQL.

Repositories write plain synchronous SQLAlchemy Core code against a `Connection` and hand it to
`await db.read(fn, *args)`, `await db.write(fn, *args)` (a transaction) or `await db.write_one(fn, *args)`
(a single statement); the same function then runs on both backends:

- PostgreSQL (`postgresql+asyncpg://...`): an `AsyncEngine` on asyncpg; `fn` runs through
  `AsyncConnection.run_sync` (SQLAlchemy's greenlet bridge), so no thread is involved. Connections plan
  every statement for its parameters (`plan_cache_mode = force_custom_plan`, see below).
- SQLite (`sqlite+aiosqlite:///path`, or `sqlite:///path`): the stdlib `sqlite3` driver run off the event loop
  in worker threads, which is what aiosqlite does too, minus its per-call thread hops: aiosqlite pays five
  hops per statement (cursor, execute, close, commit, reset), this pays one per `read`/`write`, which makes
  a save 3-5x cheaper in CPU. One thread does every write, in arrival order (SQLite has a single writer
  anyway, so nobody waits in SQLite's busy handler); a few threads do reads, which WAL lets run alongside.
  Every connection gets `journal_mode=WAL`, `synchronous=NORMAL`, `foreign_keys=ON` and a busy timeout (for
  other processes on the same file). The file's parent directories are created.

JSON columns are (de)serialized with orjson.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from respond import jsonutil

P = ParamSpec("P")
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_READERS = 4


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _is_sqlite_memory(database: str | None) -> bool:
    return not database or database == ":memory:" or "mode=memory" in database or database.startswith(
        "file::memory:")


class Database:
    """Owns the engine and its pool. `dialect` is "sqlite" or "postgresql"."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: "
                             "use sqlite:///path or postgresql+asyncpg://...")
        self.dialect: str = backend
        self.url: URL = parsed
        json_options: dict[str, Any] = {"json_serializer": jsonutil.dumps, "json_deserializer": jsonutil.loads}
        self._async_engine: AsyncEngine | None = None
        self._sync_engine: Engine | None = None
        if backend == "postgresql":
            if parsed.get_driver_name() != "asyncpg":
                parsed = parsed.set(drivername="postgresql+asyncpg")
            # Custom plans only: asyncpg prepares and caches every statement, and PostgreSQL would otherwise
            # switch a statement to a generic plan made when the tables were small (a sequential scan), kept
            # until the next ANALYZE. For the recursive chain query that turned each step into a table scan
            # (a 5,000-turn chain: 20 s instead of 0.1 s, bench/context_load.py --pg).
            self._async_engine = create_async_engine(
                parsed, connect_args={"server_settings": {"plan_cache_mode": "force_custom_plan"}}, **json_options)
            self._autocommit_engine = self._async_engine.execution_options(isolation_level="AUTOCOMMIT")
            return
        parsed = parsed.set(drivername="sqlite")
        if _is_sqlite_memory(parsed.database):
            # One shared connection (each new one would be a new, empty database), used by one thread.
            self._sync_engine = create_engine(parsed, poolclass=StaticPool,
                                              connect_args={"check_same_thread": False}, **json_options)
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="respond-sqlite")
            self._readers = self._writer
        else:
            path = Path(parsed.database).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            self._sync_engine = create_engine(parsed.set(database=str(path)), pool_size=SQLITE_READERS + 1,
                                              max_overflow=0, **json_options)
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="respond-sqlite-w")
            self._readers = ThreadPoolExecutor(SQLITE_READERS, thread_name_prefix="respond-sqlite-r")
        event.listen(self._sync_engine, "connect", _sqlite_pragmas)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    async def read(self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(conn, *args, **kwargs)` on a pooled connection without an explicit transaction
        (each statement sees the latest committed data). For queries."""
        if self._sync_engine is not None:
            call = functools.partial(self._sqlite_read, fn, *args, **kwargs)
            return await asyncio.get_running_loop().run_in_executor(self._readers, call)
        async with self._autocommit_engine.connect() as conn:
            return await conn.run_sync(fn, *args, **kwargs)

    async def write(self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(conn, *args, **kwargs)` in a transaction: committed when it returns, rolled back if it
        raises. On SQLite every write runs on one thread, in arrival order."""
        if self._sync_engine is not None:
            call = functools.partial(self._sqlite_write, fn, *args, **kwargs)
            return await asyncio.get_running_loop().run_in_executor(self._writer, call)
        assert self._async_engine is not None
        async with self._async_engine.begin() as conn:
            return await conn.run_sync(fn, *args, **kwargs)

    async def write_one(self, fn: Callable[Concatenate[Connection, P], T], *args: P.args,
                        **kwargs: P.kwargs) -> T:
        """`write` for an `fn` that runs exactly one statement, which is atomic on its own: on PostgreSQL it
        runs in autocommit mode, one round trip instead of three (BEGIN, statement, COMMIT)."""
        if self._sync_engine is not None:
            call = functools.partial(self._sqlite_write, fn, *args, **kwargs)
            return await asyncio.get_running_loop().run_in_executor(self._writer, call)
        async with self._autocommit_engine.connect() as conn:
            return await conn.run_sync(fn, *args, **kwargs)

    def _sqlite_read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        assert self._sync_engine is not None
        with self._sync_engine.connect() as conn:
            return fn(conn, *args, **kwargs)

    def _sqlite_write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        assert self._sync_engine is not None
        with self._sync_engine.begin() as conn:
            return fn(conn, *args, **kwargs)

    async def upgrade(self) -> str | None:
        """Bring the schema to the newest migration (idempotent; see `migrate.py`). Returns the revision."""
        from respond.storage import migrate

        if self._async_engine is not None:
            async with self._async_engine.begin() as conn:
                return await conn.run_sync(migrate.upgrade)
        assert self._sync_engine is not None
        if _is_sqlite_memory(self.url.database):  # one shared connection: migrate on it
            return await self.write(migrate.upgrade)
        return await asyncio.get_running_loop().run_in_executor(self._writer, self._sqlite_upgrade)

    def _sqlite_upgrade(self) -> str | None:
        from respond.storage import migrate

        assert self._sync_engine is not None
        engine = migrate.sqlite_migration_engine(self._sync_engine.url)
        try:
            with engine.begin() as conn:
                return migrate.upgrade(conn)
        finally:
            engine.dispose()

    create_all = upgrade  # the name tests and tools used before migrations existed

    async def schema_revision(self) -> str | None:
        """The Alembic revision the database is at."""
        from respond.storage import migrate

        return await self.read(migrate.current)

    async def close(self) -> None:
        """Finish queued work and close every pooled connection."""
        if self._async_engine is not None:
            await self._async_engine.dispose()
            return
        await asyncio.get_running_loop().run_in_executor(None, self._close_sqlite)

    def _close_sqlite(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        assert self._sync_engine is not None
        self._sync_engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"
