"""The parent side of the embedded models' worker processes (`local_worker.py` is the other side).

`LocalWorker` owns one kind of worker (chat or embeddings) for one provider: it starts the process on first
use, multiplexes requests over its stdin/stdout by id, and watches it. When the process dies (any signal:
SIGILL from an unsupported instruction, SIGSEGV, SIGKILL from the OOM killer...) or goes silent for
`worker_timeout` seconds while it has work (then it is killed), every request it had ends with an
`UpstreamError` saying so, and the next request starts a new process. The server itself never runs llama.cpp
or torch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from respond.errors import InvalidRequest, UpstreamError
from respond.inference.local_worker import HEADER, encode_frame
from respond.logs import JSONFormatter

log = logging.getLogger("respond.inference.local")

LOAD_TIMEOUT = 300.0  # seconds a model load may take (torch's first import is slow on a busy machine)
_STOP_GRACE = 3.0  # seconds a worker gets to exit after its stdin closes, before it is killed
_TERMINAL = ("done", "error")

_SIGNAL_NOTES = {
    signal.SIGILL: "illegal instruction: the llama.cpp/torch build uses a CPU feature this CPU lacks",
    signal.SIGKILL: "killed: out of memory, a hang, or an operator",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGBUS: "bus error",
}


def exit_reason(returncode: int | None) -> str:
    """A process's end in words: 'signal SIGILL (illegal instruction: ...)' or 'exit code 3'."""
    if returncode is None:
        return "unknown"
    if returncode < 0:
        try:
            sig = signal.Signals(-returncode)
        except ValueError:
            return f"signal {-returncode}"
        note = _SIGNAL_NOTES.get(sig)
        return f"signal {sig.name}" + (f" ({note})" if note else "")
    return f"exit code {returncode}"


class Call:
    """One request to a worker: its frames (`text`, `done`, `error`) arrive on `queue`."""

    __slots__ = ("id", "queue", "finished", "abandoned")

    def __init__(self, ident: int) -> None:
        self.id = ident
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.finished = False  # its terminal frame (or the worker's death) arrived
        self.abandoned = False  # the caller left: frames are dropped


class _Process:
    """One incarnation of a worker process and the calls it is serving."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.calls: dict[int, Call] = {}
        self.last_output = time.monotonic()
        self.loading = True  # starting up or loading a model: the longer LOAD_TIMEOUT applies
        self.kill_reason: str | None = None  # why we killed it (a hang), if we did
        self.death: str | None = None  # why it ended, once it has
        self.reader: asyncio.Task[None] | None = None
        self.watchdog: asyncio.Task[None] | None = None


class LocalWorker:
    """A lazily (re)started worker process of one kind ('chat' or 'embed') for provider `provider_id`."""

    def __init__(self, provider_id: str, kind: str, options: dict[str, Any], timeout: float,
                 memory_mb: int | None = None) -> None:
        self.provider_id = provider_id
        self.kind = kind
        self.options = options
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.label = f"{provider_id} {'chat' if kind == 'chat' else 'embeddings'} worker"
        self._current: _Process | None = None
        self._starting: asyncio.Lock | None = None
        self._next_id = 0
        self._closed = False
        self.starts = 0  # processes started so far
        self.completion_tokens = 0  # tokens generated, by requests finished or stopped early (for metrics)
        self.cached_tokens = 0  # prompt tokens taken from the worker's KV cache instead of evaluated

    @property
    def pid(self) -> int | None:
        current = self._current
        return current.pid if current is not None and current.proc.returncode is None else None

    # -- process lifecycle ----------------------------------------------------------------------------

    async def _process(self) -> _Process:
        if self._closed:
            raise UpstreamError(f"The {self.label} is shut down.", code="local_model_unavailable")
        current = self._current
        if current is not None and current.proc.returncode is None and current.kill_reason is None:
            return current
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            current = self._current
            if current is not None and current.proc.returncode is None and current.kill_reason is None:
                return current
            self._current = current = await self._spawn()
            return current

    def _worker_options(self) -> dict[str, Any]:
        root = logging.getLogger()
        json_logs = any(isinstance(h.formatter, JSONFormatter) for h in root.handlers)
        return {**self.options, "parent": os.getpid(), "memory_mb": self.memory_mb,
                "log_level": logging.getLevelName(root.getEffectiveLevel()).lower(),
                "log_format": "json" if json_logs or not root.handlers else "text"}

    async def _spawn(self) -> _Process:
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "respond.inference.local_worker", self.kind,
                orjson.dumps(self._worker_options()).decode(),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None,
                start_new_session=True)  # Ctrl-C on the terminal goes to the server, which stops us
        except OSError as exc:
            raise UpstreamError(f"The {self.label} could not be started: {exc}",
                                code="local_model_unavailable") from exc
        self.starts += 1
        process = _Process(proc)
        process.reader = asyncio.create_task(self._read(process), name=f"respond-{self.label}-reader")
        process.watchdog = asyncio.create_task(self._watch(process), name=f"respond-{self.label}-watchdog")
        log.info("local: %s started (pid %d)", self.label, proc.pid)
        return process

    async def _read(self, process: _Process) -> None:
        """Dispatch the worker's frames until its stdout ends, then fail whatever it still had."""
        stdout = process.proc.stdout
        assert stdout is not None
        try:
            while True:
                head = await stdout.readexactly(HEADER.size)
                frame = orjson.loads(await stdout.readexactly(HEADER.unpack(head)[0]))
                process.last_output = time.monotonic()
                ev = frame.get("ev")
                if ev == "loading":
                    process.loading = True
                elif ev in ("ready", "loaded"):
                    process.loading = False
                call = process.calls.get(frame.get("id"))
                if call is None or ev not in ("text", *_TERMINAL):
                    continue
                if ev in _TERMINAL:
                    self.completion_tokens += frame.get("completion_tokens") or 0
                    self.cached_tokens += frame.get("cached_tokens") or 0
                    call.finished = True
                    del process.calls[call.id]
                    process.loading = False
                if not call.abandoned:
                    call.queue.put_nowait(frame)
        except (asyncio.IncompleteReadError, ConnectionError, orjson.JSONDecodeError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            await self._ended(process)

    async def _ended(self, process: _Process) -> None:
        with contextlib.suppress(ProcessLookupError):
            if process.proc.returncode is None:
                # stdout closed but the process lives on (or is stopped): it cannot answer any more
                try:
                    await asyncio.wait_for(process.proc.wait(), _STOP_GRACE)
                except TimeoutError:
                    process.proc.kill()
        with contextlib.suppress(Exception):
            await process.proc.wait()
        if process.watchdog is not None:
            process.watchdog.cancel()
        reason = exit_reason(process.proc.returncode)
        if process.kill_reason:
            reason = f"{process.kill_reason}; {reason}"
        process.death = (f"The embedded model's {self.label} died ({reason}) while serving this request; it "
                         "restarts on the next request.")
        calls = list(process.calls.values())
        process.calls.clear()
        if self._closed and process.kill_reason is None:
            log.info("local: %s (pid %d) stopped: %s", self.label, process.pid, reason)
        else:
            log.warning("local: %s (pid %d) exited: %s%s", self.label, process.pid, reason,
                        f"; {len(calls)} request(s) failed" if calls else "")
        for call in calls:
            call.finished = True
            if not call.abandoned:
                call.queue.put_nowait(UpstreamError(process.death, code="local_worker_died"))
        if self._current is process:
            self._current = None

    async def _watch(self, process: _Process) -> None:
        """Kill the worker when it has work but has said nothing for `timeout` seconds."""
        step = max(0.05, min(1.0, self.timeout / 4))
        while process.proc.returncode is None:
            await asyncio.sleep(step)
            if not process.calls:
                continue
            limit = max(self.timeout, LOAD_TIMEOUT) if process.loading else self.timeout
            silent = time.monotonic() - process.last_output
            if silent > limit:
                process.kill_reason = f"no output for {silent:.1f}s while busy (worker_timeout {self.timeout:g}s)"
                log.warning("local: %s (pid %d) hung: %s; killing it", self.label, process.pid,
                            process.kill_reason)
                with contextlib.suppress(ProcessLookupError):
                    process.proc.kill()
                return

    # -- requests -------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def call(self, op: str, **fields: Any) -> AsyncIterator[Call]:
        """Send one request; the caller reads `frames(call)`. Leaving early cancels it in the worker."""
        process = await self._process()
        self._next_id += 1
        call = Call(self._next_id)
        if not process.calls:
            process.last_output = time.monotonic()  # an idle worker's clock starts with this request
        process.calls[call.id] = call
        if process.death is not None:  # it died just now, before it could take this request
            del process.calls[call.id]
            call.finished = True
            call.queue.put_nowait(UpstreamError(process.death, code="local_worker_died"))
        else:
            self._write(process, {"op": op, "id": call.id, **fields})
        try:
            yield call
        finally:
            if not call.finished:
                call.abandoned = True
                self._write(process, {"op": "cancel", "id": call.id})

    @staticmethod
    def _write(process: _Process, frame: dict[str, Any]) -> None:
        stdin = process.proc.stdin
        if stdin is None or stdin.is_closing():
            return  # the reader sees the end and fails the call
        with contextlib.suppress(ConnectionError, RuntimeError):
            stdin.write(encode_frame(frame))

    @staticmethod
    async def frames(call: Call) -> AsyncIterator[dict[str, Any]]:
        """The call's `text` frames, then its `done` frame; an `error` frame or the worker's death raises."""
        while True:
            item = await call.queue.get()
            if isinstance(item, BaseException):
                raise item
            if item["ev"] == "error":
                cls = InvalidRequest if item.get("kind") == "invalid" else UpstreamError
                raise cls(item["message"], param=item.get("param"), code=item.get("code"))
            yield item
            if item["ev"] == "done":
                return

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """A request answered by one `done` frame (load, embed)."""
        async with self.call(op, **fields) as call:
            async for frame in self.frames(call):
                if frame["ev"] == "done":
                    return frame
        raise UpstreamError(f"The {self.label} sent no result.", code="local_model_error")

    async def aclose(self) -> None:
        """Stop the worker: close its stdin (it exits on EOF), kill it if it does not."""
        self._closed = True
        process, self._current = self._current, None
        if process is None:
            return
        stdin = process.proc.stdin
        if stdin is not None:
            with contextlib.suppress(Exception):
                stdin.close()
        try:
            await asyncio.wait_for(process.proc.wait(), _STOP_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.proc.kill()
        if process.reader is not None:
            await asyncio.gather(process.reader, return_exceptions=True)
