"""The ingestion worker while it works: cancelling a batch or deleting the store mid-file stops the work and
leaves no chunk behind; file_counts and status move as it goes."""

from __future__ import annotations

import sqlite3
import time

from respond.config import RetrievalConfig
from tests.support.server import scripted_provider
from tests.support.upstream import delay
from tests.vector_stores.test_ingest_restart import document

SLOW = {"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0}}


def test_cancel_and_delete_mid_file_leave_nothing(make_server, upstream) -> None:
    upstream.script_embeddings(*[delay(0.1) for _ in range(400)])
    running = make_server([scripted_provider(upstream)], retrieval=RetrievalConfig(
        chunk_insert_batch=4, embedding_model="up/scripted-embed"))
    client = running.client()
    text = document(3000).encode()
    store = client.vector_stores.create(name="cancel")
    file_id = client.files.create(file=("a.txt", text), purpose="assistants").id
    batch = client.vector_stores.file_batches.create(store.id, files=[{"file_id": file_id, "chunking_strategy": SLOW}])
    deadline = time.monotonic() + 30
    while not client.vector_stores.files.content(file_id, vector_store_id=store.id).data:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    moving = client.vector_stores.retrieve(store.id)
    assert moving.status == "in_progress" and moving.file_counts.in_progress == 1
    assert client.vector_stores.file_batches.cancel(batch.id, vector_store_id=store.id).status == "cancelled"
    deadline = time.monotonic() + 30
    while client.vector_stores.files.content(file_id, vector_store_id=store.id).data:
        assert time.monotonic() < deadline, "the cancelled file's chunks stayed"
        time.sleep(0.05)
    done = client.vector_stores.retrieve(store.id)
    assert done.status == "completed" and done.file_counts.cancelled == 1 and done.file_counts.in_progress == 0
    assert client.vector_stores.search(store.id, query="river1").data == []

    # deleting the store mid-file: the worker stops and the store's chunks are gone
    other = client.vector_stores.create(name="deleted")
    client.vector_stores.files.create(other.id, file_id=file_id, chunking_strategy=SLOW)
    while not client.vector_stores.files.content(file_id, vector_store_id=other.id).data:
        time.sleep(0.05)
    client.vector_stores.delete(other.id)
    database = sqlite3.connect(running.config.data_path / "respond.db")
    deadline = time.monotonic() + 30
    while left := database.execute("SELECT count(*) FROM vector_store_chunks WHERE vector_store_id = ?",
                                   (other.id,)).fetchone()[0]:
        assert time.monotonic() < deadline, f"{left} chunks of the deleted store stayed"
        time.sleep(0.1)
    database.close()
