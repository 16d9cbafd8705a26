"""Assembles the FastAPI application: services at start-up, routers, error handlers, test-id header."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from respond import __version__, ids
from respond.api import (
    admin,
    chat,
    conversations,
    embeddings,
    files,
    models,
    openapi,
    responses,
    responses_ws,
    vector_stores,
)
from respond.api.auth import AuthMiddleware
from respond.api.errors import install_error_handlers
from respond.config import Config, load_config
from respond.recording import context as recording_context
from respond.redact import redactor
from respond.services import Services

log = logging.getLogger("respond")

TEST_ID_HEADER = recording_context.HEADER.lower().encode()


class TestIdMiddleware:
    """Reads `X-Respond-Test-Id`: recordings are keyed by it and ids become deterministic per test.

    Installed only when recording/replaying or when `test_id_header` is set: in live service a client must
    not be able to make ids predictable.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.sequences = ids.IdSequences()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            test_id = next((v.decode() for k, v in scope["headers"] if k == TEST_ID_HEADER), None)
            recording_context.test_id.set(test_id)
            ids.use_sequence(self.sequences.for_test(test_id))
        await self.app(scope, receive, send)


CONFIG_ENV = "RESPOND_SERVE_CONFIG"  # `respond serve --workers N` hands the config to its processes in it


def create_app_from_env() -> FastAPI:
    """The app of one `respond serve --workers N` process (uvicorn imports it by name in each process)."""
    import os

    from respond.logs import setup_logging

    # taken out of the environment at once: it holds every credential, and nothing this process starts (the
    # embedded model's workers) should inherit it
    config = Config.model_validate_json(os.environ.pop(CONFIG_ENV))
    setup_logging(config.log_level, "json")
    return create_app(config)


def create_app(config: Config | None = None, *, trusted: bool = False) -> FastAPI:
    """The app. `trusted`: every request acts as the implicit owner without credentials (library mode,
    where the caller is the process itself)."""
    config = config or load_config()
    redactor.register_config(config)  # no provider key reaches a client, the database or a log line

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await Services.start(config)
        app.state.services = services
        log.info("respond %s ready: models via %s, storage %s, recording %s, auth %s", __version__,
                 ", ".join(p.id for p in config.providers), services.db.dialect, config.recording.mode,
                 "off" if trusted or not config.auth.active else "on")
        try:
            yield
        finally:
            await services.close()

    app = FastAPI(title="Respond", version=__version__, lifespan=lifespan, docs_url="/docs",
                  redoc_url=None)
    app.state.max_request_bytes = config.max_request_bytes  # read_json and WebSocket frames enforce it
    install_error_handlers(app)
    for module in (responses, responses_ws, conversations, chat, embeddings, models, files, vector_stores, admin):
        app.include_router(module.router)
    openapi.install(app)  # the request-body schemas the handlers' read_json hides from FastAPI

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(AuthMiddleware, public_paths=config.auth.public_paths, trusted=trusted)
    if config.honours_test_ids:
        app.add_middleware(TestIdMiddleware)
    return app
