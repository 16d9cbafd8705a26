"""Measure the CPU and wall time of ResponseStore.save on SQLite and PostgreSQL (not collected by pytest).

    .venv/bin/python -m tests.storage.bench_saves [N]

Every thread counts (aiosqlite runs SQLite in a worker thread), the PostgreSQL server's processes do not.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from respond.storage import Database, ResponseStore
from respond.storage.tables import DEFAULT_OWNER as OWNER
from tests.support.pg import start_cluster


def sample(k: int) -> tuple[dict, list[dict], list[dict]]:
    rid = f"resp_{k:048x}"
    response = {
        "id": rid, "object": "response", "created_at": 1_700_000_000 + k, "status": "completed",
        "model": "local/smollm2-135m", "previous_response_id": None, "instructions": None,
        "output": [{"type": "message", "id": f"msg_{k:048x}", "role": "assistant", "status": "completed",
                    "content": [{"type": "output_text", "text": "Hello! How can I help you today?",
                                 "annotations": []}]}],
        "parallel_tool_calls": True, "temperature": 1.0, "tool_choice": "auto", "tools": [], "top_p": 1.0,
        "usage": {"input_tokens": 12, "output_tokens": 9, "total_tokens": 21}, "metadata": {},
    }
    inputs = [{"type": "message", "id": f"msg_in_{k:044x}", "role": "user",
               "content": [{"type": "input_text", "text": "Say hello."}]}]
    return response, inputs, inputs


async def bench(url: str, n: int) -> tuple[float, float]:
    db = Database(url)
    await db.create_all()
    store = ResponseStore(db)
    payloads = [sample(k) for k in range(n)]
    for k in range(20):  # warm the pool and the statement cache
        await store.save(*sample(n + k), owner=OWNER)
    cpu, wall = time.process_time(), time.perf_counter()
    for payload in payloads:
        await store.save(*payload, owner=OWNER)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert len((await store.list(owner=OWNER, limit=n + 100)).data) == n + 20
    await db.close()
    return cpu, wall


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        cpu, wall = asyncio.run(bench(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", n))
        print(f"sqlite:     {n} saves  cpu {cpu * 1000:.0f} ms ({cpu / n * 1e6:.0f} us/save)  "
              f"wall {wall * 1000:.0f} ms")
    cluster = start_cluster()
    try:
        cpu, wall = asyncio.run(bench(cluster.url(cluster.create_database("bench")), n))
        print(f"postgresql: {n} saves  cpu {cpu * 1000:.0f} ms ({cpu / n * 1e6:.0f} us/save)  "
              f"wall {wall * 1000:.0f} ms")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
