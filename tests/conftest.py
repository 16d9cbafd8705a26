"""Shared fixtures. Each support module registers its own fixtures as a pytest plugin."""

import os

pytest_plugins = [
    "tests.support.pg",
    "tests.support.upstream",
    "tests.support.server",
    "tests.support.recorded",
    "tests.support.search_standins",
    "tests.support.mcp_server",
]


def pytest_addoption(parser):
    parser.addoption(
        "--record-mode", default=os.environ.get("RESPOND_RECORD_MODE") or "replay",
        choices=["live", "record", "replay", "record-if-missing"],
        help="how tests/recorded reaches real models: replay the committed recordings (default, offline), "
             "record them again, or go live (default: $RESPOND_RECORD_MODE or replay)")
