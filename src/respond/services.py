"""The services one app instance owns, built once at start-up and closed at shutdown."""

from __future__ import annotations

from dataclasses import dataclass

from respond.config import Config
from respond.conversations import ConversationService
from respond.inference.factory import build_providers
from respond.inference.router import Router
from respond.recording.provider import RecordingProvider
from respond.recording.recorder import Recorder
from respond.responses.history import History
from respond.responses.runs import Runs
from respond.responses.service import ResponseService
from respond.responses.tools import ToolEnv
from respond.storage.conversations_repo import ConversationStore
from respond.storage.engine import Database
from respond.storage.responses_repo import ResponseStore
from respond.storage.runs_repo import RunStore


@dataclass
class Services:
    config: Config
    db: Database
    recorder: Recorder
    router: Router
    responses: ResponseService
    conversations: ConversationService
    runs: Runs

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
        responses = ResponseService(router, history.responses, history, ToolEnv(config, recorder, router=router, db=db))
        runs = Runs(responses, RunStore(db, history.responses), config.background)
        await runs.start()  # ends the runs of dead processes, then works the background queue
        return cls(config=config, db=db, recorder=recorder, router=router, responses=responses,
                   conversations=ConversationService(conversations), runs=runs)

    async def close(self) -> None:
        await self.runs.close()
        await self.router.aclose()
        await self.db.close()
