"""The `respond` command as a user runs it (a real subprocess), and the config file rules."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest

from respond.config import ConfigError, load_config
from tests.support.server import free_port, wait_until_serving
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
        wait_until_serving(f"http://127.0.0.1:{port}", proc, log=proc.stdout.read)
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
    wait_until_serving(f"http://127.0.0.1:{port}", proc, log=proc.stdout.read)
    return proc, port


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


# -- config errors, --version, precedence ------------------------------------------------------------------

def _run(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RESPOND_")}
    return subprocess.run([*RESPOND, *args], capture_output=True, text=True, timeout=60, cwd=cwd,
                          env={**clean, **(env or {})})


@pytest.mark.parametrize(("content", "expected"), [
    (None, "respond.yaml: cannot read the file"),
    ("providers: [unclosed\n", "respond.yaml: invalid YAML: line 2"),
    ("port: abc\n", "respond.yaml: port: Input should be a valid integer"),
    ("providers:\n  - type: openai\n    base_url: http://x/v1\n", "respond.yaml: providers[0].id: Field required"),
    ("providers:\n  - id: up\n    type: openai\n    base_url: [not, a, url]\n",
     "respond.yaml: providers[0].base_url: Input should be a valid string"),
    ("colour: blue\n", "respond.yaml: colour: unknown setting"),
])
def test_a_config_error_is_one_line_and_exit_status_2(tmp_path: Path, content: str | None, expected: str) -> None:
    if content is not None:
        (tmp_path / "respond.yaml").write_text(content)
    out = _run(["serve", "--config", "respond.yaml"], cwd=tmp_path)
    assert out.returncode == 2, out
    assert out.stderr.startswith(f"respond: config error in {expected}"), out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


@pytest.mark.parametrize(("content", "expected"), [
    ("- just\n- a list\n", "expected a mapping of settings (host, port, providers...), got list"),
    ("max_request_bytes: 0\n", "max_request_bytes: Input should be greater than 0 (got 0)"),
    ("database_url: mysql://u:pw@h/db\n", "database_url: expected sqlite:///path or postgresql+asyncpg://"),
    ("recording: {mode: sometimes}\n", "recording.mode: Input should be 'live', 'record', 'replay' or "
                                       "'record-if-missing' (got 'sometimes')"),
    ("providers:\n  - {id: a, type: local}\n  - {id: b, type: carrier-pigeon}\n", "providers[1].type: "),
])
def test_config_error_messages(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "respond.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    assert str(raised.value).startswith(f"config error in {path}: {expected}"), str(raised.value)
    assert "\n" not in str(raised.value) and "mysql://u:pw" not in str(raised.value)


def test_a_config_error_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    out = _run(["models"], env={"RESPOND_RECORD_MODE": "sometimes"})  # `models` loads the config as `serve` does
    assert out.returncode == 2
    assert out.stderr.startswith("respond: config error ($RESPOND_RECORD_MODE): recording.mode: Input should be"), \
        out.stderr
    # a credential is never quoted back
    (tmp_path / "c.yaml").write_text("providers:\n  - {id: up, type: openai, api_key: 987654321012}\n")
    out = _run(["models", "--config", str(tmp_path / "c.yaml")])
    assert out.returncode == 2 and "providers[0].api_key" in out.stderr and "987654321012" not in out.stderr
    (tmp_path / "c.yaml").write_text("port: 80x\n")
    assert "port: Input should be a valid integer, unable to parse string as an integer (got '80x')" in \
        _run(["models", "--config", str(tmp_path / "c.yaml")]).stderr


def test_version() -> None:
    from respond import __version__

    out = _run(["--version"])
    assert out.returncode == 0 and out.stdout.strip() == f"respond {__version__}"


def test_precedence_flag_over_environment_over_file_over_default(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"data_dir: {tmp_path / 'file'}\ndatabase_url: sqlite:///{tmp_path / 'file.db'}\n"
                    "recording: {mode: replay, dir: /from/file}\n")
    assert load_config(None, env={}).data_dir == "~/.respond"
    from_file = load_config(path, env={})
    assert from_file.data_path == tmp_path / "file" and from_file.recording.mode == "replay"
    assert from_file.resolved_database_url() == f"sqlite:///{tmp_path / 'file.db'}"
    env = {"RESPOND_DATA_DIR": str(tmp_path / "env"), "RESPOND_DATABASE_URL": "sqlite:///env.db",
           "RESPOND_RECORD_MODE": "record", "RESPOND_RECORDINGS_DIR": "/from/env"}
    from_env = load_config(path, env=env)
    assert from_env.data_path == tmp_path / "env" and from_env.database_url == "sqlite:///env.db"
    assert (from_env.recording.mode, from_env.recording.dir) == ("record", "/from/env")
    from_flags = load_config(path, env=env, data_dir=str(tmp_path / "flag"), record_mode="live",
                             recordings_dir="/from/flag")
    assert from_flags.data_path == tmp_path / "flag"
    assert (from_flags.recording.mode, from_flags.recording.dir) == ("live", "/from/flag")
    assert load_config(path, env={**env, "RESPOND_DATA_DIR": ""}).data_path == tmp_path / "file"  # empty: unset


def test_respond_data_dir_overrides_the_config_file(tmp_path: Path) -> None:
    """As documented: $RESPOND_DATA_DIR wins over `data_dir` in the file (and --data-dir over both)."""
    path = tmp_path / "respond.yaml"
    path.write_text(f"data_dir: {tmp_path / 'from-file'}\nproviders:\n  - {{id: local, type: local, "
                    "models: [smollm2-135m]}\n")
    proc, _ = _serve(["--config", str(path)], {"RESPOND_DATA_DIR": str(tmp_path / "from-env")})
    _stop(proc)
    assert (tmp_path / "from-env" / "respond.db").exists() and not (tmp_path / "from-file").exists()
    proc, _ = _serve(["--config", str(path), "--data-dir", str(tmp_path / "from-flag")],
                     {"RESPOND_DATA_DIR": str(tmp_path / "from-env")})
    _stop(proc)
    assert (tmp_path / "from-flag" / "respond.db").exists() and not (tmp_path / "from-file").exists()


def test_an_echoed_key_stays_out_of_the_served_answers_and_logs(tmp_path: Path, upstream) -> None:
    """`respond serve` as run by a user: an upstream echoing the key; no trace of it on stderr (JSON logs)."""
    from tests.support.upstream import error

    key = "sk-served-Key0123456789abcdef"
    config = write_config(tmp_path / "respond.yaml", upstream.base_url, tmp_path / "data")
    port = free_port()
    proc = subprocess.Popen([*RESPOND, "serve", "--config", str(config), "--port", str(port)],
                            env={**os.environ, "UPSTREAM_URL": upstream.base_url, "UPSTREAM_KEY": key},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", proc, log=proc.stdout.read)
        upstream.script(error(401, f"Incorrect API key provided: Bearer {key}"),
                        error(401, f"Incorrect API key provided: Bearer {key}"))
        answered = httpx.post(f"http://127.0.0.1:{port}/v1/responses", json={"model": "up/scripted", "input": "x"})
        chat = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions",
                          json={"model": "up/scripted", "messages": [{"role": "user", "content": "x"}]})
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert "Bearer <redacted>" in answered.text and "Bearer <redacted>" in chat.text
    assert key not in answered.text + chat.text
    assert "response" in out and key not in out  # the failed response was logged, without the key
