"""The real Respond server on a random loopback port, for tests that talk to it with the `openai` SDK.

Fixtures:
- `make_server(**config)`: start a server with the given Config fields; stopped at the end of the test.
- `server`: a session-wide server on SQLite whose providers are the embedded `local` one and `up`, the
  scripted upstream (`tests.support.upstream`), so `model="up/scripted"` reaches the script.
- `pg_server`: the same on PostgreSQL. `any_server` is parametrized over both.
- `client` / `async_client`: `openai.OpenAI` / `AsyncOpenAI` for `server`, sending the test id header so
  recordings and ids are per test.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import uvicorn

from respond.app import create_app
from respond.config import Config, ProviderConfig

TEST_ID_HEADER = "X-Respond-Test-Id"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    url: str  # http://127.0.0.1:PORT
    config: Config
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def services(self) -> Any:
        return self.server.config.app.state.services  # type: ignore[union-attr]

    def client(self, test_id: str | None = None, **kwargs: Any) -> openai.OpenAI:
        headers = {TEST_ID_HEADER: test_id} if test_id else {}
        return openai.OpenAI(base_url=self.base_url, api_key="none", default_headers=headers, max_retries=0,
                             **kwargs)

    def async_client(self, test_id: str | None = None, **kwargs: Any) -> openai.AsyncOpenAI:
        headers = {TEST_ID_HEADER: test_id} if test_id else {}
        return openai.AsyncOpenAI(base_url=self.base_url, api_key="none", default_headers=headers,
                                  max_retries=0, **kwargs)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def start_server(config: Config) -> RunningServer:
    port = free_port()
    config.host, config.port = "127.0.0.1", port
    app = create_app(config)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="on", timeout_graceful_shutdown=3,
                                           ws_max_size=config.max_request_bytes))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True, name=f"respond-{port}")
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the respond server did not start")
        time.sleep(0.02)
    running = RunningServer(url=f"http://127.0.0.1:{port}", config=config, server=server, thread=thread)
    httpx.get(f"{running.url}/health", timeout=5).raise_for_status()
    return running


def scripted_provider(upstream: Any) -> ProviderConfig:
    return ProviderConfig(id="up", type="openai", base_url=upstream.base_url, api_key="test-key",
                          models=["scripted"], embedding_models=["scripted-embed"], timeout=10)


def local_provider() -> ProviderConfig:
    return ProviderConfig(id="local", type="local", models=["smollm2-135m"], embedding_models=["all-minilm-l6-v2"])


def make_config(data_dir: Path, providers: list[ProviderConfig], **fields: Any) -> Config:
    fields.setdefault("test_id_header", True)
    fields.setdefault("default_model", "up/scripted")
    return Config(data_dir=str(data_dir), providers=providers, **fields)


@pytest.fixture(scope="session")
def server(upstream_server: Any) -> Any:
    with tempfile.TemporaryDirectory(prefix="respond-test-") as tmp:
        running = start_server(make_config(Path(tmp), [scripted_provider(upstream_server.upstream),
                                                       local_provider()]))
        yield running
        running.stop()


@pytest.fixture(scope="session")
def pg_server(upstream_server: Any, pg_url: str) -> Any:
    with tempfile.TemporaryDirectory(prefix="respond-test-pg-") as tmp:
        running = start_server(make_config(Path(tmp), [scripted_provider(upstream_server.upstream),
                                                       local_provider()],
                                           database_url=pg_url))
        yield running
        running.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_server(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("server" if request.param == "sqlite" else "pg_server")


@pytest.fixture
def make_server(tmp_path: Path) -> Any:
    started: list[RunningServer] = []

    def make(providers: list[ProviderConfig], **fields: Any) -> RunningServer:
        running = start_server(make_config(tmp_path / f"server{len(started)}", providers, **fields))
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


@pytest.fixture
def client(server: RunningServer, request: pytest.FixtureRequest) -> openai.OpenAI:
    return server.client(request.node.nodeid)


@pytest.fixture
def any_client(any_server: RunningServer, request: pytest.FixtureRequest) -> openai.OpenAI:
    return any_server.client(request.node.nodeid)
