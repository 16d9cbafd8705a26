"""The web_search tool end to end: the openai SDK against the real server, the scripted upstream standing in
for the model, and search providers replayed from tests/recordings/web_search (recorded from the loopback
stand-ins in tests/support/search_standins.py; by default nothing listens at the providers' URLs, so every
search here is an offline replay). Re-record: `pytest tests/api/test_web_search.py --record-mode record`.

Tests that need a live provider (timeouts, an unreachable one, concurrency, external_web_access) start a
stand-in of their own and a server in `live` mode.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import openai
import pytest

from respond.config import WebSearchConfig, load_config
from tests.api.wire import create, post_stream, retrieve
from tests.support.conformance import validate_error_envelope, validate_item, validate_stream
from tests.support.search_standins import BRAVE_KEY, TAVILY_KEY, StandinServer
from tests.support.server import make_config, scripted_provider, start_server
from tests.support.upstream import reply, tool_call

MODEL = "up/scripted"
RECORDINGS = Path(__file__).resolve().parents[1] / "recordings" / "web_search"
DEAD = "http://127.0.0.1:9"
PROVIDERS = ("searxng", "tavily", "brave")
KEYS = {"tavily": TAVILY_KEY, "brave": BRAVE_KEY}
WS = {"type": "web_search"}


class Searching:
    """A server per provider, searches recorded / replayed in tests/recordings/web_search."""

    def __init__(self, upstream_server: Any, mode: str) -> None:
        self.mode = mode
        self.standin: StandinServer | None = None
        if mode != "replay":
            self.standin = StandinServer()
            self.standin.start()
        self.tmp = tempfile.TemporaryDirectory(prefix="respond-ws-")
        self.servers = {}
        for kind in PROVIDERS:
            base = self.standin.standins.base_url(kind) if self.standin else f"{DEAD}/{kind}"
            ws = WebSearchConfig(provider=kind, base_url=base, api_key=KEYS.get(kind), timeout=5,
                                 record_mode=mode, recordings_dir=str(RECORDINGS))
            self.servers[kind] = start_server(make_config(Path(self.tmp.name) / kind,
                                                          [scripted_provider(upstream_server.upstream)],
                                                          web_search=ws))

    def fail(self, kind: str, status: int) -> None:
        """Make the provider fail the next search (when recording; a replay answers the recorded failure)."""
        if self.standin is not None:
            self.standin.standins.fail(kind, status)

    def close(self) -> None:
        for running in self.servers.values():
            running.stop()
        if self.standin is not None:
            self.standin.stop()
        self.tmp.cleanup()


@pytest.fixture(scope="module")
def searching(upstream_server: Any, pytestconfig: pytest.Config) -> Any:
    mode = pytestconfig.getoption("--record-mode")
    s = Searching(upstream_server, mode)
    yield s
    s.close()


def client_for(searching: Searching, kind: str, request: pytest.FixtureRequest) -> openai.OpenAI:
    return searching.servers[kind].client(request.node.nodeid)


def recorded_searches(test_id: str) -> list[dict[str, Any]]:
    """The provider requests recorded for one test (what respond sent; the replay matched them exactly)."""
    out = []
    for path in sorted(RECORDINGS.glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("test_id") == test_id:
            out.append(record["request"])
    return out


def search(query: str, call_id: str = "call_ws1") -> Any:
    return tool_call("web_search", {"query": query}, id=call_id)


def tool_message(body: dict[str, Any], call_id: str = "call_ws1") -> str:
    (msg,) = [m for m in body["messages"] if m["role"] == "tool" and m["tool_call_id"] == call_id]
    return msg["content"]


# -- the happy path, per provider ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", PROVIDERS)
def test_search_then_a_cited_answer(searching: Searching, upstream, kind: str,
                                    request: pytest.FixtureRequest) -> None:
    client = client_for(searching, kind, request)
    answer = "The Eiffel Tower is 330 metres tall [1]. It opened in 1889 [1][2]."
    upstream.script(reply(search("eiffel tower height")), reply(answer))
    r = create(client, model=MODEL, input="How tall is the Eiffel Tower?", tools=[WS])
    assert r.status == "completed" and [i.type for i in r.output] == ["web_search_call", "message"]
    call = r.output[0]
    validate_item(call.model_dump())
    assert call.id.startswith("ws_") and call.status == "completed"
    assert call.action.type == "search" and call.action.query == "eiffel tower height"
    assert call.action.sources is None and "results" not in call.model_dump()  # not included unless asked
    # what the model read: numbered sources
    text = tool_message(upstream.chat_bodies[1])
    assert text.startswith('Web search results for "eiffel tower height"')
    assert "\n[1] Eiffel Tower - Wikipedia\nURL: https://en.wikipedia.org/wiki/Eiffel_Tower" in text
    assert "\n[2] Official Eiffel Tower website\nURL: https://www.toureiffel.paris/en" in text
    first = upstream.chat_bodies[0]
    assert first["tools"] == [{"type": "function", "function": {
        "name": "web_search", "description": first["tools"][0]["function"]["description"],
        "parameters": {"type": "object", "properties": {"query": {
            "type": "string", "description": "The search query, as you would type it into a search engine."}},
            "required": ["query"], "additionalProperties": False}}}]
    # the citations: exact ranges in the final text
    part = r.output[1].content[0]
    assert part.text == answer and r.output_text == answer
    cites = [(a.type, a.url, a.title, part.text[a.start_index:a.end_index]) for a in part.annotations]
    wiki = ("url_citation", "https://en.wikipedia.org/wiki/Eiffel_Tower", "Eiffel Tower - Wikipedia", "[1]")
    official = ("url_citation", "https://www.toureiffel.paris/en", "Official Eiffel Tower website", "[2]")
    assert cites == [wiki, wiki, official]
    assert r.tools[0].type == "web_search" and r.tools[0].search_context_size == "medium"
    (sent,) = recorded_searches(request.node.nodeid)
    assert sent["endpoint"] == {"searxng": "searxng:/search", "tavily": "tavily:/search",
                                "brave": "brave:/res/v1/web/search"}[kind]
    assert TAVILY_KEY not in json.dumps(sent) and BRAVE_KEY not in json.dumps(sent)
    assert retrieve(client, r.id).output[1].content[0].annotations == part.annotations


# -- filters, location, context size ---------------------------------------------------------------------

FILTERED = {"type": "web_search", "filters": {"allowed_domains": ["https://wikipedia.org/"]},
            "user_location": {"type": "approximate", "country": "FR", "city": "Paris", "region": None,
                              "timezone": "Europe/Paris"},
            "search_context_size": "low"}
EXPECTED_REQUESTS = {
    "searxng": {"params": {"q": "eiffel tower paris site:wikipedia.org", "format": "json", "pageno": "1"}},
    "tavily": {"json": {"query": "eiffel tower paris", "max_results": 3, "search_depth": "basic", "topic": "general",
                        "include_answer": False, "include_raw_content": False, "include_images": False,
                        "include_domains": ["wikipedia.org"], "country": "france"}},
    "brave": {"params": {"q": "eiffel tower paris site:wikipedia.org", "count": "3", "result_filter": "web",
                         "text_decorations": "false", "country": "FR"},
              "headers": {"X-Loc-Country": "FR", "X-Loc-City": "Paris", "X-Loc-Timezone": "Europe/Paris"}},
}


@pytest.mark.parametrize("kind", PROVIDERS)
def test_filters_location_and_context_size_reach_the_provider(searching: Searching, upstream, kind: str,
                                                             request: pytest.FixtureRequest) -> None:
    client = client_for(searching, kind, request)
    upstream.script(reply(search("eiffel tower paris")), reply("330 m [1]."))
    r = create(client, model=MODEL, input="Eiffel tower?", tools=[FILTERED],
               include=["web_search_call.action.sources", "web_search_call.results"])
    (sent,) = recorded_searches(request.node.nodeid)
    assert sent["body"] == EXPECTED_REQUESTS[kind]
    call = r.output[0].model_dump()
    # every result is on an allowed domain, whatever the provider honoured (SearXNG's engine ignores site:)
    assert call["action"]["sources"] and all(
        s["url"].startswith("https://en.wikipedia.org/") for s in call["action"]["sources"])
    assert [x["url"] for x in call["results"]] == [s["url"] for s in call["action"]["sources"]]
    assert r.tools[0].model_dump(exclude_none=True)["filters"] == {"allowed_domains": ["https://wikipedia.org/"]}
    assert r.tools[0].user_location.city == "Paris"


def test_context_size_bounds_what_the_model_reads(searching: Searching, upstream,
                                                  request: pytest.FixtureRequest) -> None:
    client = client_for(searching, "tavily", request)
    texts = {}
    for size in ("low", "high"):
        upstream.script(reply(search("python release")), reply("ok"))
        create(client, model=MODEL, input="python?", tools=[{"type": "web_search", "search_context_size": size}])
        texts[size] = tool_message(upstream.chat_bodies[-1])
    low, high = texts["low"], texts["high"]
    assert low.count("\n[") == 3 and high.count("\n[") == 5
    assert len(low) * 2 < len(high)
    assert " [...] " in high and " [...] " not in low  # high asked Tavily for advanced depth
    depths = [s["body"]["json"]["search_depth"] for s in recorded_searches(request.node.nodeid)]
    assert sorted(depths) == ["advanced", "basic"]


# -- include options -----------------------------------------------------------------------------------------

def test_include_sources_and_results(searching: Searching, upstream, request: pytest.FixtureRequest) -> None:
    client = client_for(searching, "searxng", request)
    upstream.script(reply(search("sqlite release")), reply("3.51 [1]"))
    r = create(client, model=MODEL, input="sqlite?", tools=[WS], include=["web_search_call.action.sources"])
    call = r.output[0].model_dump()
    urls = [s["url"] for s in call["action"]["sources"]]
    assert urls[0] == "https://www.sqlite.org/releaselog/3_51_0.html" and len(urls) == 4
    assert "https://news.example.com/2025/11/sqlite-3-51" in urls
    assert all(s["type"] == "url" for s in call["action"]["sources"]) and "results" not in call
    upstream.script(reply(search("sqlite release")), reply("3.51 [1]"))
    r = create(client, model=MODEL, input="sqlite?", tools=[WS], include=["web_search_call.results"])
    call = r.output[0].model_dump()
    assert call["action"].get("sources") is None
    assert call["results"][0] == {"url": "https://www.sqlite.org/releaselog/3_51_0.html",
                                  "title": "SQLite Release 3.51.0", "text": call["results"][0]["text"]}
    assert call["results"][0]["text"].startswith("SQLite version 3.51.0 was released on 2025-11-04.")
    validate_item(call)


# -- streaming -------------------------------------------------------------------------------------------------

def test_streamed_events_in_openai_order(searching: Searching, upstream, request: pytest.FixtureRequest) -> None:
    server = searching.servers["brave"]
    upstream.script(reply(search("eiffel tower")), reply("It is in Paris ", "[1]", "."))
    events = post_stream(server.base_url, {"model": MODEL, "input": "Where?", "tools": [WS]}, request.node.nodeid)
    final = validate_stream(events)
    assert final["status"] == "completed"
    kinds = [e["type"] for e in events if e["type"] != "response.output_text.delta"]
    assert kinds == ["response.created", "response.in_progress",
                     "response.output_item.added", "response.web_search_call.in_progress",
                     "response.web_search_call.searching", "response.web_search_call.completed",
                     "response.output_item.done",
                     "response.output_item.added", "response.content_part.added",
                     "response.output_text.annotation.added", "response.output_text.done",
                     "response.content_part.done", "response.output_item.done", "response.completed"]
    added, done = events[2], events[6]
    assert added["item"] == {"type": "web_search_call", "id": done["item"]["id"], "status": "in_progress",
                             "action": {"type": "search"}}
    assert done["item"]["status"] == "completed" and done["item"]["action"]["query"] == "eiffel tower"
    for e in events[3:6]:
        assert (e["item_id"], e["output_index"]) == (added["item"]["id"], 0) and set(e) == {
            "type", "item_id", "output_index", "sequence_number"}
    (note,) = [e for e in events if e["type"] == "response.output_text.annotation.added"]
    assert note["annotation"] == {"type": "url_citation", "url": "https://en.wikipedia.org/wiki/Eiffel_Tower",
                                  "title": "Eiffel Tower - Wikipedia", "start_index": 15, "end_index": 18}
    assert (note["output_index"], note["content_index"], note["annotation_index"]) == (1, 0, 0)
    assert final["output"][1]["content"][0]["annotations"] == [note["annotation"]]


def test_a_failed_search_streams_no_completed_event(searching: Searching, upstream,
                                                    request: pytest.FixtureRequest) -> None:
    searching.fail("searxng", 500)
    upstream.script(reply(search("python")), reply("It failed."))
    events = post_stream(searching.servers["searxng"].base_url, {"model": MODEL, "input": "python?", "tools": [WS]},
                         request.node.nodeid)
    final = validate_stream(events)
    kinds = [e["type"] for e in events[:6]]
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.web_search_call.in_progress", "response.web_search_call.searching",
                     "response.output_item.done"]
    assert events[5]["item"]["status"] == "failed" and final["status"] == "completed"
    assert final["output"][0]["status"] == "failed"


# -- failures ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,status", [("tavily", 429), ("brave", 429), ("searxng", 500), ("tavily", 500)])
def test_a_failing_provider_gives_a_failed_call_and_a_clean_response(searching: Searching, upstream, kind: str,
                                                                     status: int,
                                                                     request: pytest.FixtureRequest) -> None:
    client = client_for(searching, kind, request)
    searching.fail(kind, status)
    upstream.script(reply(search("python")), reply("The search failed, sorry."))
    r = create(client, model=MODEL, input="python?", tools=[WS])
    assert r.status == "completed" and r.error is None
    call = r.output[0]
    assert (call.type, call.status, call.action.query) == ("web_search_call", "failed", "python")
    told = tool_message(upstream.chat_bodies[1])
    assert told.startswith('The web search for "python" failed: ') and f"HTTP {status}" in told
    assert r.output_text == "The search failed, sorry." and r.output[1].content[0].annotations == []


def test_slow_and_unreachable_providers(make_server, upstream, search_standin: StandinServer) -> None:
    search_standin.standins.slow("searxng", 3.0)
    slow = make_server([scripted_provider(upstream)], web_search=WebSearchConfig(
        provider="searxng", base_url=search_standin.standins.base_url("searxng"), timeout=0.5))
    down = make_server([scripted_provider(upstream)], web_search=WebSearchConfig(provider="searxng", base_url=DEAD))
    for server, expected in ((slow, "did not answer within 0.5 s"), (down, "unreachable")):
        upstream.script(reply(search("python")), reply("no luck"))
        r = create(server.client(), model=MODEL, input="python?", tools=[WS])
        assert r.status == "completed" and r.output[0].status == "failed"
        assert expected in tool_message(upstream.chat_bodies[-1])
    search_standin.stop()


# -- bounds and concurrency ------------------------------------------------------------------------------------

def test_max_tool_calls_counts_searches(searching: Searching, upstream, request: pytest.FixtureRequest) -> None:
    client = client_for(searching, "searxng", request)
    upstream.script(reply(search("python", "call_a"), search("sqlite", "call_b")), reply("one search only"))
    r = create(client, model=MODEL, input="both?", tools=[WS], max_tool_calls=1)
    assert [(i.type, i.status) for i in r.output] == [("web_search_call", "completed"),
                                                      ("web_search_call", "incomplete"), ("message", "completed")]
    assert tool_message(upstream.chat_bodies[1], "call_b") == \
        "Tool call skipped: maximum tool calls limit (1) reached."
    assert len(recorded_searches(request.node.nodeid)) == 1


def test_parallel_searches_run_concurrently_and_number_on(make_server, upstream,
                                                          search_standin: StandinServer) -> None:
    standins = search_standin.standins
    # the first request to arrive (normally the first call) answers last: numbering must not follow it;
    # long enough for both to be in flight together, even on a loaded machine
    standins.slow("searxng", 1.2)
    standins.slow("searxng", 0.4)
    server = make_server([scripted_provider(upstream)], web_search=WebSearchConfig(
        provider="searxng", base_url=standins.base_url("searxng")))
    upstream.script(reply(search("eiffel tower", "call_a"), search("sqlite release", "call_b")),
                    reply("Paris [1]; SQLite [3]."))
    r = create(server.client(), model=MODEL, input="both?", tools=[WS])
    assert standins.max_inflight == 2  # both searches were in flight at once
    assert [i.status for i in r.output[:2]] == ["completed", "completed"]
    second = tool_message(upstream.chat_bodies[1], "call_b")
    assert "\n[3] SQLite Release 3.51.0" in second  # numbers run on after the first search's [1] [2]
    assert [a.url for a in r.output[2].content[0].annotations] == [
        "https://en.wikipedia.org/wiki/Eiffel_Tower", "https://www.sqlite.org/releaselog/3_51_0.html"]


# -- chains, items as input, tool_choice, external_web_access --------------------------------------------------

def test_a_chain_with_web_search(searching: Searching, upstream, request: pytest.FixtureRequest) -> None:
    """previous_response_id carries the search into the next turn (conversations: built elsewhere; the chain
    is the same history)."""
    client = client_for(searching, "tavily", request)
    upstream.script(reply(search("python 3.13 release date")), reply("October 7, 2024 [1]."))
    r1 = create(client, model=MODEL, input="When was Python 3.13 released?", tools=[WS],
                include=["web_search_call.action.sources"])
    upstream.script(reply("From docs.python.org."))
    r2 = create(client, model=MODEL, input="Which site said so?", tools=[WS], previous_response_id=r1.id)
    assert r2.status == "completed" and r2.output_text == "From docs.python.org."
    history = upstream.chat_bodies[-1]["messages"]
    call_id = r1.output[0].id
    assert history[1] == {"role": "assistant", "content": "", "tool_calls": [{"id": call_id, "type": "function",
                          "function": {"name": "web_search", "arguments": '{"query":"python 3.13 release date"}'}}]}
    assert history[2]["role"] == "tool" and history[2]["content"].startswith("Sources found: https://")
    assert history[3] == {"role": "assistant", "content": "October 7, 2024 [1]."}
    assert history[4] == {"role": "user", "content": "Which site said so?"}


def test_a_conversation_with_web_search(searching: Searching, upstream, request: pytest.FixtureRequest) -> None:
    """In a conversation the web_search_call item is stored as a conversation item and replayed to the model on
    the next turn, as in a chain."""
    client = client_for(searching, "searxng", request)
    conv = client.conversations.create()
    upstream.script(reply(search("python 3.13 release date")), reply("October 7, 2024 [1]."))
    r1 = create(client, model=MODEL, input="When was Python 3.13 released?", tools=[WS], conversation=conv.id,
                include=["web_search_call.action.sources"])
    assert r1.status == "completed" and r1.conversation.id == conv.id
    items = client.conversations.items.list(conv.id, order="asc").data
    assert [i.type for i in items] == ["message", "web_search_call", "message"]
    validate_item(items[1].model_dump(mode="json", exclude_unset=True))
    assert items[1].id == r1.output[0].id and items[1].action.query == "python 3.13 release date"
    upstream.script(reply("From docs.python.org."))
    r2 = create(client, model=MODEL, input="Which site said so?", tools=[WS], conversation=conv.id)
    assert r2.status == "completed" and r2.output_text == "From docs.python.org."
    history = upstream.chat_bodies[-1]["messages"]
    assert history[1]["tool_calls"][0]["id"] == r1.output[0].id
    assert history[2]["role"] == "tool" and history[2]["content"].startswith("Sources found: https://")
    assert history[3] == {"role": "assistant", "content": "October 7, 2024 [1]."}
    assert history[4] == {"role": "user", "content": "Which site said so?"}
    assert len(client.conversations.items.list(conv.id).data) == 5


def test_web_search_items_sent_back_as_input(searching: Searching, upstream, request: pytest.FixtureRequest) -> None:
    client = client_for(searching, "searxng", request)
    upstream.script(reply("noted"))
    item = {"type": "web_search_call", "id": "ws_abc", "status": "completed",
            "action": {"type": "search", "query": "q", "sources": [{"type": "url", "url": "https://a.test/"}]}}
    r = create(client, model=MODEL, input=[{"role": "user", "content": "hi"}, item], tools=[WS], store=False)
    assert r.status == "completed"
    messages = upstream.chat_bodies[-1]["messages"]
    assert messages[-1] == {"role": "tool", "tool_call_id": "ws_abc", "content": "Sources found: https://a.test/"}


def test_preview_type_tool_choice_and_echo(searching: Searching, upstream, request: pytest.FixtureRequest) -> None:
    client = client_for(searching, "searxng", request)
    tool = {"type": "web_search_preview", "search_context_size": "high", "user_location": {"type": "approximate",
                                                                                            "country": "US"}}
    upstream.script(reply(search("new york weather")), reply("Cold [1]."))
    r = create(client, model=MODEL, input="weather?", tools=[tool], tool_choice={"type": "web_search_preview"})
    assert upstream.chat_bodies[0]["tool_choice"] == {"type": "function", "function": {"name": "web_search"}}
    assert "tool_choice" not in upstream.chat_bodies[1]  # forcing applies to the first turn only
    assert r.tools[0].model_dump() == {"type": "web_search_preview", "search_context_size": "high",
                                       "user_location": {"type": "approximate", "country": "US", "region": None,
                                                         "city": None, "timezone": None},
                                       "search_content_types": None}


def test_dated_tool_type_without_a_search(searching: Searching, upstream, request: pytest.FixtureRequest) -> None:
    client = client_for(searching, "brave", request)
    upstream.script(reply("No search needed."))
    tool = {"type": "web_search_2025_08_26", "filters": None, "user_location": None, "search_context_size": "low"}
    r = create(client, model=MODEL, input="2+2?", tools=[tool])
    assert [i.type for i in r.output] == ["message"] and r.output[0].content[0].annotations == []
    assert r.tools[0].model_dump(exclude_unset=True) == tool  # echoed as sent
    assert recorded_searches(request.node.nodeid) == []


def test_external_web_access_false_never_goes_live(make_server, upstream, search_standin: StandinServer,
                                                   tmp_path: Path) -> None:
    """Codex CLI sends external_web_access: false for 'cached' search: no live request; answered from recorded
    searches when the server keeps some, otherwise a failed call the model is told about."""
    standins = search_standin.standins
    live = make_server([scripted_provider(upstream)], web_search=WebSearchConfig(
        provider="searxng", base_url=standins.base_url("searxng")))
    tool = {"type": "web_search", "external_web_access": False}
    upstream.script(reply(search("python")), reply("cannot search"))
    r = create(live.client(), model=MODEL, input="python?", tools=[tool])
    assert r.output[0].status == "failed" and standins.requests == []
    assert "external_web_access: false" in tool_message(upstream.chat_bodies[-1])
    assert r.tools[0].model_dump()["external_web_access"] is False  # echoed as sent
    # a server that records searches answers from its recordings
    recording = make_server([scripted_provider(upstream)], web_search=WebSearchConfig(
        provider="searxng", base_url=standins.base_url("searxng"), record_mode="record-if-missing",
        recordings_dir=str(tmp_path)))
    client = recording.client("tests::cached")
    upstream.script(reply(search("python")), reply("live [1]"))
    create(client, model=MODEL, input="python?", tools=[WS])
    assert len(standins.requests) == 1
    upstream.script(reply(search("python")), reply("cached [1]"))
    r = create(client, model=MODEL, input="python?", tools=[tool])
    assert r.output[0].status == "completed" and len(standins.requests) == 1  # from the recording


# -- validation and configuration -------------------------------------------------------------------------------

def test_zero_config_searxng_url_enables_live_search(upstream, search_standin: StandinServer, tmp_path: Path) -> None:
    """SEARXNG_URL in the environment is all it takes (live: the stand-in answers)."""
    standins = search_standin.standins
    config = load_config(env={"SEARXNG_URL": standins.base_url("searxng")}, data_dir=str(tmp_path))
    config.providers, config.default_model = [scripted_provider(upstream)], MODEL
    running = start_server(config)
    try:
        upstream.script(reply(search("eiffel tower")), reply("Paris [1]."))
        r = create(running.client(), input="Where?", tools=[WS])
    finally:
        running.stop()
    assert r.output[0].status == "completed" and r.output[1].content[0].annotations[0].url.startswith("https://")
    (got,) = standins.of("searxng")
    assert got.params == {"q": "eiffel tower", "format": "json", "pageno": "1"}


def test_no_provider_configured_is_a_clear_400(make_server, upstream) -> None:
    server = make_server([scripted_provider(upstream)])
    with pytest.raises(openai.BadRequestError) as caught:
        server.client().responses.create(model=MODEL, input="hi", tools=[WS])
    error = validate_error_envelope(caught.value.response.json(), 400, param="tools[0]",
                                    code="web_search_not_configured")
    assert "SEARXNG_URL" in error["message"] and "TAVILY_API_KEY" in error["message"]
    assert upstream.chat_bodies == []


def test_cached_only_web_search_without_a_provider_is_accepted_but_not_offered(make_server, upstream) -> None:
    """Codex CLI sends {"type": "web_search", "external_web_access": false} on every turn: on a server with no
    search provider that tool is echoed, not offered to the model, and the request works (live search still
    needs a provider: the 400 above)."""
    server = make_server([scripted_provider(upstream)])
    tool = {"type": "web_search", "external_web_access": False}
    upstream.script(reply("hi"))
    r = create(server.client(), model=MODEL, input="hi", tools=[tool, {"type": "function", "name": "f",
                                                                       "parameters": {"type": "object"}}])
    assert r.status == "completed" and r.output_text == "hi"
    assert r.tools[0].type == "web_search"
    assert [t["function"]["name"] for t in upstream.chat_bodies[-1]["tools"]] == ["f"]
    with pytest.raises(openai.BadRequestError):  # nothing to force: a clear 400, not a silent no-op
        server.client().responses.create(model=MODEL, input="hi", tools=[tool], tool_choice={"type": "web_search"})


@pytest.mark.parametrize("tool,param", [
    ({"type": "web_search", "search_context_size": "huge"}, "tools[0].search_context_size"),
    ({"type": "web_search", "user_location": {"type": "approximate", "country": "France"}},
     "tools[0].user_location.country"),
    ({"type": "web_search", "user_location": {"type": "exact"}}, "tools[0].user_location.type"),
    ({"type": "web_search", "filters": {"allowed_domains": "python.org"}}, "tools[0].filters.allowed_domains"),
    ({"type": "web_search", "filters": {"allowed_domains": ["not a domain"]}}, "tools[0].filters.allowed_domains"),
    ({"type": "web_search", "external_web_access": "no"}, "tools[0].external_web_access"),
])
def test_invalid_web_search_tools_are_400(searching: Searching, upstream, tool: dict[str, Any], param: str,
                                          request: pytest.FixtureRequest) -> None:
    client = client_for(searching, "searxng", request)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=MODEL, input="hi", tools=[tool])
    validate_error_envelope(caught.value.response.json(), 400, param=param)
    assert upstream.chat_bodies == []


def test_keys_never_reach_clients_logs_or_the_database(searching: Searching, upstream, caplog,
                                                       request: pytest.FixtureRequest) -> None:
    caplog.set_level("DEBUG")
    for kind in ("tavily", "brave"):
        client = client_for(searching, kind, request)
        upstream.script(reply(search("python")), reply("ok [1]"))
        r = client.responses.with_raw_response.create(model=MODEL, input="python?", tools=[WS],
                                                      include=["web_search_call.results"])
        body = r.http_response.text
        assert TAVILY_KEY not in body and BRAVE_KEY not in body
        db = Path(searching.servers[kind].config.resolved_database_url().removeprefix("sqlite:///"))
        stored = b"".join(p.read_bytes() for p in db.parent.glob("respond.db*"))
        assert b"ws_" in stored or json.loads(body)["id"].encode() in stored
        assert TAVILY_KEY.encode() not in stored and BRAVE_KEY.encode() not in stored
    assert "response resp_" in caplog.text  # the server's own log lines were captured
    assert TAVILY_KEY not in caplog.text and BRAVE_KEY not in caplog.text
    text = "".join(p.read_text() for p in RECORDINGS.glob("*.json"))
    assert TAVILY_KEY not in text and BRAVE_KEY not in text
