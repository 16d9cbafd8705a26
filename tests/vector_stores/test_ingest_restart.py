"""Ingestion survives its server process: a server killed (SIGKILL) in the middle of indexing a file leaves
the file `in_progress` with part of its chunks; a new server on the same database takes the work again
(SQLite: at start-up; PostgreSQL: when the dead process's lease runs out), drops the partial chunks and
finishes the file, with every chunk exactly once. Also: a response created while a large file is being
indexed completes while the file is still in progress (the chunk writes do not hold the writer)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest
import yaml

from respond.files.chunking import chunk_text
from tests.support.server import free_port, wait_until_serving
from tests.support.upstream import delay

SRC = Path(__file__).resolve().parents[2] / "src"
WORDS = ("river mountain forest desert ocean valley glacier canyon meadow island volcano prairie "
         "tundra delta lagoon plateau marsh savanna fjord reef").split()


def document(n_words: int) -> str:
    return " ".join(f"{WORDS[i % len(WORDS)]}{i}" for i in range(n_words))


class Subprocess:
    def __init__(self, config_path: Path, log: Path) -> None:
        self.port = free_port()
        env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        self.log = open(log, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "respond.cli", "serve", "--config", str(config_path),
                                      "--port", str(self.port), "--log-format", "text"],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_until_serving(f"http://127.0.0.1:{self.port}", self.proc, log=log.read_text)
        self.client = openai.OpenAI(base_url=f"http://127.0.0.1:{self.port}/v1", api_key="x", max_retries=0)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def write_config(tmp_path: Path, database_url: str, upstream_url: str) -> Path:
    config = {"data_dir": str(tmp_path / "data"), "database_url": database_url, "default_model": "up/scripted",
              "providers": [{"id": "up", "type": "openai", "base_url": upstream_url, "api_key": "k",
                             "models": ["scripted"], "embedding_models": ["scripted-embed"], "timeout": 10}],
              "retrieval": {"chunk_insert_batch": 4, "ingest_lease_seconds": 2,
                            "embedding_model": "up/scripted-embed"}}
    path = tmp_path / "respond.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_restart_mid_ingestion_resumes(tmp_path: Path, database_url: str, upstream) -> None:
    text = document(3000)
    expected = [t for t, _ in chunk_text(text, 100, 0)]
    assert len(expected) >= 40
    upstream.script_embeddings(*[delay(0.15) for _ in range(200)])  # every embeddings call is slow
    config = write_config(tmp_path, database_url, upstream.base_url)
    first = Subprocess(config, tmp_path / "server.log")
    started = []
    try:
        client = first.client
        file_id = client.files.create(file=("long.txt", text.encode()), purpose="assistants").id
        store = client.vector_stores.create(name="restart")
        client.vector_stores.files.create(store.id, file_id=file_id, chunking_strategy={
            "type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0}})
        deadline = time.monotonic() + 60
        while not client.vector_stores.files.content(file_id, vector_store_id=store.id).data:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        partial = len(client.vector_stores.files.content(file_id, vector_store_id=store.id).data)
        vs_file = client.vector_stores.files.retrieve(file_id, vector_store_id=store.id)
        first.kill()  # ~0.15 s per 4 chunks: the file is far from done
        assert vs_file.status == "in_progress" and 0 < partial < len(expected)

        second = Subprocess(config, tmp_path / "server.log")
        started.append(second)
        client = second.client
        deadline = time.monotonic() + 120
        while (vs_file := client.vector_stores.files.retrieve(file_id, vector_store_id=store.id)).status == "in_progress":
            assert time.monotonic() < deadline, "the file was not resumed"
            time.sleep(0.1)
        assert vs_file.status == "completed", vs_file.last_error
        chunks = [p.text for p in client.vector_stores.files.content(file_id, vector_store_id=store.id).data]
        assert chunks == expected  # every chunk once, in order: the partial run's chunks were replaced
        hits = client.vector_stores.search(store.id, query=expected[7].split()[3])
        assert hits.data and hits.data[0].file_id == file_id
        assert client.vector_stores.retrieve(store.id).file_counts.completed == 1
    finally:
        first.stop()
        for server in started:
            server.stop()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_responses_are_saved_while_a_big_file_is_indexed(tmp_path: Path, database_url: str, upstream) -> None:
    text = document(60_000)  # ~1,400 chunks of 100 tokens: hundreds of chunk write batches
    upstream.script_embeddings(*[delay(0.02) for _ in range(400)])
    server = Subprocess(write_config(tmp_path, database_url, upstream.base_url), tmp_path / "server.log")
    try:
        client = server.client
        file_id = client.files.create(file=("big.txt", text.encode()), purpose="assistants").id
        store = client.vector_stores.create(name="big")
        client.vector_stores.files.create(store.id, file_id=file_id, chunking_strategy={
            "type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0}})
        while not client.vector_stores.files.content(file_id, vector_store_id=store.id).data:
            time.sleep(0.02)
        for i in range(3):
            response = client.responses.create(model="up/scripted", input=f"hello {i}")
            assert response.status == "completed"
            assert client.responses.retrieve(response.id).output_text == f"echo: hello {i}"
        assert client.vector_stores.files.retrieve(file_id, vector_store_id=store.id).status == "in_progress"
    finally:
        server.stop()
