"""Schema migrations: bring a database to the head Alembic revision (on start, or `respond db upgrade`).

The migrations live in `respond/storage/migrations/versions/`, one file per revision, ids fixed by name
(`0001_baseline`, `0002_conversations`, ...). `upgrade(conn)` runs them on a synchronous SQLAlchemy
`Connection` inside one transaction that holds a lock, so several processes starting at once on one database
migrate it once:

- PostgreSQL: a transaction-scoped advisory lock (`pg_advisory_xact_lock`); DDL is transactional, so a
  failed migration leaves the database as it was.
- SQLite: the transaction starts with `BEGIN IMMEDIATE` (the write lock) on a dedicated connection; SQLite's
  DDL is transactional too.

A database created before Alembic (it has a `schema_version` table and no `alembic_version`) holds exactly
the `0001_baseline` schema: it is stamped at that revision, then upgraded like any other, keeping its data.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, event, inspect, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001_baseline"
_PG_LOCK_KEY = 0x52455350  # "RESP"


@functools.cache
def _script() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS))


def head() -> str:
    """The newest revision id."""
    revision = _script().get_current_head()
    assert revision is not None
    return revision


def _config(conn: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def current(conn: Connection) -> str | None:
    """The revision the database is at (None: empty, or created before Alembic)."""
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(conn: Connection, revision: str = "head") -> str | None:
    """Upgrade the database on `conn` (in its transaction) to `revision`; return the revision it is at."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    config = _config(conn)
    if current(conn) is None and inspect(conn).has_table("schema_version"):
        command.stamp(config, BASELINE)  # created by Respond before migrations existed: schema 0001
    command.upgrade(config, revision)
    return current(conn)


def sqlite_migration_engine(url: URL):
    """A one-connection engine whose transactions begin with `BEGIN IMMEDIATE` (pysqlite would otherwise
    run DDL outside any transaction and take the write lock only at the first INSERT)."""
    engine = create_engine(url, poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA busy_timeout=30000")
        dbapi_connection.execute("PRAGMA foreign_keys=OFF")  # batch table copies must not cascade

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn) -> None:  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
