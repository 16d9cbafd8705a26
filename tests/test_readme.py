"""The README's examples run as shown against a zero-config server.

`respond serve` starts as a user starts it with no configuration (no config file, no OPENAI_API_KEY: the
embedded model), on a random port. Each fenced block the README marks `<!-- readme: run -->` runs in README
order with `http://127.0.0.1:8321` replaced by that server's address: the Python blocks in one interpreter
session (as pasted into a REPL: later blocks use `c` from the first), the bash blocks with bash, `curl`
failing on an HTTP error. Every python/bash block of the "Use it" section must be marked `run`, or `skip`
with a reason, so a new example cannot silently go untested.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.server import free_port

README = Path(__file__).resolve().parent.parent / "README.md"
DOC_URL = "http://127.0.0.1:8321"
_BLOCK = re.compile(r"(?:<!--\s*readme:\s*(?P<mark>run|skip)\b[^>]*-->\s*\n)?```(?P<lang>\w*)\n(?P<code>.*?)\n```",
                    re.S)


@dataclass
class Block:
    lang: str
    code: str
    mark: str | None
    line: int
    section: str


def readme_blocks(text: str) -> list[Block]:
    blocks = []
    for m in _BLOCK.finditer(text):
        before = text[:m.start()]
        headings = re.findall(r"^## (.+)$", before, re.M)
        line = before.count("\n") + 1 + (1 if m.group("mark") else 0)
        blocks.append(Block(m.group("lang"), m.group("code"), m.group("mark"), line,
                            headings[-1] if headings else ""))
    return blocks


def test_every_usage_example_is_marked() -> None:
    unmarked = [f"README.md:{b.line}" for b in readme_blocks(README.read_text())
                if b.section == "Use it" and b.lang in ("python", "bash", "sh") and b.mark is None]
    assert not unmarked, f"mark these blocks <!-- readme: run --> or <!-- readme: skip (why) -->: {unmarked}"


def _python_session(blocks: list[Block]) -> str:
    """One script running the blocks one after another in one namespace, saying which one failed."""
    parts = ["import sys, time, traceback", "ns = {'__name__': '__readme__'}"]
    for b in blocks:
        parts.append(textwrap.dedent(f"""
            print('--- README.md:{b.line}', flush=True)
            started = time.monotonic()
            try:
                exec(compile({b.code!r}, 'README.md:{b.line}', 'exec'), ns)
            except BaseException:
                traceback.print_exc()
                print('README block at line {b.line} failed', file=sys.stderr)
                sys.exit(1)
            print(f'--- README.md:{b.line} ran in {{time.monotonic() - started:.1f}} s', flush=True)
            """))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def zero_config_server(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("readme-data")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RESPOND_"))}
    env.update(RESPOND_DATA_DIR=str(data), RESPOND_CONFIG="")
    port = free_port()
    log = (data / "server.log").open("w")  # a file, not a pipe nobody reads while the server runs
    proc = subprocess.Popen([sys.executable, "-m", "respond.cli", "serve", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (data / "server.log").read_text()
            assert time.monotonic() < deadline, "respond serve did not come up"
            time.sleep(0.2)
        yield url, env
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_readme_examples_run_against_a_zero_config_server(zero_config_server, tmp_path: Path) -> None:
    url, env = zero_config_server
    blocks = [b for b in readme_blocks(README.read_text()) if b.mark == "run"]
    assert {b.lang for b in blocks} >= {"python", "bash"}
    for b in blocks:
        assert b.lang in ("python", "bash"), f"README.md:{b.line}: cannot run a {b.lang!r} block"
        b.code = b.code.replace(DOC_URL, url)

    python = [b for b in blocks if b.lang == "python"]
    script = tmp_path / "readme_session.py"
    script.write_text(_python_session(python))
    run = subprocess.run([sys.executable, str(script)], env={**env, "RESPOND_DATA_DIR": str(tmp_path / "lib")},
                         capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    assert run.stdout.count(" ran in ") == len(python), run.stdout[-3000:]
    print("\n".join(line for line in run.stdout.splitlines() if " ran in " in line))

    for b in (b for b in blocks if b.lang == "bash"):
        # `curl` fails on an HTTP error status; the block stops at its first failing command
        shell = "set -eo pipefail\ncurl() { command curl --fail-with-body --show-error \"$@\"; }\n" + b.code
        out = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"README.md:{b.line} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        assert '"error":{' not in out.stdout and "response.failed" not in out.stdout, out.stdout[-3000:]
