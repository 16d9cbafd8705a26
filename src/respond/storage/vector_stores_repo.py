"""`VectorStoreRepo`: stores, attached files (which double as the ingestion queue), batches and the chunk
index, for SQLite and PostgreSQL. Every statement filters by `owner` (the queue statements act on rows a
request already created for an owner, and carry that owner along).

Search runs in one SQL statement per ranking signal, with the attribute filter inside it:
- vector: SQLite `vec_distance_cosine` (sqlite-vec), PostgreSQL pgvector `<=>`; exact (a scan of the store's
  chunks), so a filter matching 1% of the chunks still returns `k` hits.
- keyword: SQLite FTS5 `bm25`, PostgreSQL `ts_rank_cd` over the generated `tsv` column.

sqlite-vec is a loadable extension; Python builds without `enable_load_extension` (pyenv's default) cannot
load it into the stdlib driver, so vector queries on SQLite run on their own read-only connections from
`pysqlite3` (the same SQLite API, extension loading on) when the stdlib cannot. Without either, a Python
cosine function is registered instead (same SQL, slower).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, text, update

from respond.storage.engine import Database
from respond.storage.files_tables import (
    vector_store_chunks,
    vector_store_file_batches,
    vector_store_files,
    vector_stores,
)
from respond.storage.vector_filters import compile_filters

log = logging.getLogger("respond.vector_stores")

_s = vector_stores.c
_f = vector_store_files.c
_b = vector_store_file_batches.c
_k = vector_store_chunks.c

STATUSES = ("in_progress", "completed", "failed", "cancelled")
STOPWORDS = frozenset(
    "a an and are as at be by can could did do does for from has have how i in is it its many much of on or "
    "please tell that the their there this to was what when where which who why will with would you your me "
    "my about".split())


def pack_vector(vector: list[float]) -> bytes:
    return struct.pack(f"<{len(vector)}f", *vector)


def _pg_vector(vector: list[float]) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _page(conn: Connection, query: Any, table_seq: Any, cursor_query: Any, after: str | None, before: str | None,
          limit: int, order: str) -> tuple[list[Any], bool]:
    if after is not None:
        seq = conn.execute(cursor_query(after)).scalar()
        if seq is not None:
            query = query.where(table_seq < seq if order == "desc" else table_seq > seq)
    if before is not None:
        seq = conn.execute(cursor_query(before)).scalar()
        if seq is not None:
            query = query.where(table_seq > seq if order == "desc" else table_seq < seq)
    query = query.order_by(table_seq.desc() if order == "desc" else table_seq.asc()).limit(limit + 1)
    rows = conn.execute(query).all()
    return rows[:limit], len(rows) > limit


class VectorStoreRepo:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.pg = not db.is_sqlite
        self._vec = _SqliteVectorReader(db) if db.is_sqlite else None

    async def close(self) -> None:
        if self._vec is not None:
            self._vec.close()

    # -- stores ---------------------------------------------------------------------------------------------

    async def insert_store(self, owner: str, row: dict[str, Any]) -> None:
        await self.db.write_one(lambda conn: conn.execute(insert(vector_stores).values(owner=owner, **row)))

    async def get_store(self, owner: str, store_id: str) -> Any | None:
        return await self.db.read(
            lambda conn: conn.execute(select(vector_stores).where(_s.owner == owner, _s.id == store_id)).first())

    async def list_stores(self, owner: str, *, after: str | None, before: str | None, limit: int,
                          order: str) -> tuple[list[Any], bool]:
        def run(conn: Connection) -> tuple[list[Any], bool]:
            return _page(conn, select(vector_stores).where(_s.owner == owner), _s.seq,
                         lambda i: select(_s.seq).where(_s.owner == owner, _s.id == i), after, before, limit, order)
        return await self.db.read(run)

    async def update_store(self, owner: str, store_id: str, values: dict[str, Any]) -> None:
        await self.db.write_one(lambda conn: conn.execute(
            update(vector_stores).where(_s.owner == owner, _s.id == store_id).values(**values)))

    async def delete_store(self, owner: str, store_id: str) -> bool:
        def run(conn: Connection) -> bool:
            self._delete_chunks(conn, owner, store_id, None)
            conn.execute(delete(vector_store_files).where(_f.owner == owner, _f.vector_store_id == store_id))
            conn.execute(delete(vector_store_file_batches).where(_b.owner == owner, _b.vector_store_id == store_id))
            return conn.execute(delete(vector_stores).where(_s.owner == owner, _s.id == store_id)).rowcount > 0
        return await self.db.write(run)

    async def set_embedding(self, store_id: str, model: str, dimension: int, *, owner: str) -> tuple[str, int]:
        """Record the store's dimension on its first vectors; returns the stored (model, dimension)."""
        def run(conn: Connection) -> tuple[str, int]:
            mine = (_s.owner == owner, _s.id == store_id)
            conn.execute(update(vector_stores).where(*mine, _s.embedding_dimension.is_(None))
                         .values(embedding_dimension=dimension))
            row = conn.execute(select(_s.embedding_model, _s.embedding_dimension).where(*mine)).first()
            return (row[0], row[1]) if row else (model, dimension)
        return await self.db.write(run)

    async def counts(self, owner: str, store_ids: list[str], batch_id: str | None = None
                     ) -> dict[str, tuple[dict[str, int], int]]:
        """Per store: (file_counts, usage_bytes) — for a batch when `batch_id` is given."""
        def run(conn: Connection) -> dict[str, tuple[dict[str, int], int]]:
            query = (select(_f.vector_store_id, _f.status, func.count(), func.coalesce(func.sum(_f.usage_bytes), 0))
                     .where(_f.owner == owner, _f.vector_store_id.in_(store_ids)))
            if batch_id is not None:
                query = query.where(_f.batch_id == batch_id)
            out = {sid: ({s: 0 for s in STATUSES} | {"total": 0}, 0) for sid in store_ids}
            for store_id, status, count, usage in conn.execute(query.group_by(_f.vector_store_id, _f.status)):
                counts, total_usage = out[store_id]
                counts[status] = counts.get(status, 0) + count
                counts["total"] += count
                out[store_id] = (counts, total_usage + (int(usage) if status == "completed" else 0))
            return out
        if not store_ids:
            return {}
        return await self.db.read(run)

    # -- attached files ---------------------------------------------------------------------------------------

    async def attach(self, owner: str, store_id: str, entries: list[dict[str, Any]], *, batch_id: str | None,
                     test_id: str | None) -> None:
        """Attach (or re-attach, which re-ingests) files; each entry: file_id, attributes, chunking_strategy."""
        now = int(time.time())

        def run(conn: Connection) -> None:
            for e in entries:
                values = {"status": "in_progress", "last_error": None, "attributes": e["attributes"],
                          "chunking_strategy": e["chunking_strategy"], "usage_bytes": 0, "batch_id": batch_id,
                          "lease_owner": None, "lease_until": None, "attempts": 0, "test_id": test_id}
                done = conn.execute(update(vector_store_files).where(
                    _f.owner == owner, _f.vector_store_id == store_id, _f.file_id == e["file_id"]).values(**values))
                if done.rowcount == 0:
                    conn.execute(insert(vector_store_files).values(
                        owner=owner, vector_store_id=store_id, file_id=e["file_id"], created_at=now, **values))
            conn.execute(update(vector_stores).where(_s.owner == owner, _s.id == store_id).values(last_active_at=now))
        await self.db.write(run)

    async def get_file(self, owner: str, store_id: str, file_id: str) -> Any | None:
        return await self.db.read(lambda conn: conn.execute(select(vector_store_files).where(
            _f.owner == owner, _f.vector_store_id == store_id, _f.file_id == file_id)).first())

    async def list_files(self, owner: str, store_id: str, *, status: str | None, batch_id: str | None,
                         after: str | None, before: str | None, limit: int, order: str) -> tuple[list[Any], bool]:
        def run(conn: Connection) -> tuple[list[Any], bool]:
            query = select(vector_store_files).where(_f.owner == owner, _f.vector_store_id == store_id)
            if status is not None:
                query = query.where(_f.status == status)
            if batch_id is not None:
                query = query.where(_f.batch_id == batch_id)
            return _page(conn, query, _f.seq, lambda i: select(_f.seq).where(
                _f.owner == owner, _f.vector_store_id == store_id, _f.file_id == i), after, before, limit, order)
        return await self.db.read(run)

    async def update_attributes(self, owner: str, store_id: str, file_id: str, attributes: dict | None) -> None:
        def run(conn: Connection) -> None:
            conn.execute(update(vector_store_files).where(
                _f.owner == owner, _f.vector_store_id == store_id, _f.file_id == file_id).values(attributes=attributes))
            conn.execute(update(vector_store_chunks).where(
                _k.owner == owner, _k.vector_store_id == store_id, _k.file_id == file_id).values(attributes=attributes))
        await self.db.write(run)

    async def detach(self, owner: str, store_id: str, file_id: str) -> bool:
        def run(conn: Connection) -> bool:
            self._delete_chunks(conn, owner, store_id, file_id)
            return conn.execute(delete(vector_store_files).where(
                _f.owner == owner, _f.vector_store_id == store_id, _f.file_id == file_id)).rowcount > 0
        return await self.db.write(run)

    async def stores_of_file(self, owner: str, file_id: str) -> list[str]:
        return await self.db.read(lambda conn: list(conn.execute(select(_f.vector_store_id).where(
            _f.owner == owner, _f.file_id == file_id)).scalars()))

    async def chunk_texts(self, owner: str, store_id: str, file_id: str) -> list[str]:
        return await self.db.read(lambda conn: list(conn.execute(select(_k.text).where(
            _k.owner == owner, _k.vector_store_id == store_id, _k.file_id == file_id).order_by(_k.chunk_index)).scalars()))

    # -- batches ------------------------------------------------------------------------------------------------

    async def insert_batch(self, owner: str, row: dict[str, Any]) -> None:
        await self.db.write_one(lambda conn: conn.execute(insert(vector_store_file_batches).values(owner=owner, **row)))

    async def get_batch(self, owner: str, store_id: str, batch_id: str) -> Any | None:
        return await self.db.read(lambda conn: conn.execute(select(vector_store_file_batches).where(
            _b.owner == owner, _b.vector_store_id == store_id, _b.id == batch_id)).first())

    async def cancel_batch(self, owner: str, store_id: str, batch_id: str) -> None:
        def run(conn: Connection) -> None:
            conn.execute(update(vector_store_file_batches).where(
                _b.owner == owner, _b.vector_store_id == store_id, _b.id == batch_id).values(cancelled=1))
            conn.execute(update(vector_store_files).where(
                _f.owner == owner, _f.batch_id == batch_id, _f.status == "in_progress").values(
                status="cancelled", lease_owner=None, lease_until=None))
        await self.db.write(run)

    # -- the ingestion queue ---------------------------------------------------------------------------------

    async def claim(self, worker: str, lease_seconds: float) -> Any | None:
        """Take one unclaimed (or lease-expired) in-progress attachment, or None."""
        now = time.time()

        free = and_(_f.status == "in_progress", or_(_f.lease_until.is_(None), _f.lease_until < now))

        def run(conn: Connection) -> Any | None:
            # The UPDATE re-checks the row is still free: on SQLite another process's writer may have taken
            # it between this SELECT and our write (PostgreSQL's SKIP LOCKED already rules that out).
            for _ in range(5):
                query = select(vector_store_files).where(free).order_by(_f.seq).limit(1)
                if self.pg:
                    query = query.with_for_update(skip_locked=True)
                row = conn.execute(query).first()
                if row is None:
                    return None
                taken = conn.execute(update(vector_store_files).where(_f.seq == row.seq, free).values(
                    lease_owner=worker, lease_until=now + lease_seconds, attempts=_f.attempts + 1)).rowcount
                if taken:
                    return row
            return None
        return await self.db.write(run)

    async def renew(self, worker: str, store_id: str, file_id: str, lease_seconds: float, *, owner: str) -> bool:
        """Extend the lease; False when the work is no longer ours (cancelled, detached, re-queued)."""
        def run(conn: Connection) -> bool:
            return conn.execute(update(vector_store_files).where(
                _f.owner == owner, _f.vector_store_id == store_id, _f.file_id == file_id, _f.lease_owner == worker,
                _f.status == "in_progress").values(lease_until=time.time() + lease_seconds)).rowcount > 0
        return await self.db.write_one(run)

    async def release_all(self, worker_prefix: str | None = None) -> int:
        """Forget every lease (SQLite start-up: one server process per database file, so any lease is stale)."""
        def run(conn: Connection) -> int:
            return conn.execute(update(vector_store_files).where(
                _f.status == "in_progress", _f.lease_owner.is_not(None)).values(
                lease_owner=None, lease_until=None)).rowcount
        return await self.db.write_one(run)

    async def finish(self, worker: str, store_id: str, file_id: str, status: str, last_error: dict | None,
                     usage_bytes: int, *, owner: str) -> bool:
        now = int(time.time())

        def run(conn: Connection) -> bool:
            done = conn.execute(update(vector_store_files).where(
                _f.owner == owner, _f.vector_store_id == store_id, _f.file_id == file_id, _f.lease_owner == worker,
                _f.status == "in_progress").values(status=status, last_error=last_error, usage_bytes=usage_bytes,
                                                    lease_owner=None, lease_until=None)).rowcount > 0
            if done:
                conn.execute(update(vector_stores).where(_s.owner == owner, _s.id == store_id)
                             .values(last_active_at=now))
            return done
        return await self.db.write(run)

    # -- chunks --------------------------------------------------------------------------------------------------

    async def delete_chunks(self, owner: str, store_id: str, file_id: str) -> None:
        await self.db.write(lambda conn: self._delete_chunks(conn, owner, store_id, file_id))

    def _delete_chunks(self, conn: Connection, owner: str, store_id: str, file_id: str | None) -> None:
        where = [_k.owner == owner, _k.vector_store_id == store_id]
        if file_id is not None:
            where.append(_k.file_id == file_id)
        if not self.pg:
            seqs = select(_k.seq).where(*where)
            conn.execute(text("DELETE FROM vector_store_chunks_fts WHERE rowid IN (" +
                              str(seqs.compile(compile_kwargs={"literal_binds": True})) + ")"))
        conn.execute(delete(vector_store_chunks).where(*where))

    async def insert_chunks(self, owner: str, store_id: str, file_id: str, attributes: dict | None,
                            chunks: list[tuple[int, str, int, list[float]]]) -> None:
        """One batch of `(index, text, token_count, vector)` in one transaction (callers keep batches modest,
        so the SQLite writer thread interleaves response saves between them)."""
        if self.pg:
            attrs = json.dumps(attributes) if attributes is not None else None
            rows = [{"owner": owner, "vs": store_id, "file_id": file_id, "idx": i, "text": t, "tokens": n,
                     "attrs": attrs, "emb": _pg_vector(v)} for i, t, n, v in chunks]
            await self.db.write(lambda conn: conn.execute(text(
                "INSERT INTO vector_store_chunks (owner, vector_store_id, file_id, chunk_index, text, token_count, "
                "attributes, embedding) VALUES (:owner, :vs, :file_id, :idx, :text, :tokens, CAST(:attrs AS jsonb), "
                "CAST(:emb AS vector))"), rows))
            return
        rows = [{"owner": owner, "vector_store_id": store_id, "file_id": file_id, "chunk_index": i, "text": t,
                 "token_count": n, "attributes": attributes, "embedding": pack_vector(v)} for i, t, n, v in chunks]

        def run(conn: Connection) -> None:
            before = conn.execute(select(func.coalesce(func.max(_k.seq), 0))).scalar()
            conn.execute(insert(vector_store_chunks), rows)
            conn.execute(text("INSERT INTO vector_store_chunks_fts (rowid, text) SELECT seq, text FROM "
                              "vector_store_chunks WHERE seq > :before"), {"before": before})
        await self.db.write(run)

    # -- search ----------------------------------------------------------------------------------------------------

    async def vector_search(self, owner: str, store_id: str, vector: list[float], filters: dict | None,
                            k: int) -> list[dict[str, Any]]:
        dialect = "postgresql" if self.pg else "sqlite"
        where, params = compile_filters(filters, dialect)
        params |= {"owner": owner, "vs": store_id, "k": k}
        if self.pg:
            params["q"] = _pg_vector(vector)
            # the query vector is parsed once (a CTE), not once per row as a cast in a generic plan would be
            sql = ("WITH q AS MATERIALIZED (SELECT CAST(:q AS vector) AS v) "
                   "SELECT c.seq, c.file_id, c.text, c.attributes, 1 - (c.embedding <=> q.v) AS score "
                   "FROM vector_store_chunks c, q WHERE c.owner = :owner AND c.vector_store_id = :vs AND " + where +
                   " ORDER BY c.embedding <=> q.v LIMIT :k")
            rows = await self.db.read(lambda conn: conn.execute(text(sql), params).all())
        else:
            params["q"] = pack_vector(vector)
            sql = ("SELECT c.seq, c.file_id, c.text, c.attributes, 1 - vec_distance_cosine(c.embedding, :q) AS score "
                   "FROM vector_store_chunks c WHERE c.owner = :owner AND c.vector_store_id = :vs AND " + where +
                   " ORDER BY score DESC LIMIT :k")
            assert self._vec is not None
            rows = await self._vec.query(sql, params)
        # cosine similarity, clamped to the [0, 1] range scores have
        return [{"seq": r[0], "file_id": r[1], "text": r[2], "attributes": _json(r[3]),
                 "score": min(1.0, max(0.0, float(r[4]) if r[4] is not None else 0.0))} for r in rows]

    async def keyword_search(self, owner: str, store_id: str, query: str, filters: dict | None,
                             k: int) -> list[dict[str, Any]]:
        words = re.findall(r"\w+", query.lower())
        words = [w for w in words if w not in STOPWORDS] or words  # "a", "the"... would match every chunk
        if not words:
            return []
        dialect = "postgresql" if self.pg else "sqlite"
        where, params = compile_filters(filters, dialect)
        params |= {"owner": owner, "vs": store_id, "k": k}
        if self.pg:
            params["tsq"] = " | ".join(words)
            sql = ("SELECT c.seq, c.file_id, c.text, c.attributes, ts_rank_cd(c.tsv, q, 32) AS score "
                   "FROM vector_store_chunks c, to_tsquery('english', :tsq) q WHERE c.tsv @@ q AND "
                   "c.owner = :owner AND c.vector_store_id = :vs AND " + where + " ORDER BY score DESC LIMIT :k")
            rows = await self.db.read(lambda conn: conn.execute(text(sql), params).all())
            return [{"seq": r[0], "file_id": r[1], "text": r[2], "attributes": _json(r[3]), "score": float(r[4])}
                    for r in rows]
        params["match"] = " OR ".join(f'"{w}"' for w in words)
        sql = ("SELECT c.seq, c.file_id, c.text, c.attributes, bm25(vector_store_chunks_fts) AS rank "
               "FROM vector_store_chunks_fts JOIN vector_store_chunks c ON c.seq = vector_store_chunks_fts.rowid "
               "WHERE vector_store_chunks_fts MATCH :match AND c.owner = :owner AND c.vector_store_id = :vs AND "
               + where + " ORDER BY rank LIMIT :k")
        rows = await self.db.read(lambda conn: conn.execute(text(sql), params).all())
        # bm25 is negative, lower is better: x = -bm25 > 0 maps to x / (1 + x) in (0, 1)
        return [{"seq": r[0], "file_id": r[1], "text": r[2], "attributes": _json(r[3]),
                 "score": (-r[4]) / (1 - r[4]) if r[4] < 0 else 0.0} for r in rows]


# -- sqlite-vec reads -----------------------------------------------------------------------------------------


def _cosine_distance(a: bytes, b: bytes) -> float | None:
    if a is None or b is None or len(a) != len(b):
        return None
    n = len(a) // 4
    x, y = struct.unpack(f"<{n}f", a), struct.unpack(f"<{n}f", b)
    dot = sum(p * q for p, q in zip(x, y, strict=True))
    nx = sum(p * p for p in x) ** 0.5
    ny = sum(q * q for q in y) ** 0.5
    return 1.0 - dot / (nx * ny) if nx and ny else 1.0


def _load_sqlite_vec(conn: Any) -> bool:
    try:
        import sqlite_vec
    except ImportError:
        return False
    if not hasattr(conn, "enable_load_extension"):
        return False
    try:
        conn.enable_load_extension(True)
        sqlite_vec.load(conn)
        conn.enable_load_extension(False)
        return True
    except Exception as exc:  # an extension that does not load: fall back
        log.warning("sqlite-vec did not load (%s); vector search uses a Python cosine function", exc)
        return False


MMAP_BYTES = 1 << 30


class _SqliteVectorReader:
    """Read-only connections with `vec_distance_cosine` (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.path = db.url.database
        self._module: Any = None
        self.native = False
        import sqlite3

        probe = sqlite3.connect(":memory:")
        if _load_sqlite_vec(probe):
            self._module, self.native = sqlite3, True
        else:
            try:
                import pysqlite3.dbapi2 as pysqlite3  # type: ignore[import-not-found]

                probe2 = pysqlite3.connect(":memory:")
                if _load_sqlite_vec(probe2):
                    self._module, self.native = pysqlite3, True
                probe2.close()
            except ImportError:
                pass
        probe.close()
        memory = not self.path or self.path == ":memory:" or "mode=memory" in self.path
        self._separate = self.native and not memory
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="respond-sqlite-vec") if self._separate else None
        self._connections: list[Any] = []

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._module.connect(self.path, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA query_only=ON")
            # exact scans read every vector of a store: memory-mapped pages spare a read() per page
            conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            _load_sqlite_vec(conn)
            self._local.conn = conn
            self._connections.append(conn)
        return conn

    def _run(self, sql: str, params: dict[str, Any]) -> list[Any]:
        return self._connection().execute(sql, params).fetchall()

    async def query(self, sql: str, params: dict[str, Any]) -> list[Any]:
        if self._separate:
            return await asyncio.get_running_loop().run_in_executor(self._pool, self._run, sql, params)

        def run(conn: Connection) -> list[Any]:
            raw = conn.connection.driver_connection
            if not getattr(raw, "_respond_vec", False):
                if not _load_sqlite_vec(raw):
                    raw.create_function("vec_distance_cosine", 2, _cosine_distance, deterministic=True)
                raw._respond_vec = True  # type: ignore[attr-defined]
            return list(raw.execute(sql, params).fetchall())
        try:
            return await self.db.read(run)
        except AttributeError:
            return await self.db.read(lambda conn: _register_and_run(conn, sql, params))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        for conn in self._connections:
            try:
                conn.close()
            except Exception:
                pass


def _register_and_run(conn: Connection, sql: str, params: dict[str, Any]) -> list[Any]:
    raw = conn.connection.driver_connection
    raw.create_function("vec_distance_cosine", 2, _cosine_distance, deterministic=True)
    return list(raw.execute(sql, params).fetchall())


__all__ = ["VectorStoreRepo", "pack_vector", "and_"]
