"""Each provider's HTTP mapping against its loopback stand-in: parameters, keys, domains, location, context
size, result parsing, and failures (HTTP errors, rate limits, timeouts, unreachable)."""

from __future__ import annotations

import pytest

from respond.config import WebSearchConfig
from respond.errors import UpstreamError
from respond.recording import Recorder
from respond.websearch.base import SearchQuery, domain_allowed, normalize_domain, results_for
from respond.websearch.providers import BraveProvider, SearxngProvider, TavilyProvider, build_search_provider
from tests.support.search_standins import BRAVE_KEY, TAVILY_KEY, StandinServer


def make(kind: str, standin: StandinServer, **kw):
    base = standin.standins.base_url(kind)
    if kind == "tavily":
        return TavilyProvider(base, api_key=kw.pop("api_key", TAVILY_KEY), **kw)
    if kind == "brave":
        return BraveProvider(base, api_key=kw.pop("api_key", BRAVE_KEY), **kw)
    return SearxngProvider(base, **kw)


async def test_tavily_request_mapping(search_standin: StandinServer) -> None:
    provider = make("tavily", search_standin)
    try:
        results = await provider.search(SearchQuery("python 3.13 release", max_results=8, context_size="low",
                                                    allowed_domains=("python.org",),
                                                    user_location={"country": "fr", "city": "Paris"}))
    finally:
        await provider.aclose()
    (got,) = search_standin.standins.of("tavily")
    assert got.method == "POST" and got.path == "/tavily/search"
    assert got.headers["authorization"] == f"Bearer {TAVILY_KEY}"
    assert got.json == {"query": "python 3.13 release", "max_results": 3, "search_depth": "basic",
                        "topic": "general", "include_answer": False, "include_raw_content": False,
                        "include_images": False, "include_domains": ["python.org"], "country": "france"}
    assert "api_key" not in got.json  # the key travels in the Authorization header only
    assert {r.url for r in results} == {"https://docs.python.org/3/whatsnew/3.13.html",
                                        "https://www.python.org/downloads/release/python-3130/",
                                        "https://peps.python.org/pep-0719/"}
    assert all(r.title and r.content and r.score for r in results)
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)


async def test_tavily_high_context_asks_for_advanced_depth_and_more_text(search_standin: StandinServer) -> None:
    provider = make("tavily", search_standin, max_results=6)
    try:
        low = await provider.search(SearchQuery("eiffel tower", context_size="low"))
        high = await provider.search(SearchQuery("eiffel tower", max_results=20, context_size="high"))
    finally:
        await provider.aclose()
    first, second = search_standin.standins.of("tavily")
    assert first.json["search_depth"] == "basic" and second.json["search_depth"] == "advanced"
    assert second.json["max_results"] == 6  # bounded by the configured max_results
    assert " [...] " in high[0].content and len(high[0].content) > len(low[0].content)


async def test_brave_request_mapping_with_location_headers(search_standin: StandinServer) -> None:
    provider = make("brave", search_standin)
    try:
        results = await provider.search(SearchQuery(
            "weather today", user_location={"type": "approximate", "country": "fr", "region": "Ile-de-France",
                                            "city": "Paris", "timezone": "Europe/Paris"}))
    finally:
        await provider.aclose()
    (got,) = search_standin.standins.of("brave")
    assert got.method == "GET" and got.path == "/brave/res/v1/web/search"
    assert got.headers["x-subscription-token"] == BRAVE_KEY
    assert got.params == {"q": "weather today", "count": "5", "result_filter": "web", "text_decorations": "false",
                          "country": "FR"}
    assert (got.headers["x-loc-country"], got.headers["x-loc-city"], got.headers["x-loc-state-name"],
            got.headers["x-loc-timezone"]) == ("FR", "Paris", "Ile-de-France", "Europe/Paris")
    assert results[0].url == "https://weather.example.fr/paris"  # the location reached the ranking


async def test_brave_domains_become_site_operators_and_high_context_extra_snippets(
        search_standin: StandinServer) -> None:
    provider = make("brave", search_standin)
    try:
        results = await provider.search(SearchQuery("eiffel tower", allowed_domains=("wikipedia.org",
                                                                                      "toureiffel.paris"),
                                                    context_size="high"))
    finally:
        await provider.aclose()
    (got,) = search_standin.standins.of("brave")
    assert got.params["q"] == "eiffel tower site:wikipedia.org OR site:toureiffel.paris"
    assert got.params["extra_snippets"] == "true"
    assert {r.url for r in results} == {"https://en.wikipedia.org/wiki/Eiffel_Tower",
                                        "https://www.toureiffel.paris/en"}
    assert "330 metres" in next(r for r in results if "wikipedia" in r.url).content  # from extra_snippets


async def test_searxng_request_and_domains_enforced_on_results(search_standin: StandinServer) -> None:
    provider = make("searxng", search_standin)
    try:
        unfiltered = await provider.search(SearchQuery("sqlite release", max_results=10))
        filtered = await provider.search(SearchQuery("sqlite release", allowed_domains=("sqlite.org",),
                                                     user_location={"country": "US"}))
    finally:
        await provider.aclose()
    first, second = search_standin.standins.of("searxng")
    assert first.method == "GET" and first.path == "/searxng/search"
    assert first.params == {"q": "sqlite release", "format": "json", "pageno": "1"}
    assert "authorization" not in first.headers
    assert second.params["q"] == "sqlite release site:sqlite.org"
    # the stand-in, like many SearXNG engines, ignores site:; respond holds the results to the domain
    assert any("example.com" in r.url for r in unfiltered)
    assert [r.url for r in filtered] == ["https://www.sqlite.org/releaselog/3_51_0.html"]
    assert filtered[0].published == "2025-11-04T00:00:00"


async def test_searxng_trims_to_the_context_size(search_standin: StandinServer) -> None:
    provider = make("searxng", search_standin)
    try:
        low = await provider.search(SearchQuery("python", max_results=10, context_size="low"))
        medium = await provider.search(SearchQuery("python", max_results=10))
    finally:
        await provider.aclose()
    assert len(low) == 3 and len(medium) == 4  # 4 python pages in the corpus; medium allows 5


@pytest.mark.parametrize("kind,status,needle", [
    ("tavily", 429, "Too many requests"), ("tavily", 500, "HTTP 500"),
    ("brave", 429, "RATE_LIMITED"), ("brave", 500, "HTTP 500"),
    ("searxng", 429, "HTTP 429"), ("searxng", 500, "search error"),
])
async def test_http_failures_become_upstream_errors(search_standin: StandinServer, kind: str, status: int,
                                                    needle: str) -> None:
    search_standin.standins.fail(kind, status)
    provider = make(kind, search_standin)
    try:
        with pytest.raises(UpstreamError, match=needle) as caught:
            await provider.search(SearchQuery("python"))
        assert caught.value.upstream_status == status
        assert await provider.search(SearchQuery("python"))  # the next one works again
    finally:
        await provider.aclose()


async def test_bad_keys_and_misconfigured_searxng(search_standin: StandinServer) -> None:
    tavily = make("tavily", search_standin, api_key="tvly-wrong-key-000000")
    brave = make("brave", search_standin, api_key="wrong-key-000000")
    try:
        with pytest.raises(UpstreamError, match="API key") as t:
            await tavily.search(SearchQuery("python"))
        with pytest.raises(UpstreamError, match="SUBSCRIPTION_TOKEN_INVALID") as b:
            await brave.search(SearchQuery("python"))
        assert "tvly-wrong-key" not in t.value.message and "wrong-key-000000" not in b.value.message
        assert (t.value.upstream_status, b.value.upstream_status) == (401, 422)
    finally:
        await tavily.aclose()
        await brave.aclose()
    # an instance without json in search.formats answers 403 (an HTML page): the message says what to fix
    search_standin.standins.fail("searxng", 403)
    with pytest.raises(UpstreamError, match="add `json` to `search.formats`") as s:
        await make("searxng", search_standin).search(SearchQuery("python"))
    assert s.value.upstream_status == 403


async def test_a_key_echoed_in_an_error_is_redacted(search_standin: StandinServer) -> None:
    search_standin.standins.fail("brave", 422, message=f"Token {BRAVE_KEY} is not valid")
    provider = make("brave", search_standin)
    with pytest.raises(UpstreamError) as caught:
        await provider.search(SearchQuery("python"))
    assert BRAVE_KEY not in caught.value.message and "Token <redacted> is not valid" in caught.value.message


async def test_slow_and_unreachable_providers_time_out(search_standin: StandinServer) -> None:
    search_standin.standins.slow("searxng", 3.0)
    provider = make("searxng", search_standin, timeout=0.3)
    try:
        with pytest.raises(UpstreamError, match="did not answer within 0.3 s") as slow:
            await provider.search(SearchQuery("python"))
        assert slow.value.upstream_status is None
    finally:
        await provider.aclose()
    gone = SearxngProvider("http://127.0.0.1:9", timeout=2)
    try:
        with pytest.raises(UpstreamError, match="unreachable"):
            await gone.search(SearchQuery("python"))
    finally:
        await gone.aclose()


def test_domains_match_subdomains_only() -> None:
    allowed = (normalize_domain("https://Python.org/"), normalize_domain("sqlite.org."))
    assert allowed == ("python.org", "sqlite.org")
    assert domain_allowed("https://docs.python.org/3/", allowed)
    assert domain_allowed("https://python.org", allowed)
    assert not domain_allowed("https://notpython.org/", allowed)
    assert not domain_allowed("https://python.org.evil.test/", allowed)
    assert domain_allowed("https://anything.test/", ())


def test_result_counts_follow_context_size() -> None:
    assert [results_for(SearchQuery("q", max_results=20, context_size=s), 8) for s in ("low", "medium", "high")] \
        == [3, 5, 8]
    assert results_for(SearchQuery("q", max_results=2, context_size="high"), 8) == 2


def test_build_from_config_needs_a_url_or_key(tmp_path) -> None:
    rec = Recorder("live", None)
    assert build_search_provider(WebSearchConfig(), rec) is None
    with pytest.raises(ValueError, match="SEARXNG_URL"):
        build_search_provider(WebSearchConfig(provider="searxng"), rec)
    with pytest.raises(ValueError, match="BRAVE_API_KEY"):
        build_search_provider(WebSearchConfig(provider="brave"), rec)
    tavily = build_search_provider(WebSearchConfig(provider="tavily", api_key="tvly-x"), rec)
    assert isinstance(tavily, TavilyProvider) and tavily.base_url == "https://api.tavily.com"
    own = build_search_provider(WebSearchConfig(provider="searxng", base_url="http://s.test/", record_mode="replay",
                                                recordings_dir=str(tmp_path)), rec)
    assert own.recorder is not rec and own.recorder.mode == "replay" and own.base_url == "http://s.test"
