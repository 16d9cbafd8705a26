"""Retrieval benchmark: ingestion throughput with the embedded model, search latency at 10k / 100k chunks.

    PYTHONPATH=src python bench/retrieval.py                       # everything, SQLite and PostgreSQL
    PYTHONPATH=src python bench/retrieval.py --sizes 10000 --backends sqlite --queries 100
    PYTHONPATH=src python bench/retrieval.py --skip-ingest

1. Ingestion (SQLite): a text file is uploaded into a store on a real `Services` (the `local` provider:
   all-MiniLM-L6-v2) and indexed by the background worker: parse, chunk (static 200/0 tokens), embed,
   write. Reported: chunks/s from attach to `completed`.
2. Search: N chunks with synthetic unit vectors (384 dims, like all-MiniLM) and random words are written
   straight through the repository (one store; attribute `group` = i % 100, so a filter on one group
   matches 1% of the chunks). Then `--queries` searches each of: vector (k=10), vector with the 1% filter,
   keyword, keyword with the filter, hybrid (both + reciprocal rank fusion, what the API does by default),
   hybrid with the filter. Reported: p50 / p99 ms, and for the filtered searches the number of hits (10
   means the filter ran inside the query, not after a top-k cut).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from respond.config import Config, ProviderConfig, RetrievalConfig  # noqa: E402
from respond.storage.engine import Database  # noqa: E402
from respond.storage.files_tables import DEFAULT_OWNER  # noqa: E402
from respond.storage.vector_stores_repo import VectorStoreRepo  # noqa: E402

DIM = 384
WORDS = [f"w{i}" for i in range(5000)]


def unit_vector(rng: random.Random) -> list[float]:
    v = [rng.gauss(0, 1) for _ in range(DIM)]
    norm = sum(x * x for x in v) ** 0.5
    return [x / norm for x in v]


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def ingest_throughput(chunks_wanted: int) -> None:
    from respond.files.upload import Upload
    from respond.services import Services

    with tempfile.TemporaryDirectory() as tmp:
        config = Config(data_dir=tmp, providers=[ProviderConfig(id="local", type="local", models=[],
                                                                embedding_models=["all-minilm-l6-v2"])],
                        retrieval=RetrievalConfig())
        services = await Services.start(config)
        try:
            rng = random.Random(1)
            text = " ".join(rng.choice(["the", "river", "stone", "light", "market", "garden", "engine", "cloud",
                                        "paper", "signal", "harbor", "winter"]) for _ in range(chunks_wanted * 150))
            file_id = services.files.new_upload_key()
            writer = services.files.blobs.writer(file_id)
            await writer.write(text.encode())
            await services.files.register(DEFAULT_OWNER, file_id, Upload(
                fields={"purpose": "assistants"}, filename="bench.txt", writer=writer))
            # warm the model (its load is a one-off, not ingestion)
            await services.vector_stores.embedder.embed("local/all-minilm-l6-v2", ["warm up"])
            start = time.perf_counter()
            store = await services.vector_stores.create(DEFAULT_OWNER, {
                "name": "bench", "file_ids": [file_id],
                "chunking_strategy": {"type": "static", "static": {"max_chunk_size_tokens": 200,
                                                                   "chunk_overlap_tokens": 0}}})
            while (await services.vector_stores.get(DEFAULT_OWNER, store["id"]))["file_counts"]["in_progress"]:
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - start
            done = await services.vector_stores.get(DEFAULT_OWNER, store["id"])
            n = len(await services.vector_stores.repo.chunk_texts(DEFAULT_OWNER, store["id"], file_id))
            print(f"ingestion (SQLite, local/all-minilm-l6-v2, 200-token chunks): {n} chunks in {elapsed:.1f} s "
                  f"= {n / elapsed:.1f} chunks/s ({done['file_counts']})")
        finally:
            await services.close()


async def fill(repo: VectorStoreRepo, store_id: str, n: int, rng: random.Random) -> None:
    from sqlalchemy import insert

    from respond.storage.files_tables import vector_stores

    await repo.db.write(lambda conn: conn.execute(insert(vector_stores).values(
        id=store_id, owner=DEFAULT_OWNER, created_at=0, embedding_model="bench", embedding_dimension=DIM)))
    batch = 1000
    for start in range(0, n, batch):
        rows = []
        for i in range(start, min(n, start + batch)):
            text = " ".join(rng.choice(WORDS) for _ in range(60))
            rows.append((i, text, 60, unit_vector(rng)))
        # one file per 1000 chunks; attributes per file (as in the API): group = file % 100 ... plus i % 100
        group = (start // batch) % 100
        await repo.insert_chunks(DEFAULT_OWNER, store_id, f"file-{start // batch}", {"group": group}, rows)


async def search_latency(url: str, label: str, n: int, queries: int) -> None:
    from respond.vector_stores.service import VectorStoreService

    db = Database(url)
    await db.upgrade()
    repo = VectorStoreRepo(db)
    rng = random.Random(7)
    store_id = f"vs_bench_{n}"
    t0 = time.perf_counter()
    await fill(repo, store_id, n, rng)
    print(f"[{label} n={n}] filled in {time.perf_counter() - t0:.1f} s")
    store = type("S", (), {"id": store_id, "embedding_dimension": DIM, "embedding_model": "bench"})()

    class FixedEmbedder:
        async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
            return [unit_vector(rng) for _ in texts]

    service = VectorStoreService.__new__(VectorStoreService)
    service.repo, service.embedder = repo, FixedEmbedder()
    flt = {"type": "eq", "key": "group", "value": 7}  # 1 file of every 100 -> 1% of the chunks

    async def run(name: str, fn) -> None:
        samples, hits = [], []
        for _ in range(queries):
            start = time.perf_counter()
            result = await fn()
            samples.append((time.perf_counter() - start) * 1000)
            hits.append(len(result))
        print(f"[{label} n={n}] {name:22s} p50 {percentile(samples, 50):8.1f} ms   p99 {percentile(samples, 99):8.1f} ms"
              f"   hits {min(hits)}-{max(hits)}")

    def words() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(3))

    await run("vector", lambda: repo.vector_search(DEFAULT_OWNER, store_id, unit_vector(rng), None, 10))
    await run("vector + 1% filter", lambda: repo.vector_search(DEFAULT_OWNER, store_id, unit_vector(rng), flt, 10))
    await run("keyword", lambda: repo.keyword_search(DEFAULT_OWNER, store_id, words(), None, 10))
    await run("keyword + 1% filter", lambda: repo.keyword_search(DEFAULT_OWNER, store_id, words(), flt, 10))
    await run("hybrid", lambda: service.search_rows(DEFAULT_OWNER, store, [words()], None, 10, 1.0, 1.0))
    await run("hybrid + 1% filter", lambda: service.search_rows(DEFAULT_OWNER, store, [words()], flt, 10, 1.0, 1.0))
    await repo.close()
    await db.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ingest-chunks", type=int, default=500)
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()
    if not args.skip_ingest:
        await ingest_throughput(args.ingest_chunks)
    sizes = [int(s) for s in args.sizes.split(",")]
    cluster = None
    try:
        for backend in args.backends.split(","):
            for n in sizes:
                if backend == "sqlite":
                    with tempfile.TemporaryDirectory() as tmp:
                        await search_latency(f"sqlite:///{tmp}/bench.db", "sqlite", n, args.queries)
                else:
                    if cluster is None:
                        from tests.support.pg import start_cluster
                        cluster = start_cluster()
                    name = cluster.create_database("bench")
                    await search_latency(cluster.url(name), "postgresql", n, args.queries)
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    asyncio.run(main())
