"""Background ingestion: parse -> chunk -> embed -> index, never inside an HTTP request.

The queue is the `vector_store_files` table (rows `in_progress`). `IngestWorker` runs in every server
process: it claims one row at a time with a lease (on PostgreSQL `FOR UPDATE SKIP LOCKED`, so several
processes share the work), renews the lease while it works, and finishes the row `completed` or `failed`
(with `last_error`). Work survives a restart: a row whose process died keeps `in_progress`, and its lease
runs out (SQLite: released at start-up, one process per database file) so it is taken again; the chunks
a dead run left are deleted before the file is indexed anew.

Chunks are written in batches of `insert_batch` rows, one transaction each, so the SQLite writer thread
(which also stores responses before their terminal event) never has a long insert in front of a save.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from typing import Any

from respond.files.chunking import chunk_text
from respond.files.parsing import UnsupportedFile, extract_text
from respond.files.service import FileService
from respond.recording import context as recording_context
from respond.storage.vector_stores_repo import VectorStoreRepo
from respond.vector_stores.embedder import Embedder

log = logging.getLogger("respond.ingest")

LEASE_SECONDS = 60.0
IDLE_POLL_SECONDS = 2.0


class StoreMismatch(Exception):
    pass


class IngestWorker:
    def __init__(self, repo: VectorStoreRepo, files: FileService, embedder: Embedder, *, concurrency: int = 1,
                 insert_batch: int = 256, sweep_seconds: float = 60.0, lease_seconds: float = LEASE_SECONDS) -> None:
        self.repo = repo
        self.files = files
        self.embedder = embedder
        self.concurrency = concurrency
        self.insert_batch = insert_batch
        self.sweep_seconds = sweep_seconds
        self.lease_seconds = lease_seconds
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if self.repo.db.is_sqlite:
            released = await self.repo.release_all()
            if released:
                log.info("ingest: resuming %d unfinished file(s)", released)
        self._tasks = [asyncio.create_task(self._run(), name=f"respond-ingest-{i}") for i in range(self.concurrency)]
        self._tasks.append(asyncio.create_task(self._sweep(), name="respond-file-sweep"))

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    async def _run(self) -> None:
        while True:
            try:
                job = await self.repo.claim(self.worker_id, self.lease_seconds)
            except Exception:
                log.exception("ingest: claiming work failed")
                job = None
            if job is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), IDLE_POLL_SECONDS)
                continue
            await self._process(job)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_seconds)
            try:
                await self.files.sweep_expired()
            except Exception:
                log.exception("file sweep failed")

    async def _process(self, job: Any) -> None:
        store_id, file_id, owner = job.vector_store_id, job.file_id, job.owner
        recording_context.test_id.set(job.test_id)
        status, error, usage = "completed", None, 0
        renewer = asyncio.create_task(self._renew(owner, store_id, file_id))
        try:
            usage = await self._index(job)
        except _Abandoned:  # cancelled, detached or its store deleted meanwhile: leave no chunks behind
            current = await self.repo.get_file(owner, store_id, file_id)
            if current is None or current.status != "in_progress":
                await self.repo.delete_chunks(owner, store_id, file_id)
            return
        except UnsupportedFile as exc:
            status, error = "failed", {"code": "unsupported_file", "message": str(exc)}
        except StoreMismatch as exc:
            status, error = "failed", {"code": "invalid_file", "message": str(exc)}
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("ingest: %s in %s failed", file_id, store_id)
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            status, error = "failed", {"code": "server_error", "message": message}
        finally:
            renewer.cancel()
        if status != "completed":
            with contextlib.suppress(Exception):
                await self.repo.delete_chunks(owner, store_id, file_id)
        done = await self.repo.finish(self.worker_id, store_id, file_id, status, error, usage, owner=owner)
        if not done:  # cancelled or detached meanwhile: its chunks must not stay searchable
            current = await self.repo.get_file(owner, store_id, file_id)
            if current is None or current.status == "cancelled":
                await self.repo.delete_chunks(owner, store_id, file_id)

    async def _renew(self, owner: str, store_id: str, file_id: str) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            with contextlib.suppress(Exception):
                await self.repo.renew(self.worker_id, store_id, file_id, self.lease_seconds, owner=owner)

    async def _index(self, job: Any) -> int:
        owner, store_id, file_id = job.owner, job.vector_store_id, job.file_id
        store = await self.repo.get_store(owner, store_id)
        if store is None:
            raise _Abandoned()
        row = await self.files.store.get(owner, file_id)
        if row is None:
            raise UnsupportedFile(f"The file '{file_id}' no longer exists.")
        data = await self.files.blobs.read_all(row.blob_key)
        text = await asyncio.to_thread(extract_text, data, row.filename, row.content_type)
        del data
        static = job.chunking_strategy["static"]
        chunks = await asyncio.to_thread(chunk_text, text, static["max_chunk_size_tokens"],
                                         static["chunk_overlap_tokens"])
        await self.repo.delete_chunks(owner, store_id, file_id)  # what a dead earlier run left
        usage = 0
        checked = False
        for start in range(0, len(chunks), self.insert_batch):
            if not await self.repo.renew(self.worker_id, store_id, file_id, self.lease_seconds, owner=owner):
                raise _Abandoned()
            batch = chunks[start:start + self.insert_batch]
            vectors = await self.embedder.embed(store.embedding_model, [t for t, _ in batch])
            if not checked:
                model, dimension = await self.repo.set_embedding(store_id, store.embedding_model, len(vectors[0]),
                                                                  owner=owner)
                if dimension != len(vectors[0]):
                    raise StoreMismatch(f"The vector store holds {dimension}-dimensional vectors of '{model}'; "
                                        f"this file's embeddings have {len(vectors[0])} dimensions.")
                checked = True
            await self.repo.insert_chunks(owner, store_id, file_id, job.attributes, [
                (start + i, t, n, v) for i, ((t, n), v) in enumerate(zip(batch, vectors, strict=True))])
            usage += sum(len(t.encode()) + 4 * len(v) for (t, _), v in zip(batch, vectors, strict=True))
        return usage


class _Abandoned(Exception):
    """The work was taken away (cancelled, detached, store deleted): stop without finishing it."""
