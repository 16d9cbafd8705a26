"""FileStore and VectorStoreRepo against real SQLite files and a real PostgreSQL server: owner isolation in
every query, expiry, the queue's claims (FOR UPDATE SKIP LOCKED: two processes never take the same file;
a lost lease is taken again), and filters inside the search statement."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from respond.storage import Database
from respond.storage.files_repo import FileStore
from respond.storage.vector_stores_repo import VectorStoreRepo

STRATEGY = {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}}


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.upgrade()
    yield database
    await database.close()


def file_row(file_id: str, **extra) -> dict:
    return {"id": file_id, "created_at": int(time.time()), "filename": f"{file_id}.txt", "purpose": "assistants",
            "bytes": 3, "blob_key": file_id, "content_type": None, "expires_at": None, **extra}


async def test_files_are_owner_scoped_and_expire(db: Database) -> None:
    store = FileStore(db)
    await store.insert("alice", file_row("file-a"))
    await store.insert("bob", file_row("file-b"))
    await store.insert("alice", file_row("file-old", expires_at=int(time.time()) - 5))
    assert (await store.get("alice", "file-a")).id == "file-a"
    assert await store.get("bob", "file-a") is None
    assert [r.id for r in (await store.list("alice", purpose=None, after=None, limit=10, order="asc"))[0]] == ["file-a"]
    assert set(await store.get_many("bob", ["file-a", "file-b"])) == {"file-b"}
    assert not await store.delete("bob", "file-a")
    assert await store.get("alice", "file-old") is None  # expired: invisible at once
    assert [r.id for r in await store.expired(int(time.time()))] == ["file-old"]


async def make_store(repo: VectorStoreRepo, owner: str, store_id: str) -> None:
    await repo.insert_store(owner, {"id": store_id, "created_at": 0, "last_active_at": 0, "name": store_id,
                                    "metadata": None, "expires_after": None, "expires_at": None,
                                    "embedding_model": "m"})


async def test_stores_and_chunks_are_owner_scoped(db: Database) -> None:
    repo = VectorStoreRepo(db)
    await make_store(repo, "alice", "vs_a")
    await make_store(repo, "bob", "vs_b")
    assert await repo.get_store("bob", "vs_a") is None
    assert [r.id for r in (await repo.list_stores("alice", after=None, before=None, limit=10, order="desc"))[0]] == ["vs_a"]
    await repo.insert_chunks("alice", "vs_a", "file-a", {"k": 1}, [(0, "shared words here", 3, [1.0, 0.0])])
    assert await repo.vector_search("bob", "vs_a", [1.0, 0.0], None, 5) == []
    assert await repo.keyword_search("bob", "vs_a", "shared", None, 5) == []
    assert len(await repo.keyword_search("alice", "vs_a", "shared", None, 5)) == 1
    assert not await repo.delete_store("bob", "vs_a")
    assert await repo.get_store("alice", "vs_a") is not None
    await repo.close()


async def test_filters_run_inside_the_query(db: Database) -> None:
    """1 chunk in 100 matches; the top 5 by distance are all non-matching, yet 5 matching hits come back."""
    repo = VectorStoreRepo(db)
    await make_store(repo, "o", "vs")
    rows = []
    for i in range(300):
        vector = [1.0, 0.0] if i % 100 else [0.0, 1.0]  # the matching chunks point away from the query
        rows.append((i, f"chunk {i}", 2, vector))
    for start in range(0, 300, 100):
        await repo.insert_chunks("o", "vs", f"file-{start}", {"n": start}, rows[start:start + 100])
    hits = await repo.vector_search("o", "vs", [1.0, 0.0], {"type": "eq", "key": "n", "value": 100}, 5)
    assert len(hits) == 5 and {h["attributes"]["n"] for h in hits} == {100}
    hits = await repo.vector_search("o", "vs", [1.0, 0.0], {"type": "in", "key": "n", "value": [0, 200]}, 500)
    assert len(hits) == 200
    await repo.close()


async def test_claims_never_overlap_and_lost_leases_return(database_url: str) -> None:
    first, second = Database(database_url), Database(database_url)
    await first.upgrade()
    a, b = VectorStoreRepo(first), VectorStoreRepo(second)
    try:
        await make_store(a, "o", "vs")
        await a.attach("o", "vs", [{"file_id": f"file-{i}", "attributes": None, "chunking_strategy": STRATEGY}
                                   for i in range(6)], batch_id=None, test_id=None)
        claims = await asyncio.gather(*([a.claim("worker-a", 30) for _ in range(3)] +
                                        [b.claim("worker-b", 30) for _ in range(3)]))
        taken = [c.file_id for c in claims if c is not None]
        assert len(taken) == len(set(taken)) == 6  # every file once, whichever process asked
        assert await a.claim("worker-a", 30) is None
        # a lease that runs out (its process died) is taken again, and the old owner can no longer finish
        lost = claims[0]
        worker = "worker-a"
        assert await a.renew(worker, "vs", lost.file_id, -1, owner="o")  # expire it
        again = await b.claim("worker-c", 30)
        assert again is not None and again.file_id == lost.file_id
        assert not await a.finish(worker, "vs", lost.file_id, "completed", None, 0, owner="o")
        assert not await b.finish("worker-c", "vs", lost.file_id, "completed", None, 0, owner="someone-else")
        assert await b.finish("worker-c", "vs", lost.file_id, "completed", None, 0, owner="o")
    finally:
        await a.close()
        await b.close()
        await first.close()
        await second.close()
