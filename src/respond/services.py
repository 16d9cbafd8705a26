"""The services one app instance owns, built once at start-up and closed at shutdown."""

from __future__ import annotations

from dataclasses import dataclass

from respond.auth import Authenticator
from respond.config import Config
from respond.conversations import ConversationService
from respond.files.blobs import LocalBlobStore
from respond.files.service import FileService
from respond.inference.factory import build_providers
from respond.inference.router import Router
from respond.recording.provider import RecordingProvider
from respond.recording.recorder import Recorder
from respond.responses.history import History
from respond.responses.runs import Runs
from respond.responses.sealing import ReasoningSealer
from respond.responses.service import ResponseService
from respond.responses.tools import ToolEnv
from respond.storage.api_keys_repo import ApiKeyStore
from respond.storage.conversations_repo import ConversationStore
from respond.storage.engine import Database
from respond.storage.files_repo import FileStore
from respond.storage.responses_repo import ResponseStore
from respond.storage.runs_repo import RunStore
from respond.storage.vector_stores_repo import VectorStoreRepo
from respond.vector_stores.embedder import Embedder
from respond.vector_stores.ingest import IngestWorker
from respond.vector_stores.service import VectorStoreService


@dataclass
class Services:
    config: Config
    db: Database
    recorder: Recorder
    router: Router
    responses: ResponseService
    conversations: ConversationService
    runs: Runs
    files: FileService | None = None
    vector_stores: VectorStoreService | None = None
    ingest: IngestWorker | None = None
    auth: Authenticator | None = None

    @classmethod
    async def start(cls, config: Config) -> Services:
        config.data_path.mkdir(parents=True, exist_ok=True)
        db = Database(config.resolved_database_url())
        await db.upgrade()  # migrations run on start
        recorder = Recorder.from_config(config)
        providers = build_providers(config)
        if recorder.mode != "live":
            providers = [RecordingProvider(p, recorder, base_url=getattr(p, "base_url", f"local://{p.id}"))
                         for p in providers]
        router = Router(providers, config.default_model)
        await router.refresh()  # at start-up, outside any test id: discovery is recorded once
        conversations = ConversationStore(db)
        history = History(ResponseStore(db), conversations)
        tool_env = ToolEnv(config, recorder, router=router, db=db)
        responses = ResponseService(router, history.responses, history, tool_env,
                                    sealer=ReasoningSealer.from_config(config.reasoning_key, config.data_path))
        runs = Runs(responses, RunStore(db, history.responses), config.background)
        services = cls(config=config, db=db, recorder=recorder, router=router, responses=responses,
                       conversations=ConversationService(conversations), runs=runs)
        services.auth = Authenticator(config.auth, ApiKeyStore(db))
        await services._start_retrieval()
        tool_env.state["vector_stores"] = services.vector_stores  # for the file_search tool
        tool_env.state["files"] = services.files  # input_file parts with a file_id
        await runs.start()  # ends the runs of dead processes, then works the background queue
        return services

    async def _start_retrieval(self) -> None:
        """Files, vector stores and the background ingestion worker (tables: migration 0003_files)."""
        retrieval = self.config.retrieval
        self.files = FileService(FileStore(self.db), LocalBlobStore(self.config.data_path / "files"),
                                 max_bytes=retrieval.max_upload_bytes)
        repo = VectorStoreRepo(self.db)
        embedder = Embedder(self.router)
        self.ingest = IngestWorker(repo, self.files, embedder, concurrency=retrieval.ingest_concurrency,
                                   insert_batch=retrieval.chunk_insert_batch,
                                   lease_seconds=retrieval.ingest_lease_seconds)
        self.vector_stores = VectorStoreService(repo, self.files, embedder, self.ingest, retrieval.embedding_model)
        await self.ingest.start()

    async def close(self) -> None:
        await self.runs.close()
        if self.auth is not None:
            await self.auth.close()
        if self.ingest is not None:
            await self.ingest.stop()
        if self.vector_stores is not None:
            await self.vector_stores.repo.close()
        await self.router.aclose()
        await self.db.close()
