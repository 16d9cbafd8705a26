"""Library mode: `respond.client()` gives openai clients bound in-process to a Respond app (no socket).

Each test builds its own app on a tmp data dir (a real SQLite file) with the scripted upstream as provider.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import openai
import pytest

import respond
from respond.config import Config
from respond.library import make_client
from tests.support.conformance import validate_response
from tests.support.server import make_config, scripted_provider
from tests.support.upstream import reply

MODEL = "up/scripted"


@pytest.fixture
def config(upstream: Any, tmp_path: Path) -> Config:
    return make_config(tmp_path / "data", [scripted_provider(upstream)])


def stored_ids(config: Config) -> set[str]:
    """Response ids in the app's SQLite file, read directly (not through the app)."""
    with sqlite3.connect(config.data_path / "respond.db") as db:
        tables = {name for (name,) in db.execute("select name from sqlite_master where type='table'")}
        table = next(t for t in ("responses", "response") if t in tables)
        return {row[0] for row in db.execute(f"select id from {table}")}


def test_sync_client_create_stream_retrieve(config: Config, upstream: Any) -> None:
    upstream.script(reply("Sat", "urn."), reply("one", " two", " three", chunk_delay=0.3))
    client = respond.client(config)
    assert isinstance(client, openai.OpenAI)
    with client:
        raw = client.responses.with_raw_response.create(model=MODEL, input="Which planet has rings?")
        validate_response(raw.http_response.json())
        created = raw.parse()
        assert created.status == "completed" and created.output_text == "Saturn."
        assert upstream.last_chat["messages"] == [{"role": "user", "content": "Which planet has rings?"}]

        arrivals: list[tuple[float, str]] = []
        start = time.monotonic()
        with client.responses.create(model=MODEL, input="Count.", stream=True,
                                     previous_response_id=created.id) as stream:
            for event in stream:
                arrivals.append((time.monotonic() - start, event.type))
                if event.type == "response.completed":
                    final = event.response
        types = [t for _, t in arrivals]
        assert types[0] == "response.created" and types[-1] == "response.completed"
        assert types.count("response.output_text.delta") == 3
        # streamed as produced, not buffered: the first delta came well before the end
        first_delta = next(at for at, t in arrivals if t == "response.output_text.delta")
        assert arrivals[-1][0] - first_delta > 0.45
        assert final.output_text == "one two three"

        got = client.responses.retrieve(final.id)
        assert got.output_text == "one two three" and got.previous_response_id == created.id
        items = client.responses.input_items.list(final.id)
        assert [i.content[0].text for i in items.data] == ["Count."]
        with pytest.raises(openai.BadRequestError) as err:
            client.responses.create(model="nowhere/none", input="x")
        assert err.value.body["code"] == "model_not_found"
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve("resp_missing")
    assert {created.id, final.id} <= stored_ids(config)


def test_close_stops_the_app_and_data_persists(config: Config, upstream: Any) -> None:
    upstream.script(reply("Kept."))
    client = make_client(config)
    transport = client._client._transport  # the in-process transport (no socket)
    first = client.responses.create(model=MODEL, input="Remember this.")
    assert transport.runner.started
    client.close()
    assert not transport.runner.started and transport.runner.closed
    with pytest.raises(RuntimeError, match="closed"):
        client.responses.retrieve(first.id)
    # a new app on the same data dir reads what the first one stored
    with make_client(config) as again:
        assert again.responses.retrieve(first.id).output_text == "Kept."


def test_sync_stream_closed_early_cancels_the_response(config: Config, upstream: Any) -> None:
    upstream.script(reply("a", "b", "c", "d", "e", "f", chunk_delay=0.4))
    with make_client(config) as client:
        with client.responses.create(model=MODEL, input="Talk slowly.", stream=True) as stream:
            for event in stream:
                if event.type == "response.created":
                    response_id = event.response.id
                if event.type == "response.output_text.delta":
                    break
        asyncio.run(upstream.wait_disconnected(timeout=10))
        assert client.responses.retrieve(response_id).status == "cancelled"


async def test_async_client_create_stream_retrieve(config: Config, upstream: Any) -> None:
    upstream.script(reply("Hel", "lo."), reply("x", "y", "z", chunk_delay=0.3))
    client = respond.client(config, async_client=True)
    assert isinstance(client, openai.AsyncOpenAI)
    async with client:
        raw = await client.responses.with_raw_response.create(model=MODEL, input="Say hello.")
        validate_response(raw.http_response.json())
        created = raw.parse()
        assert created.output_text == "Hello."

        arrivals: list[tuple[float, str]] = []
        start = time.monotonic()
        stream = await client.responses.create(model=MODEL, input="Letters.", stream=True)
        async for event in stream:
            arrivals.append((time.monotonic() - start, event.type))
            if event.type == "response.completed":
                final = event.response
        first_delta = next(at for at, t in arrivals if t == "response.output_text.delta")
        assert arrivals[-1][0] - first_delta > 0.45
        assert final.output_text == "xyz"

        got = await client.responses.retrieve(final.id)
        assert got.output_text == "xyz"
        deleted = await client.responses.delete(created.id)
        assert deleted is None or getattr(deleted, "deleted", True)
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(created.id)
        with pytest.raises(openai.BadRequestError):
            await client.responses.create(model=MODEL, input="x", temperature=9)
    transport = client._client._transport
    assert transport.runner.closed and not transport.runner.started
    assert final.id in stored_ids(config) and created.id not in stored_ids(config)


async def test_async_concurrent_requests_share_one_app(config: Config, upstream: Any) -> None:
    async with make_client(config, async_client=True) as client:
        results = await asyncio.gather(*(client.responses.create(model=MODEL, input=f"n{i}") for i in range(4)))
    assert sorted(r.output_text for r in results) == [f"echo: n{i}" for i in range(4)]
    assert len({r.id for r in results}) == 4
