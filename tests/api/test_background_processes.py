"""Background responses across real `respond serve` processes: kill -9 and restart, two processes on one
PostgreSQL, `--workers N`.

Each server is a subprocess (`python -m respond.cli serve`) on a temp data dir (SQLite) or a fresh PostgreSQL
database, with short leases (1 s) and polls (0.1 s) so recovery is quick; its upstream is the scripted one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

import respond
from tests.api.test_background import resume, wait_status
from tests.support.server import free_port, wait_until_serving
from tests.support.upstream import delay, reply

MODEL = "up/scripted"
SRC = str(Path(respond.__file__).resolve().parents[1])


class Proc:
    def __init__(self, tmp: Path, upstream: Any, database_url: str | None, name: str, workers: int = 1,
                 background: dict[str, Any] | None = None) -> None:
        self.port = free_port()
        data = tmp / "data"
        config = {"data_dir": str(data), "default_model": MODEL,
                  "providers": [{"id": "up", "type": "openai", "base_url": upstream.base_url, "api_key": "k",
                                 "models": ["scripted"], "timeout": 60}],
                  "background": {"workers": 2, "lease_seconds": 1, "poll_interval": 0.1, **(background or {})}}
        if database_url:
            config["database_url"] = database_url
        path = tmp / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        self.log = tmp / f"{name}.log"
        env = {**os.environ, "PYTHONPATH": SRC}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "respond.cli", "serve", "--config", str(path),
                                          "--port", str(self.port), "--workers", str(workers)],
                                         env=env, stdout=log, stderr=log)
        wait_until_serving(self.url, self.proc, log=lambda: self.log.read_text()[-3000:])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key="none", max_retries=0)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def procs(tmp_path: Path, upstream: Any):
    started: list[Proc] = []

    def start(database_url: str | None, name: str = "a", **kw: Any) -> Proc:
        proc = Proc(tmp_path, upstream, database_url, name, **kw)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> Any:
    if request.param == "sqlite":
        yield None  # the server's default: <data_dir>/respond.db
        return
    cluster = request.getfixturevalue("pg_cluster")
    name = cluster.create_database("bg")
    yield cluster.url(name)
    cluster.drop_database(name)


def by_input(slow: float) -> Any:
    """A scripted turn decided by the request: input "slow" waits `slow` s (killed meanwhile), else a reply."""
    def turn(body: dict[str, Any]) -> Any:
        last = body["messages"][-1]["content"]
        text = last if isinstance(last, str) else str(last)
        return delay(slow, reply("never")) if "slow" in text else reply(f"done: {text}")
    return turn


def test_kill9_then_restart_recovers_every_seen_id(procs, db_url, upstream) -> None:
    upstream.script(*[by_input(60)] * 8)
    a = procs(db_url, background={"workers": 1})
    client = a.client()
    running = client.responses.create(model=MODEL, input="slow bg", background=True)
    assert wait_status(client, running.id, ("in_progress",)).status == "in_progress"
    queued = client.responses.create(model=MODEL, input="queued bg", background=True)  # the 1 worker is busy
    assert client.responses.retrieve(queued.id).status == "queued"
    seen: dict[str, str] = {}

    def foreground() -> None:  # a foreground stream whose response.created the client has seen
        try:
            with httpx.stream("POST", f"{a.base_url}/responses", timeout=60,
                              json={"model": MODEL, "input": "slow fg", "stream": True}) as r:
                for line in r.iter_lines():
                    if line.startswith("data: ") and "response.created" in line:
                        seen["id"] = httpx.Response(200, content=line[6:]).json()["response"]["id"]
        except httpx.HTTPError:
            pass

    thread = threading.Thread(target=foreground)
    thread.start()
    deadline = time.monotonic() + 10
    while "id" not in seen and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "id" in seen
    a.kill9()
    thread.join(10)

    b = procs(db_url, name="b", background={"workers": 1})
    client = b.client()
    done = wait_status(client, queued.id, ("completed", "failed"))
    assert done.status == "completed" and done.output_text == "done: queued bg"  # nothing queued is lost
    for response_id in (running.id, seen["id"]):  # ended failed once their lease ran out, not 404
        failed = wait_status(client, response_id, ("failed",))
        assert failed.status == "failed", response_id
        assert failed.error is not None and "stopped" in failed.error.message
    events = resume(b.base_url, running.id, starting_after=1)  # the stream of the dead run ends too
    assert events[-1]["type"] == "response.failed"
    assert events[0]["sequence_number"] == 2


def test_two_processes_on_one_postgresql_behave_as_one(procs, pg_cluster, upstream) -> None:
    name = pg_cluster.create_database("two")
    try:
        url = pg_cluster.url(name)
        upstream.script(reply(*[f"w{i} " for i in range(200)], chunk_delay=0.05))
        a = procs(url, name="a")
        b = procs(url, name="b", background={"workers": 0})  # b runs nothing: a does the work
        ca, cb = a.client(), b.client()
        created = ca.responses.create(model=MODEL, input="long", background=True)
        assert wait_status(cb, created.id, ("in_progress",)).status == "in_progress"  # GET from b

        events: list[dict[str, Any]] = []
        with httpx.stream("GET", f"{b.base_url}/responses/{created.id}", timeout=30,
                          params={"stream": "true", "starting_after": 0}) as r:  # b follows a's run live
            for line in r.iter_lines():
                if not line.startswith("data: "):
                    continue
                events.append(json.loads(line[6:]))
                if len(events) == 8:  # some text was produced: b cancels; a notices the flag and stops
                    cancelled = cb.responses.cancel(created.id)
        assert cancelled.status == "cancelled"
        assert 0 < len(cancelled.output_text) < len("".join(f"w{i} " for i in range(200)))
        assert events[0]["sequence_number"] == 1
        assert any(e["type"] == "response.output_text.delta" for e in events)
        assert ca.responses.retrieve(created.id).status == "cancelled"
        assert cb.responses.cancel(created.id).status == "cancelled"  # idempotent, from either

        # a chain continued on the other process
        upstream.script(reply("first"), reply("second"))
        first = ca.responses.create(model=MODEL, input="one")
        second = cb.responses.create(model=MODEL, input="two", previous_response_id=first.id)
        assert second.output_text == "second"
        assert [m["content"] for m in upstream.chat_bodies[-1]["messages"]] == ["one", "first", "two"]
    finally:
        pg_cluster.drop_database(name)


def test_serve_with_several_workers(procs, pg_cluster, upstream) -> None:
    name = pg_cluster.create_database("workers")
    try:
        a = procs(pg_cluster.url(name), workers=2)
        client = a.client()
        created = [client.responses.create(model=MODEL, input=f"n{i}", background=True) for i in range(6)]
        for response in created:
            done = wait_status(client, response.id, ("completed", "failed"))
            assert done.status == "completed", done.error
        pids = {line for line in a.log.read_text().splitlines() if "Started server process" in line}
        assert len(pids) == 2
    finally:
        pg_cluster.drop_database(name)
