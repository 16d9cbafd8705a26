"""Loopback stand-ins for the web search providers: Tavily, Brave and SearXNG, each speaking its HTTP API
(shared/specs/web-search-providers.md) over a small fixed corpus, so searches are deterministic.

One uvicorn server (background thread, random 127.0.0.1 port) serves all three under a prefix each:
`standin.base_url("tavily")` = http://127.0.0.1:PORT/tavily (then `POST /search`), `.../brave` (then
`GET /res/v1/web/search`), `.../searxng` (then `GET|POST /search`). Fixture: `search_standin` (started
for the test, stopped after it; `.stop()` stops it early, to prove a replay needs no network).

Behaviour, as the real services document it:
- Tavily: `Authorization: Bearer <TAVILY_KEY>` (else 401 `{"detail": {"error": ...}}`); honours
  `max_results`, `include_domains` / `exclude_domains` (subdomains included), `search_depth` (advanced:
  chunks joined with " [...] "), `country` (an English country name: ranks that country's pages first).
- Brave: `X-Subscription-Token: <BRAVE_KEY>` (else 422 SUBSCRIPTION_TOKEN_INVALID); honours `count`,
  `site:` operators in `q`, `country` and `X-Loc-Country` (ranking), `extra_snippets`.
- SearXNG: keyless; `format=json` required (else 403 HTML, as with the default settings.yml); empty `q`
  -> 400 `{"error": "No query"}`; no result count; `site:` operators are ignored, like many engines.

Faults: `standin.fail("brave", 429)` (the next request; `times=` for more), `standin.slow("tavily", 3.0)`.
Every request is logged: `standin.requests` (`Received(provider, method, path, params, headers, json)`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

TAVILY_KEY = "tvly-standin-0123456789abcdef"
BRAVE_KEY = "BSAstandin0123456789abcdef"


@dataclass(frozen=True)
class Doc:
    url: str
    title: str
    body: str  # sentences; snippets are cut from it
    published: str | None = None
    country: str | None = None  # ISO-2: the country a location-aware search ranks first


CORPUS: tuple[Doc, ...] = (
    Doc("https://docs.python.org/3/whatsnew/3.13.html", "What's New In Python 3.13",
        "Python 3.13 was released on October 7, 2024. It ships a new interactive interpreter with multi-line "
        "editing and colour. An experimental free-threaded build runs without the global interpreter lock "
        "(PEP 703). An experimental just-in-time compiler can be enabled at build time (PEP 744). The "
        "locals() builtin now has defined semantics when mutating the returned mapping (PEP 667).",
        "2024-10-07"),
    Doc("https://peps.python.org/pep-0719/", "PEP 719 - Python 3.13 Release Schedule",
        "This document lists the release schedule for Python 3.13. The 3.13.0 final release happened on "
        "2024-10-07. Bugfix releases follow about every two months. Security fixes continue until 2029.",
        "2023-05-26"),
    Doc("https://www.python.org/downloads/release/python-3130/", "Python Release Python 3.13.0",
        "Python 3.13.0 is the newest major release of the Python programming language. It contains many new "
        "features and optimizations compared to Python 3.12. Installers are available for Windows and macOS.",
        "2024-10-07"),
    Doc("https://en.wikipedia.org/wiki/History_of_Python", "History of Python - Wikipedia",
        "Python was conceived in the late 1980s by Guido van Rossum at CWI in the Netherlands. Python 2.0 was "
        "released in 2000 and Python 3.0 in 2008. Python 3.13 followed in October 2024.", None, "NL"),
    Doc("https://www.sqlite.org/releaselog/3_51_0.html", "SQLite Release 3.51.0",
        "SQLite version 3.51.0 was released on 2025-11-04. It adds new JSON functions and improves the query "
        "planner. The release is backwards compatible with all prior 3.x versions.", "2025-11-04"),
    Doc("https://news.example.com/2025/11/sqlite-3-51", "SQLite 3.51 brings faster JSON",
        "The SQLite developers released version 3.51 with faster JSON handling. Benchmarks show JSON queries "
        "running up to twice as fast.", "2025-11-05", "US"),
    Doc("https://en.wikipedia.org/wiki/Eiffel_Tower", "Eiffel Tower - Wikipedia",
        "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It is 330 "
        "metres tall. It was completed in 1889 for the World's Fair. It is named after the engineer Gustave "
        "Eiffel, whose company designed and built the tower.", None),
    Doc("https://www.toureiffel.paris/en", "Official Eiffel Tower website",
        "Visit the Eiffel Tower in Paris: tickets, opening hours and news. The tower is open every day from "
        "9:30 to 23:45. The summit offers a view over all of Paris.", None, "FR"),
    Doc("https://weather.example.fr/paris", "Paris weather today",
        "Weather in Paris today: 12 degrees and light rain in the morning. The afternoon stays cloudy with a "
        "light wind from the west.", "2026-12-01", "FR"),
    Doc("https://weather.example.com/new-york", "New York weather today",
        "Weather in New York today: 3 degrees and sunny. A cold front arrives tonight with snow likely.",
        "2026-12-01", "US"),
)

_TAVILY_COUNTRY_TO_ISO = {"france": "FR", "united states": "US", "netherlands": "NL", "germany": "DE",
                          "united kingdom": "GB"}
_SITE = re.compile(r"\bsite:(\S+)", re.I)
_WORD = re.compile(r"[a-z0-9.]+")


def sentences(text: str) -> list[str]:
    return [s.strip() + "." for s in text.split(". ") if s.strip()] if text else []


def _host_match(url: str, domains: list[str]) -> bool:
    host = urlsplit(url).hostname or ""
    return any(host == d or host.endswith("." + d) for d in domains)


def search_corpus(query: str, *, country: str | None = None, include: list[str] | None = None,
                  exclude: list[str] | None = None) -> list[tuple[Doc, float]]:
    """Docs matching any query word, best first: (doc, score in 0..1). Deterministic."""
    words = {w.strip(".") for w in _WORD.findall(_SITE.sub(" ", query).lower().replace(" or ", " "))}
    words = {w for w in words if len(w) > 1}
    if not words:
        return []
    found = []
    for i, doc in enumerate(CORPUS):
        if include and not _host_match(doc.url, include):
            continue
        if exclude and _host_match(doc.url, exclude):
            continue
        text = set(w.strip(".") for w in _WORD.findall(f"{doc.title} {doc.body}".lower()))
        hits = len(words & text)
        if not hits:
            continue
        score = hits / len(words) + (0.5 if country and doc.country == country else 0.0)
        found.append((i, doc, round(min(score, 1.0) * 0.9 + 0.05, 4), score))
    found.sort(key=lambda f: (-f[3], f[0]))
    return [(doc, score) for _, doc, score, _ in found]


@dataclass
class Received:
    provider: str
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    json: Any


@dataclass
class Fault:
    status: int | None = None
    delay: float = 0.0
    times: int = 1
    message: str | None = None


@dataclass
class SearchStandins:
    requests: list[Received] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    port: int = 0
    inflight: int = 0
    max_inflight: int = 0  # the most requests being answered at once (proves searches ran concurrently)

    def base_url(self, provider: str) -> str:
        return f"http://127.0.0.1:{self.port}/{provider}"

    def fail(self, provider: str, status: int, times: int = 1, message: str | None = None) -> None:
        """Answer the next request(s) with `status` and the provider's error body (`message` as its text)."""
        self.faults.setdefault(provider, []).append(Fault(status=status, times=times, message=message))

    def slow(self, provider: str, seconds: float, times: int = 1) -> None:
        self.faults.setdefault(provider, []).append(Fault(delay=seconds, times=times))

    def of(self, provider: str) -> list[Received]:
        return [r for r in self.requests if r.provider == provider]

    def reset(self) -> None:
        self.requests.clear()
        self.faults.clear()
        self.max_inflight = 0

    # -- plumbing -------------------------------------------------------------------------------------
    def _fault(self, provider: str) -> Fault | None:
        queue = self.faults.get(provider) or []
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        return fault

    async def _log(self, provider: str, request: Request) -> Received:
        raw = await request.body()
        body: Any = None
        if raw and request.headers.get("content-type", "").startswith("application/json"):
            import json as _json
            try:
                body = _json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
        elif raw:
            body = raw.decode(errors="replace")
        params = dict(request.query_params)
        if request.method == "POST" and request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"):
            params.update(dict(await request.form()))
        received = Received(provider, request.method, request.url.path, params,
                            {k.lower(): v for k, v in request.headers.items()}, body)
        self.requests.append(received)
        return received

    async def _maybe_fault(self, provider: str) -> Response | None:
        fault = self._fault(provider)
        if fault is None:
            return None
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.status is None:
            return None
        return _error(provider, fault.status, fault.message)

    # -- providers ------------------------------------------------------------------------------------
    async def tavily(self, request: Request) -> Response:
        got = await self._log("tavily", request)
        faulted = await self._maybe_fault("tavily")
        if faulted is not None:
            return faulted
        if got.headers.get("authorization") != f"Bearer {TAVILY_KEY}":
            return JSONResponse({"detail": {"error": "Unauthorized: missing or invalid API key."}}, 401)
        body = got.json if isinstance(got.json, dict) else {}
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            return JSONResponse({"detail": {"error": "Query is missing."}}, 400)
        max_results = body.get("max_results", 5)
        if not isinstance(max_results, int) or not 0 <= max_results <= 20:
            return JSONResponse({"detail": {"error": "max_results must be between 0 and 20."}}, 400)
        if body.get("topic", "general") not in ("general", "news", "finance"):
            return JSONResponse({"detail": {"error": "Invalid topic. Must be 'general', 'news' or 'finance'."}},
                                400)
        country = _TAVILY_COUNTRY_TO_ISO.get(str(body.get("country") or "").lower())
        found = search_corpus(query, country=country, include=body.get("include_domains") or None,
                              exclude=body.get("exclude_domains") or None)[:max_results]
        advanced = body.get("search_depth") == "advanced"
        results = []
        for doc, score in found:
            parts = sentences(doc.body)
            content = " [...] ".join(parts[:3]) if advanced else parts[0]
            results.append({"title": doc.title, "url": doc.url, "content": content, "score": score,
                            "raw_content": doc.body if body.get("include_raw_content") else None})
        request_id = hashlib.sha256(repr(sorted(body.items())).encode()).hexdigest()[:16]
        return JSONResponse({"query": query, "follow_up_questions": None, "answer": None, "images": [],
                             "results": results, "response_time": 0.42, "request_id": request_id})

    async def brave(self, request: Request) -> Response:
        got = await self._log("brave", request)
        faulted = await self._maybe_fault("brave")
        if faulted is not None:
            return faulted
        if got.headers.get("x-subscription-token") != BRAVE_KEY:
            return JSONResponse({"type": "ErrorResponse", "error": {
                "id": "00000000-0000-0000-0000-000000000001", "status": 422, "code": "SUBSCRIPTION_TOKEN_INVALID",
                "detail": "The provided subscription token is invalid.", "meta": {"component": "authentication"}},
                "time": 1764547200}, 422)
        q = got.params.get("q", "")
        count = got.params.get("count", "20")
        if not q.strip() or not count.isdigit() or not 1 <= int(count) <= 20:
            return JSONResponse({"type": "ErrorResponse", "error": {
                "id": "00000000-0000-0000-0000-000000000002", "status": 422, "code": "VALIDATION",
                "detail": "Unable to validate request parameter(s)", "meta": {"component": "validation"}},
                "time": 1764547200}, 422)
        sites = [s.lower() for s in _SITE.findall(q)]
        country = (got.params.get("country") or got.headers.get("x-loc-country") or "").upper() or None
        found = search_corpus(q, country=country, include=sites or None)[:int(count)]
        extra = got.params.get("extra_snippets") == "true"
        results = []
        for doc, _ in found:
            parts = sentences(doc.body)
            host = urlsplit(doc.url).hostname
            result: dict[str, Any] = {"type": "search_result", "subtype": "generic", "title": doc.title,
                                      "url": doc.url, "description": parts[0], "is_source_local": False,
                                      "is_source_both": False, "family_friendly": True, "language": "en",
                                      "profile": {"name": host, "url": doc.url, "long_name": host},
                                      "meta_url": {"scheme": "https", "netloc": host, "hostname": host,
                                                   "path": urlsplit(doc.url).path}}
            if doc.published:
                result["page_age"] = f"{doc.published}T00:00:00"
                result["age"] = doc.published
            if extra and len(parts) > 1:
                result["extra_snippets"] = parts[1:6]
            results.append(result)
        return JSONResponse({"type": "search", "query": {
            "original": q, "altered": None, "more_results_available": False, "spellcheck_off": True,
            "country": (country or "US").lower(), "search_operators": {"applied": bool(sites), "sites": sites}},
            "web": {"type": "search", "family_friendly": True, "results": results},
            "mixed": {"type": "mixed", "main": [{"type": "web", "index": i, "all": False}
                                                for i in range(len(results))]}})

    async def searxng(self, request: Request) -> Response:
        got = await self._log("searxng", request)
        faulted = await self._maybe_fault("searxng")
        if faulted is not None:
            return faulted
        if got.params.get("format") != "json":
            return HTMLResponse("<!doctype html><title>403 Forbidden</title><h1>Forbidden</h1>", 403)
        q = got.params.get("q", "")
        if not q.strip():
            return JSONResponse({"error": "No query"}, 400)
        found = search_corpus(q)  # site: is ignored by this "engine"
        results = []
        for position, (doc, score) in enumerate(found, start=1):
            parts = urlsplit(doc.url)
            results.append({"url": doc.url, "title": doc.title, "content": " ".join(sentences(doc.body)[:2]),
                            "engine": "standin", "engines": ["standin"], "positions": [position],
                            "score": round(score * 2, 4), "category": "general",
                            "publishedDate": f"{doc.published}T00:00:00" if doc.published else None,
                            "parsed_url": [parts.scheme, parts.netloc, parts.path, "", parts.query, ""],
                            "template": "default.html", "priority": ""})
        return JSONResponse({"query": q, "number_of_results": 0, "results": results, "answers": [],
                             "corrections": [], "infoboxes": [], "suggestions": [],
                             "unresponsive_engines": []})

    def _counted(self, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            try:
                return await handler(request)
            finally:
                self.inflight -= 1
        return endpoint

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/tavily/search", self._counted(self.tavily), methods=["POST"]),
            Route("/brave/res/v1/web/search", self._counted(self.brave), methods=["GET"]),
            Route("/searxng/search", self._counted(self.searxng), methods=["GET", "POST"]),
        ])


def _error(provider: str, status: int, message: str | None = None) -> Response:
    if provider == "tavily":
        message = message or {429: "Too many requests", 432: "Plan usage limit exceeded"}.get(
            status, "Internal server error")
        headers = {"retry-after": "2"} if status == 429 else None
        return JSONResponse({"detail": {"error": message}}, status, headers=headers)
    if provider == "brave":
        code = "RATE_LIMITED" if status == 429 else "INTERNAL_ERROR"
        detail = message or ("Request rate limit exceeded for plan" if status == 429 else "Internal server error")
        headers = {"X-RateLimit-Limit": "1, 15000", "X-RateLimit-Remaining": "0, 14000",
                   "X-RateLimit-Reset": "1, 1000000"} if status == 429 else None
        return JSONResponse({"type": "ErrorResponse", "error": {
            "id": "00000000-0000-0000-0000-000000000003", "status": status, "code": code, "detail": detail,
            "meta": {"plan": "Free", "component": "rate_limiter"}}, "time": 1764547200}, status, headers=headers)
    if status == 403:  # Flask's page for a format missing from search.formats
        return HTMLResponse("<!doctype html><title>403 Forbidden</title><h1>Forbidden</h1>", 403)
    if status == 429:
        return PlainTextResponse(message or "Too Many Requests", 429)
    return JSONResponse({"error": message or "search error"}, status)


class StandinServer:
    """The stand-ins under uvicorn in a background thread, on a random loopback port."""

    def __init__(self) -> None:
        self.standins = SearchStandins()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.standins.port = self._sock.getsockname()[1]
        config = uvicorn.Config(self.standins.app, log_level="warning", lifespan="off", access_log=False,
                                timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="search-standins", daemon=True)
        self.running = False

    def start(self) -> SearchStandins:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the search stand-ins did not start")
            time.sleep(0.01)
        self.running = True
        return self.standins

    def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        self._server.should_exit = True
        self._server.force_exit = True  # a deliberately slow handler must not hold the test up
        self._thread.join(timeout=5)
        self._sock.close()


@pytest.fixture
def search_standin() -> Iterator[StandinServer]:
    """Started stand-ins (`.standins` is the SearchStandins: base_url(), fail(), slow(), requests)."""
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    server = StandinServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
