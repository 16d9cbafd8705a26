"""The embedded model never takes the server down: its worker processes crash, hang and get killed here, over
HTTP, on the real server with the real embedded model, and the server answers each fault with a `failed`
response (or a 502 envelope) and goes on serving.

The worker is killed with real signals: SIGILL is what a llama.cpp build using a CPU feature this CPU lacks
(AMX, AVX-512) dies of; SIGKILL is the OOM killer; SIGSTOP makes a worker that is alive but silent.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import respond
from respond.config import ProviderConfig
from tests.api.wire import create, parse_frames, retrieve
from tests.inference.test_local_worker import alive
from tests.support.conformance import validate_error_envelope, validate_stream
from tests.support.server import RunningServer, make_config, start_server

MODEL = "local/smollm2-135m"
WORKER_TIMEOUT = 3
LONG = {"model": MODEL, "input": "Write a long essay about the history of Rome.", "temperature": 0,
        "max_output_tokens": 400}


def local_config() -> ProviderConfig:
    return ProviderConfig(id="local", type="local", models=["smollm2-135m"], embedding_models=["all-minilm-l6-v2"],
                          n_ctx=2048, worker_timeout=WORKER_TIMEOUT)


@pytest.fixture(scope="module")
def local_server() -> Iterator[RunningServer]:
    with tempfile.TemporaryDirectory(prefix="respond-test-workers-") as tmp:
        running = start_server(make_config(Path(tmp), [local_config()]))
        yield running
        pids = [p for p in workers(running) if p]
        running.stop()
        deadline = time.monotonic() + 10
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(p) for p in pids), "a worker outlived the server"


def provider(server: RunningServer) -> Any:
    return server.services.router.providers["local"]


def workers(server: RunningServer) -> tuple[int | None, int | None]:
    local = provider(server)
    return local.chat_worker.pid, local.embed_worker.pid


def wait_until(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def stream_and(server: RunningServer, body: dict[str, Any], on_first_delta: Any) -> list[dict[str, Any]]:
    """Stream a response over raw HTTP, call `on_first_delta()` when the first text delta arrived, read the
    stream to its end; returns its events."""
    raw = b""
    fired = False
    with httpx.stream("POST", f"{server.base_url}/responses", json={**body, "stream": True}, timeout=60) as r:
        assert r.status_code == 200
        for data in r.iter_raw():
            raw += data
            if not fired and b"event: response.output_text.delta" in raw:
                fired = True
                on_first_delta()
    assert fired
    return parse_frames(raw.decode())


def assert_worker_failure(response: dict[str, Any], *words: str) -> None:
    assert response["status"] == "failed"
    error = response["error"]
    assert error["code"] == "server_error"
    assert "embedded model's local chat worker died" in error["message"], error
    for word in words:
        assert word in error["message"], error


def assert_serving(server: RunningServer) -> None:
    client = server.client()
    r = create(client, model=MODEL, input="Name a color.", temperature=0, max_output_tokens=16)
    assert r.status in ("completed", "incomplete") and r.output_text.strip()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGILL])
def test_streamed_response_fails_when_the_worker_dies(local_server: RunningServer, sig: signal.Signals) -> None:
    assert_serving(local_server)  # the worker is up and its model loaded
    pid = workers(local_server)[0]
    events = stream_and(local_server, LONG, lambda: os.kill(pid, sig))
    final = validate_stream(events)
    assert events[-1]["type"] == "response.failed"
    assert_worker_failure(final, f"signal {sig.name}")
    assert final["output"] and final["output"][0]["content"][0]["text"]  # what came before the crash is kept
    stored = retrieve(local_server.client(), final["id"])
    assert stored.status == "failed" and stored.error.code == "server_error" and "worker died" in stored.error.message
    wait_until(lambda: not alive(pid))
    assert_serving(local_server)  # the server kept serving: a new worker took over
    assert workers(local_server)[0] not in (None, pid)


def test_non_streamed_response_fails_when_the_worker_dies(local_server: RunningServer) -> None:
    assert_serving(local_server)
    local = provider(local_server)
    pid = local.chat_worker.pid

    def kill_when_busy() -> None:
        wait_until(lambda: local.chat_worker._current is not None and local.chat_worker._current.calls)
        time.sleep(0.3)
        os.kill(pid, signal.SIGILL)

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    response = create(local_server.client(), **LONG)
    killer.join()
    assert response.status == "failed" and response.error.code == "server_error"
    assert "chat worker died" in response.error.message and "SIGILL" in response.error.message
    assert retrieve(local_server.client(), response.id).status == "failed"
    assert_serving(local_server)


def test_hung_worker_hits_the_inactivity_timeout(local_server: RunningServer) -> None:
    assert_serving(local_server)
    pid = workers(local_server)[0]
    started = time.monotonic()
    events = stream_and(local_server, LONG, lambda: os.kill(pid, signal.SIGSTOP))
    final = validate_stream(events)
    assert time.monotonic() - started >= WORKER_TIMEOUT
    assert_worker_failure(final, f"worker_timeout {WORKER_TIMEOUT}s")
    wait_until(lambda: not alive(pid))
    assert_serving(local_server)


def test_embeddings_worker_crash_is_a_clean_error(local_server: RunningServer) -> None:
    client = local_server.client()
    first = client.embeddings.create(model="local/all-minilm-l6-v2", input="warm up")
    local = provider(local_server)
    pid = local.embed_worker.pid
    texts = [f"Sentence number {i} is about the weather in a city by the sea." for i in range(1500)]

    def kill_when_busy() -> None:
        wait_until(lambda: local.embed_worker._current is not None and local.embed_worker._current.calls)
        time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    response = httpx.post(f"{local_server.base_url}/embeddings", timeout=120,
                          json={"model": "local/all-minilm-l6-v2", "input": texts})
    killer.join()
    validate_error_envelope(response.json(), response.status_code, code="local_worker_died")
    assert response.status_code == 502 and "embeddings worker died" in response.json()["error"]["message"]
    again = client.embeddings.create(model="local/all-minilm-l6-v2", input="warm up")
    assert again.data[0].embedding == first.data[0].embedding
    assert local.embed_worker.pid not in (None, pid)


def test_client_disconnect_stops_generation(local_server: RunningServer) -> None:
    assert_serving(local_server)
    local = provider(local_server)
    before, starts = local.completion_tokens_total, local.chat_worker.starts
    response_id = None
    with httpx.stream("POST", f"{local_server.base_url}/responses", json={**LONG, "stream": True},
                      timeout=60) as r:
        for line in r.iter_lines():
            if response_id is None and line.startswith("data: ") and '"response.created"' in line:
                response_id = line.split('"id":"', 1)[1].split('"', 1)[0]
            if "response.output_text.delta" in line:
                break  # leave: closes the connection
    client = local_server.client()
    wait_until(lambda: client.responses.retrieve(response_id).status == "cancelled")
    r = create(client, model=MODEL, input="Name a color.", temperature=0, max_output_tokens=16)
    # the worker serves requests in order, so the cancelled generation had ended before this one ran
    assert local.completion_tokens_total - before - r.usage.output_tokens < 50  # not the 400 asked for
    assert local.chat_worker.starts == starts  # stopped by a `cancel` frame: the worker was not killed


def test_library_client_survives_a_worker_kill(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data", [local_config()])
    with respond.client(config) as client:
        first = client.responses.create(model=MODEL, input="Name a color.", temperature=0, max_output_tokens=16)
        assert first.status in ("completed", "incomplete")
        local = client._client._transport.runner.app.state.services.router.providers["local"]
        pid = local.chat_worker.pid
        assert pid != os.getpid()
        killed = False
        with client.responses.create(stream=True, **LONG) as stream:
            for event in stream:
                if event.type == "response.output_text.delta" and not killed:
                    os.kill(pid, signal.SIGILL)
                    killed = True
                last = event
        assert last.type == "response.failed" and "SIGILL" in last.response.error.message
        again = client.responses.create(model=MODEL, input="Name a color.", temperature=0, max_output_tokens=16)
        assert again.output_text == first.output_text
        new_pid = local.chat_worker.pid
    wait_until(lambda: not alive(pid) and not alive(new_pid), timeout=10)  # closing the client stopped it

