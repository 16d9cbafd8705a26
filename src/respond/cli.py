"""The `respond` command: serve, models, db, recordings."""

from __future__ import annotations

import argparse
import asyncio
import sys

from respond import __version__
from respond.config import ConfigError, load_config

EXIT_CONFIG_ERROR = 2


def _config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML config file (default: $RESPOND_CONFIG)")
    parser.add_argument("--data-dir", help="where the database and recordings live (default: $RESPOND_DATA_DIR "
                                           "or ~/.respond)")
    parser.add_argument("--record-mode", choices=["live", "record", "replay", "record-if-missing"],
                        help="record/replay outbound calls (default: $RESPOND_RECORD_MODE or live)")
    parser.add_argument("--recordings", help="recordings directory (default: <data-dir>/recordings)")


def _load(args: argparse.Namespace, **extra):
    return load_config(args.config, data_dir=args.data_dir, record_mode=args.record_mode,
                       recordings_dir=args.recordings, **extra)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from respond.app import create_app
    from respond.logs import setup_logging

    config = _load(args, host=args.host, port=args.port)
    setup_logging(config.log_level, args.log_format)
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_config=None,
                access_log=False, timeout_graceful_shutdown=5, ws_max_size=config.max_request_bytes)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from respond.services import Services

    config = _load(args)

    async def run() -> list[dict]:
        services = await Services.start(config)
        try:
            return await services.router.list_models()
        finally:
            await services.close()

    for model in asyncio.run(run()):
        print(f"{model['id']}\t{model.get('kind', 'llm')}")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from respond.storage.engine import Database
    from respond.storage.migrate import head

    config = _load(args)

    async def run() -> str | None:
        config.data_path.mkdir(parents=True, exist_ok=True)
        db = Database(config.resolved_database_url())
        try:
            return await (db.upgrade() if args.action == "upgrade" else db.schema_revision())
        finally:
            await db.close()

    revision = asyncio.run(run())
    print(f"{revision or '(empty)'}\t{'head' if revision == head() else 'behind ' + head()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "recordings":
        from respond.recording.cli import main as recordings_main

        return recordings_main(argv[1:]) or 0
    parser = argparse.ArgumentParser(prog="respond", description="An OpenAI Responses API server.")
    parser.add_argument("--version", action="version", version=f"respond {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP server")
    _config_args(serve)
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8321)")
    serve.add_argument("--log-format", choices=["json", "text"], default="json")
    serve.set_defaults(func=cmd_serve)
    models = sub.add_parser("models", help="list the models the configured providers serve")
    _config_args(models)
    models.set_defaults(func=cmd_models)
    db = sub.add_parser("db", help="the database schema: `upgrade` it to the newest migration (also done "
                                   "on start), or show the `current` revision")
    db.add_argument("action", choices=["upgrade", "current"])
    _config_args(db)
    db.set_defaults(func=cmd_db)
    sub.add_parser("recordings", help="list, show, find, diff, prune and re-normalize recordings "
                                      "(respond recordings --help)")
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"respond: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR


if __name__ == "__main__":
    sys.exit(main())
