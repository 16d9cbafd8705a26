"""Searches go through the Recorder: recorded from the stand-ins, replayed with the stand-ins stopped,
keys never in a recording; failures record and replay too; the committed recordings replay offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from respond.errors import UpstreamError
from respond.recording import OutboundRequest, Recorder
from respond.recording.context import use_test_id
from respond.websearch.base import SearchQuery
from respond.websearch.providers import BraveProvider, SearxngProvider, TavilyProvider
from tests.support.search_standins import BRAVE_KEY, TAVILY_KEY, StandinServer

COMMITTED = Path(__file__).resolve().parents[1] / "recordings" / "web_search"
DEAD = "http://127.0.0.1:9"  # nothing listens there: a replay that tried the network would fail


def providers(base: str | None, recorder: Recorder):
    def url(kind: str) -> str:
        return f"{base}/{kind}" if base else DEAD
    return [TavilyProvider(url("tavily"), api_key=TAVILY_KEY, recorder=recorder),
            BraveProvider(url("brave"), api_key=BRAVE_KEY, recorder=recorder),
            SearxngProvider(url("searxng"), recorder=recorder)]


QUERY = SearchQuery("eiffel tower height", allowed_domains=("wikipedia.org",),
                    user_location={"country": "FR", "city": "Paris"}, context_size="high", max_results=4)


async def _run_all(base: str | None, recorder: Recorder) -> dict[str, object]:
    out: dict[str, object] = {}
    for provider in providers(base, recorder):
        try:
            out[provider.name] = [r.to_dict() for r in await provider.search(QUERY)]
            try:
                await provider.search(SearchQuery("rate limited please"))
            except UpstreamError as exc:
                out[provider.name + ":error"] = (exc.upstream_status, exc.message)
        finally:
            await provider.aclose()
    return out


async def test_record_then_replay_with_the_standin_stopped(search_standin: StandinServer, tmp_path: Path) -> None:
    standins = search_standin.standins
    with use_test_id("tests/websearch::record_replay"):
        recorded = await _run_all(f"http://127.0.0.1:{standins.port}", _FailSecond(Recorder("record", tmp_path),
                                                                                   standins))
        live_requests = len(standins.requests)
        search_standin.stop()
        replayed = await _run_all(None, Recorder("replay", tmp_path))
    assert live_requests == 6 and replayed == recorded
    assert [r["url"] for r in recorded["tavily"]] == ["https://en.wikipedia.org/wiki/Eiffel_Tower"]
    assert recorded["brave:error"][0] == 429 and recorded["searxng:error"][0] == 429
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 6
    text = "\n".join(f.read_text() for f in files)
    assert TAVILY_KEY not in text and BRAVE_KEY not in text and "Bearer" not in text
    endpoints = sorted(json.loads(f.read_text())["request"]["endpoint"] for f in files)
    assert endpoints == ["brave:/res/v1/web/search"] * 2 + ["searxng:/search"] * 2 + ["tavily:/search"] * 2


class _FailSecond:
    """A Recorder wrapper that makes the stand-in fail the second search of each provider with a 429."""

    def __init__(self, recorder: Recorder, standins) -> None:
        self.recorder, self.standins, self.seen = recorder, standins, set()

    def add_secret(self, value):
        self.recorder.add_secret(value)

    async def call(self, req, live, response_type=None):
        name = req.model
        if name in self.seen:
            self.standins.fail(name, 429)
        self.seen.add(name)
        return await self.recorder.call(req, live, response_type)


async def test_replay_miss_names_the_nearest_recording(tmp_path: Path) -> None:
    provider = SearxngProvider(DEAD, recorder=Recorder("replay", tmp_path))
    with pytest.raises(Exception, match="No recording for GET searxng:/search"):
        await provider.search(SearchQuery("anything"))
    await provider.aclose()


async def test_keys_in_headers_or_a_legacy_body_never_reach_a_recording(tmp_path: Path) -> None:
    recorder = Recorder("record", tmp_path)
    req = OutboundRequest(method="POST", url="https://api.tavily.com/search", endpoint="tavily:/search",
                          body={"json": {"query": "q", "api_key": "tvly-legacy-secret-123"}},
                          headers={"Authorization": "Bearer tvly-legacy-secret-123",
                                   "X-Subscription-Token": "BSA-secret-123", "X-Loc-City": "Paris"})

    async def live():
        return {"results": [], "echo": "key was tvly-legacy-secret-123"}
    recorder.add_secret("tvly-legacy-secret-123")
    await recorder.call(req, live)
    stored = json.loads(next(tmp_path.glob("*.json")).read_text())
    text = json.dumps(stored)
    assert "tvly-legacy-secret-123" not in text and "BSA-secret-123" not in text
    assert stored["request"]["headers"] == {"X-Loc-City": "Paris"}
    assert stored["request"]["body"] == {"json": {"query": "q"}}


@pytest.mark.parametrize("kind", ["tavily", "brave", "searxng"])
async def test_committed_recordings_replay_offline(kind: str, pytestconfig: pytest.Config,
                                                   request: pytest.FixtureRequest) -> None:
    """tests/recordings/web_search was recorded from the stand-ins (`--record-mode record-if-missing` starts
    them); by default this replays with nothing listening."""
    mode = pytestconfig.getoption("--record-mode")
    server = None
    if mode != "replay":
        server = StandinServer()
        server.start()
    try:
        base = server.standins.base_url(kind) if server else DEAD
        cls = {"tavily": TavilyProvider, "brave": BraveProvider, "searxng": SearxngProvider}[kind]
        key = {"tavily": TAVILY_KEY, "brave": BRAVE_KEY}.get(kind)
        provider = cls(base, api_key=key, recorder=Recorder("live" if mode == "live" else mode, COMMITTED))
        with use_test_id(request.node.nodeid):
            results = await provider.search(SearchQuery("python 3.13 release date", max_results=5))
        await provider.aclose()
    finally:
        if server:
            server.stop()
    assert ["python" in r.url.lower() for r in results] == [True] * 4 + [False]  # then the SQLite page
    assert "https://docs.python.org/3/whatsnew/3.13.html" in [r.url for r in results]
