"""Shared fixtures. Each support module registers its own fixtures as a pytest plugin."""

pytest_plugins = [
    "tests.support.pg",
    "tests.support.upstream",
    "tests.support.server",
]
