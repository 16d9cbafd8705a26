"""npm packages for tests that run real JavaScript clients (Codex CLI, openai-node), installed once and cached.

`npm_package("@openai/codex", "0.171.0", "codex")` installs the package with `npm install --prefix
<cache>/codex` unless that exact version is already there, and returns the prefix (its binaries are in
`<prefix>/node_modules/.bin`). The cache is `$RESPOND_NPM_CACHE` or `~/.cache/respond`. A test skips, saying
why, only when npm is missing or the registry cannot be reached; any other install failure fails it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

# What npm prints when the registry is unreachable (no network, DNS, proxy, offline mode).
_NO_NETWORK = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENETUNREACH",
               "EHOSTUNREACH", "ENOTCACHED", "network request", "request to https://")


def cache_root() -> Path:
    return Path(os.environ.get("RESPOND_NPM_CACHE") or "~/.cache/respond").expanduser()


def installed_version(prefix: Path, name: str) -> str | None:
    manifest = prefix / "node_modules" / name / "package.json"
    try:
        return json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


@contextlib.contextmanager
def _locked(prefix: Path) -> Iterator[None]:
    """One installer at a time per prefix (parallel test runs share the cache)."""
    prefix.mkdir(parents=True, exist_ok=True)
    with open(prefix / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def npm_package(name: str, version: str, cache_dir: str, timeout: float = 600) -> Path:
    prefix = cache_root() / cache_dir
    if installed_version(prefix, name) == version:
        return prefix
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(f"npm is not installed: cannot install {name}@{version}")
    with _locked(prefix):
        if installed_version(prefix, name) == version:
            return prefix
        try:
            done = subprocess.run([npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
                                   "--loglevel=error", f"{name}@{version}"], capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.skip(f"npm install {name}@{version} did not finish in {timeout:.0f} s (no network?)")
        output = done.stdout + done.stderr
        if done.returncode != 0:
            if any(marker in output for marker in _NO_NETWORK):
                pytest.skip(f"cannot install {name}@{version}: the npm registry is unreachable: "
                            f"{output.strip()[-300:]}")
            pytest.fail(f"npm install {name}@{version} failed ({done.returncode}): {output.strip()[-2000:]}")
    if installed_version(prefix, name) != version:
        pytest.fail(f"npm install {name}@{version} finished but {prefix} does not hold that version")
    return prefix
