"""The embedded models' worker processes (local_process.py / local_worker.py), with the real models.

Native inference runs in worker processes; these tests crash, stop and orphan those processes for real
(signals sent with os.kill) and check that the provider turns each fault into a clean `UpstreamError`,
restarts the worker on the next request, and leaves no process behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from respond.config import ProviderConfig
from respond.errors import UpstreamError
from respond.inference.local import LocalProvider
from respond.inference.local_process import exit_reason

SRC = Path(__file__).resolve().parents[2] / "src"
LONG = [{"role": "user", "content": "Write a long essay about the history of Rome."}]
ASK = [{"role": "user", "content": "What is the capital of France?"}]


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


async def gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def chat(**body: Any) -> dict[str, Any]:
    return {"model": "smollm2-135m", "messages": ASK, "temperature": 0, "max_tokens": 8, **body}


@pytest.fixture
async def provider() -> Any:
    local = LocalProvider(ProviderConfig(id="local", type="local", models=["smollm2-135m"],
                                         embedding_models=["all-minilm-l6-v2"], n_ctx=2048, worker_timeout=3))
    yield local
    pids = [p for p in (local.chat_worker.pid, local.embed_worker.pid) if p]
    await local.aclose()
    for pid in pids:  # closing the provider stops its workers
        assert await gone(pid), f"worker {pid} still running after aclose()"


async def start_long_stream(provider: LocalProvider) -> Any:
    """A streamed generation that is under way (its first text chunk arrived) when this returns."""
    stream = provider.chat_completion_stream(chat(messages=LONG, max_tokens=400, stream=True))
    assert (await anext(stream))["choices"][0]["delta"]["role"] == "assistant"
    assert (await anext(stream))["choices"][0]["delta"]["content"]
    return stream


async def drain(stream: Any) -> int:
    count = 0
    async for _ in stream:
        count += 1
    return count


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGILL, signal.SIGSEGV])
async def test_crash_mid_stream_fails_the_request_then_restarts(provider: LocalProvider, sig: signal.Signals) -> None:
    stream = await start_long_stream(provider)
    pid = provider.chat_worker.pid
    assert pid is not None and pid != os.getpid()
    os.kill(pid, sig)
    with pytest.raises(UpstreamError) as info:
        await drain(stream)
    error = info.value
    assert error.code == "local_worker_died" and error.status_code == 502 and error.error_type == "server_error"
    assert "chat worker died" in error.message and f"signal {sig.name}" in error.message
    assert await gone(pid)
    # the next request starts a new worker and works
    result = await provider.chat_completion(chat())
    assert result["choices"][0]["message"]["content"].strip()
    assert provider.chat_worker.pid not in (None, pid) and provider.chat_worker.starts == 2


async def test_crash_during_a_non_streamed_request(provider: LocalProvider) -> None:
    await provider.load()
    pid = provider.chat_worker.pid
    task = asyncio.create_task(provider.chat_completion(chat(messages=LONG, max_tokens=400)))
    while not (provider.chat_worker._current and provider.chat_worker._current.calls):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    os.kill(pid, signal.SIGILL)
    with pytest.raises(UpstreamError) as info:
        await task
    assert info.value.code == "local_worker_died" and "SIGILL" in info.value.message
    assert (await provider.chat_completion(chat()))["choices"][0]["message"]["content"].strip()


async def test_hung_worker_is_killed_after_worker_timeout(provider: LocalProvider) -> None:
    stream = await start_long_stream(provider)
    pid = provider.chat_worker.pid
    os.kill(pid, signal.SIGSTOP)  # alive but silent, as a worker stuck in native code would be
    with pytest.raises(UpstreamError) as info:
        await drain(stream)
    assert info.value.code == "local_worker_died"
    assert "worker_timeout 3s" in info.value.message and "SIGKILL" in info.value.message
    assert await gone(pid)
    assert (await provider.chat_completion(chat()))["choices"][0]["message"]["content"].strip()


async def test_queued_requests_all_fail_when_the_worker_dies(provider: LocalProvider) -> None:
    stream = await start_long_stream(provider)
    queued = [asyncio.create_task(provider.chat_completion(chat())) for _ in range(2)]
    await asyncio.sleep(0.1)
    os.kill(provider.chat_worker.pid, signal.SIGKILL)
    results = await asyncio.gather(drain(stream), *queued, return_exceptions=True)
    assert all(isinstance(r, UpstreamError) and r.code == "local_worker_died" for r in results), results


async def test_closed_stream_cancels_in_the_worker(provider: LocalProvider) -> None:
    stream = await start_long_stream(provider)
    before = provider.completion_tokens_total
    await stream.aclose()
    # the worker serves one request at a time, so this runs once the cancelled generation has stopped
    result = await provider.chat_completion(chat(max_tokens=2))
    assert result["usage"]["completion_tokens"] == 2
    assert provider.completion_tokens_total - before - 2 < 50  # not the 400 tokens it would have made
    assert provider.chat_worker.starts == 1  # stopped by a `cancel` frame, not by killing the worker


async def test_missing_model_file_is_local_model_unavailable(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file")
    for path in (tmp_path / "missing.gguf", bad):
        local = LocalProvider(ProviderConfig(id="local", type="local", model_path=str(path), worker_timeout=30))
        try:
            with pytest.raises(UpstreamError) as info:
                await local.chat_completion(chat())
            assert info.value.code == "local_model_unavailable" and path.name in info.value.message
            pid = local.chat_worker.pid
            assert pid is not None  # a load error is an answer, not a crash: the worker stays
            with pytest.raises(UpstreamError):
                await drain(local.chat_completion_stream(chat(stream=True)))
            assert local.chat_worker.pid == pid
        finally:
            await local.aclose()


async def test_worker_over_its_memory_limit_fails_the_request_cleanly() -> None:
    # 200 MiB of address space is too little for the worker's numpy/llama.cpp: it fails to allocate
    local = LocalProvider(ProviderConfig(id="local", type="local", worker_memory_mb=200, worker_timeout=30))
    try:
        with pytest.raises(UpstreamError) as info:
            await local.chat_completion(chat())
        assert info.value.code in ("local_worker_died", "local_model_unavailable"), info.value.message
    finally:
        await local.aclose()


def test_exit_reasons() -> None:
    assert exit_reason(-4).startswith("signal SIGILL (illegal instruction")
    assert exit_reason(-9).startswith("signal SIGKILL")
    assert exit_reason(3) == "exit code 3"


ORPHAN_SCRIPT = """
import asyncio, json, sys
from respond.config import ProviderConfig
from respond.inference.local import LocalProvider

async def main():
    local = LocalProvider(ProviderConfig(id="local", type="local", n_ctx=512))
    reply = await local.chat_completion({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2})
    vectors = await local.embeddings({"input": ["a", "b"]})
    native = [m for m in ("llama_cpp", "torch", "sentence_transformers", "numpy") if m in sys.modules]
    print(json.dumps({"chat": local.chat_worker.pid, "embed": local.embed_worker.pid, "native": native,
                      "ok": bool(reply["choices"]) and len(vectors["data"]) == 2}), flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


async def test_native_code_stays_out_of_the_process_and_workers_die_with_it() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    parent = await asyncio.create_subprocess_exec(sys.executable, "-c", ORPHAN_SCRIPT, env=env,
                                                  stdout=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(parent.stdout.readline(), 240)
        report = json.loads(line)
    finally:
        parent.kill()  # SIGKILL: no clean-up code runs in the parent
        await parent.wait()
    assert report["ok"] and report["native"] == []  # llama.cpp and torch never entered the parent
    for pid in (report["chat"], report["embed"]):
        assert await gone(pid), f"worker {pid} outlived its parent"


def test_worker_refuses_a_bad_command_line() -> None:
    """A worker started by hand with a bad command line says so and exits (no frames on stdout)."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-m", "respond.inference.local_worker", "nonsense"], env=env,
                          capture_output=True, timeout=60)
    assert done.returncode != 0 and done.stdout == b"" and b"usage" in done.stderr


async def test_long_prompts_reuse_whole_cached_batches_and_answers_stay_the_same() -> None:
    """Prompts longer than one 512-token batch take their leading whole batches from the KV cache, and a
    greedy answer does not depend on whether the cache was used."""
    local = LocalProvider(ProviderConfig(id="local", type="local", n_ctx=2048, worker_timeout=120))
    story = " ".join(f"On day {i} the Romans built a new road to a town nearby." for i in range(33))
    long_chat = chat(messages=[{"role": "user", "content": story + " What did the Romans build?"}], max_tokens=8)
    try:
        fresh = await local.chat_completion(long_chat)
        assert 512 < fresh["usage"]["prompt_tokens"] < 600 and local.chat_worker.cached_tokens == 0
        again = await local.chat_completion(long_chat)
        assert local.chat_worker.cached_tokens == 512  # the first whole batch came from the cache
        assert again["choices"][0]["message"] == fresh["choices"][0]["message"]
    finally:
        await local.aclose()
