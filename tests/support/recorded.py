"""A server whose model calls go through the recorder, for tests that need a real model's answers.

`recorded_server` serves `RECORDED_MODEL` (default `local/smollm2-135m`, the embedded model; set
`RESPOND_RECORDED_MODEL=openai/gpt-4o` with `OPENAI_API_KEY` to record against OpenAI) with recordings in
`tests/recordings/`. The mode is pytest's `--record-mode` (default `replay`: CI runs offline from the
committed recordings). `make record` runs the suite with `--record-mode record` to re-record them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from respond.config import ProviderConfig, RecordingConfig
from tests.support.server import local_provider, make_config, start_server

RECORDINGS = Path(__file__).resolve().parents[1] / "recordings"
RECORDED_MODEL = os.environ.get("RESPOND_RECORDED_MODEL", "local/smollm2-135m")


def recorded_providers() -> list[ProviderConfig]:
    providers = [local_provider()]
    if os.environ.get("OPENAI_API_KEY"):
        providers.append(ProviderConfig(id="openai", type="openai", api_key=os.environ["OPENAI_API_KEY"],
                                        base_url=os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1",
                                        models=["gpt-4o", "gpt-4o-mini"],
                                        embedding_models=["text-embedding-3-small"]))
    else:
        # replaying OpenAI recordings needs no key: the provider is declared, never contacted
        providers.append(ProviderConfig(id="openai", type="openai", api_key="sk-replay",
                                        base_url="https://api.openai.com/v1", models=["gpt-4o", "gpt-4o-mini"],
                                        embedding_models=["text-embedding-3-small"]))
    return providers


@pytest.fixture(scope="session")
def recorded_server(pytestconfig: pytest.Config) -> Any:
    mode = pytestconfig.getoption("--record-mode")
    RECORDINGS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="respond-recorded-") as tmp:
        config = make_config(Path(tmp), recorded_providers(),
                             recording=RecordingConfig(mode=mode, dir=str(RECORDINGS)))
        config.default_model = RECORDED_MODEL
        running = start_server(config)
        yield running
        running.stop()


@pytest.fixture
def recorded_client(recorded_server: Any, request: pytest.FixtureRequest) -> Any:
    return recorded_server.client(request.node.nodeid)
