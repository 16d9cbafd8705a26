"""The `respond` command as a user runs it (a real subprocess), and the config file rules."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from respond.config import load_config
from tests.support.server import free_port
from tests.support.upstream import reply

RESPOND = [sys.executable, "-m", "respond.cli"]


def write_config(path: Path, upstream_url: str, data_dir: Path) -> Path:
    path.write_text(f"""
data_dir: {data_dir}
log_level: info
providers:
  - id: up
    type: openai
    base_url: ${{UPSTREAM_URL}}
    api_key: ${{UPSTREAM_KEY:-not-set}}
    models: [scripted]
  - id: local
    type: local
    models: [smollm2-135m]
""")
    return path


def test_serve_command_serves_the_sdk(tmp_path: Path, upstream) -> None:
    config = write_config(tmp_path / "respond.yaml", upstream.base_url, tmp_path / "data")
    port = free_port()
    env = {**os.environ, "UPSTREAM_URL": upstream.base_url}
    proc = subprocess.Popen([*RESPOND, "serve", "--config", str(config), "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "respond serve did not come up"
            time.sleep(0.1)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none")
        upstream.script(reply("from the CLI"))
        r = client.responses.create(model="up/scripted", input="hi")
        assert r.output_text == "from the CLI"
        assert upstream.requests[-1].headers.get("authorization") == "Bearer not-set"
        assert {m.id for m in client.models.list()} >= {"up/scripted", "local/smollm2-135m"}
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    # uvicorn shuts down gracefully, then re-raises the signal it caught: the exit status says SIGTERM
    assert proc.returncode in (0, -signal.SIGTERM), out
    assert (tmp_path / "data" / "respond.db").exists()  # SQLite under the configured data dir
    # structured logs: every line the server wrote is a JSON object
    import json
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert any("ready" in r["msg"] for r in records) and all({"ts", "level", "logger", "msg"} <= set(r)
                                                             for r in records)


def test_models_command(tmp_path: Path, upstream) -> None:
    config = write_config(tmp_path / "respond.yaml", upstream.base_url, tmp_path / "data")
    out = subprocess.run([*RESPOND, "models", "--config", str(config)], capture_output=True, text=True,
                         env={**os.environ, "UPSTREAM_URL": upstream.base_url}, timeout=120, check=True).stdout
    assert "up/scripted\tllm" in out and "local/smollm2-135m\tllm" in out


def test_recordings_command_is_wired(tmp_path: Path) -> None:
    out = subprocess.run([*RESPOND, "recordings", "list", "--dir", str(tmp_path)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr


def test_interpolation_and_zero_config(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("providers:\n  - {id: v, type: openai, base_url: '${VLLM_URL:-http://gpu:8000/v1}', "
                    "api_key: '${KEY}'}\n")
    config = load_config(path, env={"KEY": "k1"})
    assert config.providers[0].base_url == "http://gpu:8000/v1" and config.providers[0].api_key == "k1"
    assert load_config(path, env={"KEY": "k", "VLLM_URL": "http://x/v1"}).providers[0].base_url == "http://x/v1"

    bare = load_config(None, env={})
    assert [p.id for p in bare.providers] == ["local"] and bare.default_model == "local/smollm2-135m"
    keyed = load_config(None, env={"OPENAI_API_KEY": "sk-1", "OPENAI_BASE_URL": "http://proxy/v1",
                                   "RESPOND_DATA_DIR": str(tmp_path)})
    openai_provider = next(p for p in keyed.providers if p.id == "openai")
    assert openai_provider.base_url == "http://proxy/v1" and openai_provider.models is None  # discovered
    assert keyed.data_path == tmp_path

    bad = tmp_path / "bad.yaml"
    bad.write_text("providers: [{id: x, type: carrier-pigeon}]\n")
    with pytest.raises(ValueError):
        load_config(bad, env={})


def _serve(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([*RESPOND, "serve", "--port", str(port), *args], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "respond serve did not come up"
        time.sleep(0.1)


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)


def test_record_then_replay_from_the_command_line(tmp_path: Path, upstream) -> None:
    config = write_config(tmp_path / "respond.yaml", upstream.base_url, tmp_path / "data")
    recordings = tmp_path / "recs"
    headers = {"X-Respond-Test-Id": "cli-record-replay"}
    body = {"model": "up/scripted", "input": "What is 2+2?"}

    upstream.script(reply("4, as recorded"))
    proc, port = _serve(["--config", str(config), "--record-mode", "record", "--recordings", str(recordings)],
                        {"UPSTREAM_URL": upstream.base_url, "UPSTREAM_KEY": "sk-secret-value"})
    try:
        recorded = httpx.post(f"http://127.0.0.1:{port}/v1/responses", json=body, headers=headers).json()
    finally:
        _stop(proc)
    assert recorded["output"][0]["content"][0]["text"] == "4, as recorded"
    files = list(recordings.glob("*.json"))
    assert len(files) == 1 and "sk-secret-value" not in files[0].read_text()

    # replay: the upstream address is dead, the answer comes from the recording
    proc, port = _serve(["--config", str(config), "--record-mode", "replay", "--recordings", str(recordings)],
                        {"UPSTREAM_URL": "http://127.0.0.1:9/v1"})
    try:
        replayed = httpx.post(f"http://127.0.0.1:{port}/v1/responses", json=body, headers=headers).json()
        missed = httpx.post(f"http://127.0.0.1:{port}/v1/responses", json={**body, "input": "new"},
                            headers=headers).json()
    finally:
        _stop(proc)
    assert replayed["status"] == "completed"
    assert replayed["id"] == recorded["id"]  # same test id on a fresh server: the same ids, run after run
    assert replayed["output"][0]["content"][0]["text"] == "4, as recorded"
    assert missed["status"] == "failed" and "No recording" in missed["error"]["message"]
    assert len(upstream.chat_bodies) == 1  # only the recording run reached the upstream


def test_zero_config_with_an_openai_key(tmp_path: Path, upstream) -> None:
    """No config file: the local provider, plus `openai` from OPENAI_API_KEY / OPENAI_BASE_URL, its models
    discovered from the upstream's /v1/models; the data dir from RESPOND_DATA_DIR."""
    env = {"OPENAI_API_KEY": "sk-zero-config", "OPENAI_BASE_URL": upstream.base_url,
           "RESPOND_DATA_DIR": str(tmp_path / "data"), "RESPOND_CONFIG": ""}
    proc, port = _serve([], env)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none")
        ids = {m.id for m in client.models.list()}
        assert {"openai/gpt-4o", "openai/gpt-4o-mini", "local/smollm2-135m"} <= ids
        upstream.script(reply("zero config works"))
        assert client.responses.create(model="openai/gpt-4o", input="hi").output_text == "zero config works"
        assert upstream.last_chat["model"] == "gpt-4o"
        assert upstream.requests[-1].headers.get("authorization") == "Bearer sk-zero-config"
    finally:
        _stop(proc)
    assert (tmp_path / "data" / "respond.db").exists()
