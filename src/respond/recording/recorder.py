"""The Recorder: the single seam every outbound call passes through.

Call sites describe the call as an `OutboundRequest` and hand over a `live` callable that performs it:

    result = await recorder.call(req, lambda: client.post(...), response_type=CHAT_COMPLETION)
    async for chunk in recorder.stream(req, lambda: provider.chat_completion_stream(body), CHAT_COMPLETION_CHUNK):
        ...

Modes: `live` passes through untouched; `record` calls live and writes a recording; `replay` never calls
live (a miss raises `RecordingNotFound` explaining the nearest recording); `record-if-missing` replays when
a recording exists and records otherwise.

In record and replay modes the caller receives plain JSON data (dicts/lists) with normalized ids
(`rec-<hash12>`, created 0), identical in both modes, so a test behaves the same recorded or replayed.
Upstream failures (`UpstreamError` with an HTTP status, or a stream cut after some chunks) are recorded and
re-raised on replay; a failure with no answer at all (unreachable, timeout before any data) is not
recorded, so a broken network while recording never turns into a permanent fixture.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from respond import jsonutil
from respond.config import RecordMode
from respond.errors import UpstreamError
from respond.recording import context
from respond.recording.codec import decode, encode, to_plain
from respond.recording.errors import RecordingIncomplete, RecordingNotFound
from respond.recording.hashing import request_hash
from respond.recording.normalize import IdNormalizer
from respond.recording.scrub import redact_values, scrub_body, scrub_headers, scrub_url
from respond.recording.store import RecordingStore

log = logging.getLogger("respond.recording")

MODES = ("live", "record", "replay", "record-if-missing")
USAGE_LOG_ENV = "RESPOND_RECORDING_USAGE_LOG"
USAGE_LOG_NAME = ".used"
_MAX_DIFF_LINES = 25


@dataclass
class OutboundRequest:
    """One outbound call, described well enough to hash it and to show it in a recording."""

    method: str
    url: str
    endpoint: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    model: str | None = None


@dataclass(frozen=True)
class _Key:
    """An outbound request after scrubbing, with its hash and the test it belongs to."""

    request_hash: str
    test_id: str | None
    method: str
    endpoint: str
    request: dict[str, Any]


def _usage_log_path(option: str | Path | bool | None, directory: Path | None) -> Path | None:
    value: Any = option if option is not None else os.environ.get(USAGE_LOG_ENV, "")
    if value is False or (isinstance(value, str) and value.strip().lower() in ("", "0", "false", "no", "off")):
        return None
    if value is True or (isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on")):
        return directory / USAGE_LOG_NAME if directory is not None else None
    return Path(value).expanduser()


def _error_record(exc: UpstreamError) -> dict[str, Any]:
    return {"status": exc.upstream_status, "message": exc.message, "code": exc.code, "param": exc.param,
            "body": scrub_body(to_plain(exc.body)) if exc.body is not None else None}


def _raise_recorded(error: dict[str, Any]) -> None:
    raise UpstreamError(str(error.get("message") or "upstream error (recorded)"),
                        upstream_status=error.get("status"), code=error.get("code"),
                        param=error.get("param"), body=error.get("body"))


class Recorder:
    """Routes outbound calls to the live upstream, to recordings, or both, depending on `mode`."""

    def __init__(self, mode: RecordMode | str, directory: Path | str | None, *,
                 usage_log: str | Path | bool | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown record mode {mode!r}; expected one of {', '.join(MODES)}")
        if mode != "live" and directory is None:
            raise ValueError(f"record mode {mode!r} needs a recordings directory")
        self.mode: str = mode
        self.directory: Path | None = Path(directory).expanduser() if directory is not None else None
        self.store: RecordingStore | None = RecordingStore(self.directory) if self.directory is not None else None
        self.usage_log: Path | None = _usage_log_path(usage_log, self.directory)
        self._secrets: frozenset[str] = frozenset()

    def add_secret(self, value: str | None) -> None:
        """A credential (e.g. a provider's API key) to blank out wherever it appears in a recording."""
        if value and len(value) >= 8:
            self._secrets = self._secrets | {value}

    @classmethod
    def from_config(cls, config: Any) -> Recorder:
        """From a `respond.config.Config` (recording.mode and the resolved recordings dir)."""
        return cls(config.recording.mode, config.resolved_recordings_dir())

    # -- keys ----------------------------------------------------------------------------------------

    def _key(self, req: OutboundRequest) -> _Key:
        test_id = context.test_id.get()
        endpoint = scrub_url(req.endpoint)
        body = scrub_body(to_plain(req.body))
        method = req.method.upper()
        request = {"method": method, "url": scrub_url(req.url), "headers": scrub_headers(req.headers),
                   "body": body, "endpoint": endpoint, "model": req.model}
        return _Key(request_hash(method, endpoint, body, test_id), test_id, method, endpoint, request)

    # -- files ---------------------------------------------------------------------------------------

    async def _find(self, key: _Key) -> dict[str, Any] | None:
        assert self.store is not None
        found = await asyncio.to_thread(self.store.find, key.request_hash)
        if found is None:
            return None
        path, record = found
        log.debug("replaying %s from %s", key.endpoint, path)
        await self._note_used(key.request_hash)
        return record

    def _write_sync(self, key: _Key, response: dict[str, Any], mapping: dict[str, str]) -> None:
        assert self.store is not None
        existing = self.store.find(key.request_hash) if response.get("truncated") else None
        if existing is not None and not (existing[1].get("response") or {}).get("truncated"):
            # a consumer that stopped early must not replace a complete recording of the same request
            log.info("kept the existing recording of %s %s (this run stopped early)", key.method, key.endpoint)
            return
        record = redact_values({"test_id": key.test_id, "request": key.request, "response": response,
                                "id_normalization_mapping": mapping}, self._secrets)
        path = self.store.write(record)
        log.info("recorded %s %s -> %s", key.method, key.endpoint, path.name)
        self._note_used_sync(key.request_hash)

    async def _write(self, key: _Key, response: dict[str, Any], mapping: dict[str, str]) -> None:
        await asyncio.to_thread(self._write_sync, key, response, mapping)

    def _note_used_sync(self, request_hash_: str) -> None:
        if self.usage_log is None:
            return
        self.usage_log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.usage_log, "a", encoding="utf-8") as f:
            f.write(request_hash_ + "\n")

    async def _note_used(self, request_hash_: str) -> None:
        if self.usage_log is not None:
            await asyncio.to_thread(self._note_used_sync, request_hash_)

    async def _missing(self, key: _Key) -> RecordingNotFound:
        assert self.store is not None
        nearest = await asyncio.to_thread(
            self.store.nearest, key.method, key.endpoint, key.request["body"], key.test_id)
        lines = [f"No recording for {key.method} {key.endpoint} (hash {key.request_hash}, "
                 f"test id {key.test_id!r}) in {self.directory} [mode {self.mode}]."]
        nearest_path: str | None = None
        diff_lines: list[str] = []
        if nearest is None:
            where = "this directory" if self.store.directory.is_dir() else "it: the directory does not exist"
            lines.append(f"Nearest recording: none (no recording for {key.method} {key.endpoint} in {where}).")
        else:
            entry, diff_lines = nearest
            nearest_path = str(entry.path)
            lines.append(f"Nearest recording: {entry.path.name} (hash {entry.request_hash}, test id "
                         f"{entry.test_id!r}), {len(diff_lines)} difference(s) (this request != recording):")
            lines.extend(f"  {line}" for line in diff_lines[:_MAX_DIFF_LINES])
            if len(diff_lines) > _MAX_DIFF_LINES:
                lines.append(f"  ... and {len(diff_lines) - _MAX_DIFF_LINES} more")
            if not diff_lines:
                lines.append("  (no body difference found: compare the files with `respond recordings diff`)")
        lines.append("To record it: run with RESPOND_RECORD_MODE=record-if-missing and a live upstream.")
        message = "\n".join(lines)
        log.error("%s", message)
        return RecordingNotFound(message, request_hash=key.request_hash, test_id=key.test_id,
                                 endpoint=key.endpoint, nearest=nearest_path, diff=diff_lines)

    # -- non-streamed calls ---------------------------------------------------------------------------

    async def call(self, req: OutboundRequest, live: Callable[[], Awaitable[Any]],
                   response_type: str | None = None) -> Any:
        """Perform (or replay) one non-streamed call and return its result."""
        if self.mode == "live":
            return await live()
        key = self._key(req)
        if self.mode in ("replay", "record-if-missing"):
            record = await self._find(key)
            if record is not None:
                return self._replay_value(record)
            if self.mode == "replay":
                raise await self._missing(key)
        return await self._record_call(key, live, response_type)

    @staticmethod
    def _replay_value(record: dict[str, Any]) -> Any:
        response = record.get("response") or {}
        if response.get("error"):
            _raise_recorded(response["error"])
        return decode(response.get("body"))

    async def _record_call(self, key: _Key, live: Callable[[], Awaitable[Any]], response_type: str | None) -> Any:
        normalizer = IdNormalizer(key.request_hash)
        try:
            result = await live()
        except UpstreamError as exc:
            if exc.upstream_status is not None:
                await self._write(key, {"body": None, "is_streaming": False, "error": _error_record(exc)}, {})
            else:
                log.warning("not recording %s %s: the upstream gave no answer (%s)", key.method, key.endpoint, exc)
            raise
        value = normalizer.apply_all(to_plain(result))
        await self._write(key, {"body": encode(value, response_type), "is_streaming": False}, normalizer.mapping)
        return value

    # -- streamed calls -------------------------------------------------------------------------------

    def stream(self, req: OutboundRequest, live: Callable[[], AsyncIterator[Any]],
               response_type: str | None = None) -> AsyncIterator[Any]:
        """Perform (or replay) one streamed call; yields its items (e.g. chat completion chunks)."""
        if self.mode == "live":
            return live()
        return self._stream(self._key(req), live, response_type)

    async def _stream(self, key: _Key, live: Callable[[], AsyncIterator[Any]],
                      response_type: str | None) -> AsyncIterator[Any]:
        if self.mode in ("replay", "record-if-missing"):
            record = await self._find(key)
            if record is not None:
                async with aclosing(self._replay_stream(record)) as replayed:
                    async for item in replayed:
                        yield item
                return
            if self.mode == "replay":
                raise await self._missing(key)
        # aclosing: when our consumer stops early, the recording generator (and the upstream) close now.
        async with aclosing(self._record_stream(key, live, response_type)) as recorded:
            async for item in recorded:
                yield item

    @staticmethod
    async def _replay_stream(record: dict[str, Any]) -> AsyncIterator[Any]:
        response = record.get("response") or {}
        body = decode(response.get("body"))
        items = body if isinstance(body, list) else ([] if body is None else [body])
        for item in items:
            yield item
        if response.get("error"):
            _raise_recorded(response["error"])
        if response.get("truncated"):
            raise RecordingIncomplete(
                f"The recorded stream for {record['request'].get('endpoint')} (test id {record.get('test_id')!r}) "
                f"was closed early by its consumer while recording and holds only {len(items)} item(s); "
                "this run reads further. Re-record it.")

    async def _record_stream(self, key: _Key, live: Callable[[], AsyncIterator[Any]],
                             response_type: str | None) -> AsyncIterator[Any]:
        normalizer = IdNormalizer(key.request_hash)
        # Items are serialized as they pass: the consumer may mutate what it receives before we write.
        items: list[bytes] = []
        outcome = "truncated"  # or "complete" / "error" / "unrecorded"
        error: UpstreamError | None = None
        upstream = live()
        try:
            async for raw in upstream:
                item = normalizer.apply(to_plain(raw))
                if isinstance(item, dict):
                    item.pop("obfuscation", None)  # OpenAI's random padding: would churn every re-recording
                items.append(jsonutil.dumpb(item))
                yield item
            outcome = "complete"
        except UpstreamError as exc:
            error = exc
            outcome = "error" if (exc.upstream_status is not None or items) else "unrecorded"
            if outcome == "unrecorded":
                log.warning("not recording %s %s: the upstream gave no answer (%s)", key.method, key.endpoint, exc)
            raise
        except Exception:
            outcome = "unrecorded"
            raise
        finally:
            close = getattr(upstream, "aclose", None)
            if close is not None:
                await close()
            if outcome != "unrecorded":
                stored = [encode(jsonutil.loads(b), response_type) for b in items]
                response: dict[str, Any] = {"body": stored, "is_streaming": True}
                if outcome == "error" and error is not None:
                    response["error"] = _error_record(error)
                if outcome == "truncated":
                    response["truncated"] = True
                # shielded: when the consumer was cancelled the file is still written (off the event loop)
                await asyncio.shield(self._write(key, response, normalizer.mapping))
