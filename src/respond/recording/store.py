"""Recording files on disk: one `<hash>.json` per request, plus an index by *computed* hash.

Lookup never trusts a file name: the index maps the hash recomputed from each file's stored request to
the file, so recordings made by other tools (other names, other hash functions) replay as-is once copied
into the directory. The index is built on first use and refreshed incrementally (new or changed files are
parsed, vanished ones dropped) whenever a hash is not found or an indexed file has disappeared.

All methods here are blocking; the recorder calls them through `asyncio.to_thread`.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from respond import jsonutil
from respond.recording.diff import diff
from respond.recording.hashing import normalize, request_hash
from respond.recording.scrub import scrub_body, scrub_url

log = logging.getLogger("respond.recording")


@dataclass(frozen=True)
class Entry:
    """One recording file, summarized for lookups and listings."""

    path: Path
    request_hash: str
    test_id: str | None
    method: str
    endpoint: str
    model: str | None
    body: Any
    is_streaming: bool
    has_error: bool
    mtime_ns: int


def record_hash(record: dict[str, Any]) -> str:
    """The hash of a recording, recomputed from its stored request (never from its file name)."""
    req = record.get("request") or {}
    return request_hash(str(req.get("method") or "POST"), scrub_url(str(req.get("endpoint") or "")),
                        scrub_body(req.get("body")), record.get("test_id"))


def read_record(path: Path) -> dict[str, Any] | None:
    try:
        data = jsonutil.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("skipping unreadable recording %s: %s", path, exc)
        return None
    if not isinstance(data, dict) or not isinstance(data.get("request"), dict) or "response" not in data:
        log.warning("skipping %s: not a recording (needs 'request' and 'response')", path)
        return None
    return data


def write_json_atomic(path: Path, data: Any) -> None:
    """Write pretty JSON (indent 2, trailing newline) via a temp file + rename: readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:16]}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def make_entry(path: Path, record: dict[str, Any], mtime_ns: int) -> Entry:
    req = record["request"]
    response = record.get("response") or {}
    return Entry(path=path, request_hash=record_hash(record), test_id=record.get("test_id"),
                 method=str(req.get("method") or "POST").upper(), endpoint=str(req.get("endpoint") or ""),
                 model=req.get("model"), body=scrub_body(req.get("body")),
                 is_streaming=bool(response.get("is_streaming")), has_error=bool(response.get("error")),
                 mtime_ns=mtime_ns)


class RecordingStore:
    """The recordings directory: find by hash, write, list, and explain misses."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory).expanduser()
        self._lock = threading.Lock()
        self._by_path: dict[Path, Entry] = {}
        self._by_hash: dict[str, Entry] = {}
        self._scanned = False

    def path_for(self, request_hash_: str) -> Path:
        return self.directory / f"{request_hash_}.json"

    # -- index ---------------------------------------------------------------------------------------

    def _files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.rglob("*.json") if not p.name.startswith("."))

    def _rehash(self) -> None:
        by_hash: dict[str, Entry] = {}
        for entry in sorted(self._by_path.values(), key=lambda e: str(e.path)):
            current = by_hash.get(entry.request_hash)
            own_name = entry.path.name == f"{entry.request_hash}.json"
            if current is None or (own_name and current.path.name != f"{current.request_hash}.json"):
                by_hash[entry.request_hash] = entry
        self._by_hash = by_hash

    def refresh(self) -> None:
        """Bring the index up to date with the directory (parses only new or modified files)."""
        with self._lock:
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        seen: dict[Path, Entry] = {}
        for path in self._files():
            try:
                mtime = path.stat().st_mtime_ns
            except FileNotFoundError:
                continue
            known = self._by_path.get(path)
            if known is not None and known.mtime_ns == mtime:
                seen[path] = known
                continue
            record = read_record(path)
            if record is not None:
                seen[path] = make_entry(path, record, mtime)
        self._by_path = seen
        self._rehash()
        self._scanned = True

    def entries(self) -> list[Entry]:
        self.refresh()
        with self._lock:
            return sorted(self._by_path.values(), key=lambda e: str(e.path))

    # -- lookup --------------------------------------------------------------------------------------

    def find(self, request_hash_: str) -> tuple[Path, dict[str, Any]] | None:
        """The recording whose stored request hashes to `request_hash_`, or None."""
        own = self.path_for(request_hash_)
        record = read_record(own) if own.exists() else None
        if record is not None and record_hash(record) == request_hash_:
            return own, record
        with self._lock:
            if not self._scanned:
                self._refresh_locked()
            entry = self._by_hash.get(request_hash_)
            if entry is None or not entry.path.exists():
                self._refresh_locked()
                entry = self._by_hash.get(request_hash_)
        if entry is None:
            return None
        record = read_record(entry.path)
        if record is None or record_hash(record) != request_hash_:
            return None
        return entry.path, record

    def nearest(self, method: str, endpoint: str, body: Any, test_id: str | None) -> tuple[Entry, list[str]] | None:
        """The closest recording for the same method + endpoint: same test id first, then fewest differences."""
        best: tuple[tuple[int, int, str], Entry, list[str]] | None = None
        wanted = normalize(body)
        for entry in self.entries():
            if entry.endpoint != endpoint or entry.method != method.upper():
                continue
            lines = diff(wanted, normalize(entry.body))
            if entry.test_id != test_id:
                lines = [f"test_id: {test_id!r} != {entry.test_id!r}", *lines]
            score = (0 if entry.test_id == test_id else 1, len(lines), str(entry.path))
            if best is None or score < best[0]:
                best = (score, entry, lines)
        return (best[1], best[2]) if best else None

    # -- writing -------------------------------------------------------------------------------------

    def write(self, record: dict[str, Any]) -> Path:
        """Store `record` as `<hash>.json`; other files holding the same request are removed (re-recorded)."""
        request_hash_ = record_hash(record)
        path = self.path_for(request_hash_)
        write_json_atomic(path, record)
        with self._lock:
            if not self._scanned:
                self._refresh_locked()
            for other in [e for e in self._by_path.values() if e.request_hash == request_hash_ and e.path != path]:
                try:
                    other.path.unlink()
                    log.info("re-recorded %s: removed the older copy %s", path.name, other.path)
                except OSError as exc:
                    log.warning("could not remove the older recording %s: %s", other.path, exc)
                self._by_path.pop(other.path, None)
            self._by_path[path] = make_entry(path, record, path.stat().st_mtime_ns)
            self._rehash()
        return path
