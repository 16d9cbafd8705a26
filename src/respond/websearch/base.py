"""The provider-neutral side of web search: what is asked, what comes back, domain filtering.

A `SearchProvider` turns a `SearchQuery` into one HTTP call (`build`) and the provider's JSON answer into
`SearchResult`s (`parse`); `SearchProvider.search` performs the call through the Recorder, then enforces
the domain filter and the result count on whatever came back (providers without a native domain filter,
and providers that only "prefer" the listed domains, are held to it the same way).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp

from respond import jsonutil
from respond.errors import UpstreamError
from respond.recording.errors import RecordingNotFound
from respond.recording.recorder import OutboundRequest, Recorder

log = logging.getLogger("respond.websearch")

ContextSize = Literal["low", "medium", "high"]
CONTEXT_SIZES = ("low", "medium", "high")
LOCATION_FIELDS = ("country", "region", "city", "timezone")
ERROR_CODE = "web_search_failed"


@dataclass(frozen=True)
class SearchQuery:
    """One search as the tool asks it. `allowed_domains` are normalized host names (see `normalize_domain`);
    `user_location` holds any of country (ISO-2), region, city, timezone."""

    query: str
    max_results: int = 5
    allowed_domains: tuple[str, ...] = ()
    user_location: Mapping[str, str] = field(default_factory=dict)
    context_size: ContextSize = "medium"


@dataclass
class SearchResult:
    url: str
    title: str
    content: str  # the snippet (or chunks) the provider gave for this page
    score: float | None = None
    published: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "title": self.title, "content": self.content, "score": self.score,
                "published": self.published}


@dataclass
class HTTPCall:
    """One provider request: `endpoint` is a stable name for it (the recording's identity: host and port,
    which differ between a stand-in and the real service, are not part of the hash); `description` is the
    request as recorded and hashed (query parameters or JSON body, plus hints sent as headers).
    `secret_headers` are sent but never recorded."""

    method: str
    url: str
    endpoint: str
    params: dict[str, str] | None = None
    json: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    secret_headers: dict[str, str] = field(default_factory=dict)

    def description(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.params is not None:
            out["params"] = self.params
        if self.json is not None:
            out["json"] = self.json
        if self.headers:
            out["headers"] = self.headers
        return out


def results_for(q: SearchQuery, cap: int) -> int:
    """How many results a search asks for and keeps: low 3, medium 5, high `cap` (the configured
    max_results), never more than `cap` or the query's own max_results."""
    wanted = {"low": 3, "medium": 5}.get(q.context_size, cap)
    return max(1, min(wanted, cap, q.max_results))


def normalize_domain(value: str) -> str:
    """`https://Docs.Python.org/3/` -> `docs.python.org`: the host part, lower-case, no trailing dot."""
    text = value.strip().lower()
    if "://" not in text:
        text = "//" + text
    host = urlsplit(text).hostname or ""
    return host.rstrip(".")


def domain_allowed(url: str, allowed: tuple[str, ...]) -> bool:
    """Whether `url`'s host is one of `allowed` or a subdomain of one (empty `allowed`: every domain)."""
    if not allowed:
        return True
    try:
        host = (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return False
    return any(host == d or host.endswith("." + d) for d in allowed)


def site_operators(domains: tuple[str, ...]) -> str:
    """`site:` operators for providers without a domain parameter (honoured per engine, so results are
    filtered afterwards anyway)."""
    return " OR ".join(f"site:{d}" for d in domains)


class SearchProvider:
    """Base class: subclasses set `name` and implement `build` and `parse`."""

    name: str = ""
    response_type: str = ""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 15.0,
                 max_results: int = 8, recorder: Recorder | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.max_results = max_results
        self.recorder = recorder or Recorder("live", None)
        self.recorder.add_secret(api_key)
        self._replay: Recorder | None = None

    # -- to implement -------------------------------------------------------------------------------------
    def build(self, q: SearchQuery) -> HTTPCall:
        raise NotImplementedError

    def parse(self, data: Any) -> list[SearchResult]:
        raise NotImplementedError

    def error_message(self, status: int, data: Any, text: str) -> str:
        return f"{self.name} answered HTTP {status}: {text[:200]}"

    # -- the call -------------------------------------------------------------------------------------------
    async def search(self, q: SearchQuery, *, live: bool = True) -> list[SearchResult]:
        """Search (live, recorded or replayed), keep only allowed domains, at most `results_for(q)`.

        `live=False` (the tool's `external_web_access: false`): answer from recordings only, never the network.
        """
        call = self.build(q)
        req = OutboundRequest(method=call.method, url=call.url, endpoint=call.endpoint, body=call.description(),
                              headers=dict(call.headers), model=self.name)
        recorder = self.recorder if live else self._offline_recorder()
        try:
            data = await recorder.call(req, lambda: self._fetch(call), response_type=self.response_type)
        except RecordingNotFound:
            if live:
                raise
            raise UpstreamError("Live web access is disabled for this request (external_web_access: false) and "
                                "this server holds no recorded answer for this search.", code=ERROR_CODE) from None
        try:
            results = self.parse(data)
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            raise UpstreamError(f"{self.name} sent an answer that is not a search result list ({exc}).",
                                code=ERROR_CODE) from None
        kept = [r for r in results if r.url and domain_allowed(r.url, q.allowed_domains)]
        return kept[:results_for(q, self.max_results)]

    def _offline_recorder(self) -> Recorder:
        if self._replay is None:
            if self.recorder.mode == "replay" or self.recorder.directory is None:
                self._replay = self.recorder
            else:
                self._replay = Recorder("replay", self.recorder.directory)
        if self._replay.mode != "replay":  # live mode, no recordings: nothing may be answered offline
            raise UpstreamError("Live web access is disabled for this request (external_web_access: false) and "
                                "this server keeps no recorded searches.", code=ERROR_CODE)
        return self._replay

    async def _fetch(self, call: HTTPCall) -> Any:
        headers = {"Accept": "application/json", **call.headers, **call.secret_headers}
        if call.json is not None:
            headers["Content-Type"] = "application/json"
        try:
            # one short-lived session per search: searches are rare next to model calls, and nothing is left
            # open when the app stops; proxies from the environment (HTTPS_PROXY, NO_PROXY) are honoured
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout), trust_env=True,
                                             skip_auto_headers=("User-Agent",)) as http, \
                    http.request(call.method, call.url, params=call.params, headers=headers,
                                 data=jsonutil.dumpb(call.json) if call.json is not None else None) as resp:
                raw = await resp.read()
                status = resp.status
        except TimeoutError:
            raise UpstreamError(f"{self.name} did not answer within {self.timeout:g} s.", code=ERROR_CODE) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"{self.name} is unreachable at {self.base_url} ({type(exc).__name__}).",
                                code=ERROR_CODE) from None
        text = raw.decode("utf-8", errors="replace")
        try:
            data: Any = jsonutil.loads(raw) if raw else None
        except ValueError:
            data = None
        if status >= 300:
            message = self.error_message(status, data, text)
            if self.api_key and self.api_key in message:  # a provider that echoes the key: not to the model/logs
                message = message.replace(self.api_key, "<redacted>")
            raise UpstreamError(message, upstream_status=status, code=ERROR_CODE,
                                body=data if data is not None else text[:500])
        if not isinstance(data, dict):
            raise UpstreamError(f"{self.name} answered with something other than a JSON object.",
                                upstream_status=status, code=ERROR_CODE, body=text[:500])
        return data

    async def aclose(self) -> None:
        """Nothing stays open between searches; kept so callers can treat providers like other clients."""
