"""`BlobStore`: where file bytes live. The service only needs these few operations, so an object store
(S3-compatible: multipart upload as the writer, GET as `open`, DELETE) can implement it later; today there
is `LocalBlobStore`, a directory under the data dir.

A write goes to a temporary file that is renamed into place by `commit()` (atomic on one filesystem), so a
reader never sees a half-written blob; `abort()` (or an exception) removes the temporary file.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

READ_CHUNK = 256 * 1024


class BlobWriter(Protocol):
    size: int

    async def write(self, data: bytes) -> None: ...
    async def commit(self) -> None: ...
    async def abort(self) -> None: ...


class BlobStore(Protocol):
    def writer(self, key: str) -> BlobWriter: ...
    def open(self, key: str) -> AsyncIterator[bytes]: ...
    async def read_all(self, key: str) -> bytes: ...
    async def delete(self, key: str) -> None: ...
    async def exists(self, key: str) -> bool: ...


class LocalBlobWriter:
    def __init__(self, final: Path, tmp: Path) -> None:
        self._final = final
        self._tmp = tmp
        self._file = open(tmp, "wb")  # noqa: SIM115 - closed by commit/abort
        self.size = 0

    async def write(self, data: bytes) -> None:
        # Page-cache writes of one network read (<= 64 KiB) take microseconds: no thread hop per piece.
        self._file.write(data)
        self.size += len(data)

    async def commit(self) -> None:
        def finish() -> None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._tmp, self._final)

        await asyncio.to_thread(finish)

    async def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


class LocalBlobStore:
    """Blobs as files in `root` (one per key); temporaries in `root/.tmp`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / ".tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        for stale in self._tmp.iterdir():  # writes cut short by a crash
            stale.unlink(missing_ok=True)

    def path(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"invalid blob key {key!r}")
        return self.root / key

    def writer(self, key: str) -> LocalBlobWriter:
        return LocalBlobWriter(self.path(key), self._tmp / f"{key}.{uuid.uuid4().hex}")

    async def open(self, key: str) -> AsyncIterator[bytes]:
        f = await asyncio.to_thread(open, self.path(key), "rb")
        try:
            while data := await asyncio.to_thread(f.read, READ_CHUNK):
                yield data
        finally:
            f.close()

    async def read_all(self, key: str) -> bytes:
        return await asyncio.to_thread(self.path(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, True)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path(key).exists)
