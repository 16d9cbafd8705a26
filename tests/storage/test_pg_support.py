"""The PostgreSQL test plugin itself: `database_url` namespaces are isolated and cleaned up."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from respond.storage import Database, ResponseStore
from respond.storage.tables import DEFAULT_OWNER as OWNER
from tests.support.pg import PgCluster


async def test_schema_urls_are_isolated_and_dropped(pg_cluster: PgCluster):
    (name_a, url_a), (name_b, url_b) = pg_cluster.create_schema_url(), pg_cluster.create_schema_url()
    first, second = Database(url_a), Database(url_b)
    try:
        for db in (first, second):
            await db.create_all()
        await ResponseStore(first).save({"id": "resp_only_in_a", "created_at": 1, "output": []}, [], owner=OWNER)
        assert await ResponseStore(second).get("resp_only_in_a", owner=OWNER) is None
        assert (await ResponseStore(first).get("resp_only_in_a", owner=OWNER)) is not None
        assert await first.read(lambda conn: conn.exec_driver_sql("SELECT current_schema()").scalar()) == name_a
        # dropping cuts the connections still open in the pool, removes the tables and the role
        pg_cluster.drop_schema(name_a)
        assert pg_cluster.admin.fetchval(
            f"SELECT count(*) FROM pg_namespace WHERE nspname = '{name_a}'") == 0
        assert pg_cluster.admin.fetchval(f"SELECT count(*) FROM pg_roles WHERE rolname = '{name_a}'") == 0
        for _ in range(2):  # the pooled connection was terminated; a new one is refused: the role is gone
            with pytest.raises(DBAPIError):
                await ResponseStore(first).get("resp_only_in_a", owner=OWNER)
        assert (await ResponseStore(second).list(owner=OWNER)).data == []
    finally:
        await first.close()
        await second.close()
        pg_cluster.drop_schema(name_b)


def test_pg_url_is_asyncpg(pg_url: str):
    assert pg_url.startswith("postgresql+asyncpg://")
