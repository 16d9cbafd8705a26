"""SearXNG, Tavily and Brave: each provider's HTTP request mapping and answer parsing.

How the tool's options reach each one (see docs/web_search.md for the table):
- allowed domains: Tavily `include_domains`; Brave and SearXNG get `site:` operators in the query. Results
  are filtered by domain afterwards in every case (`SearchProvider.search`).
- user location: Tavily `country` (English name); Brave `country` (when on its list) and the `X-Loc-*`
  headers; SearXNG has no location parameter (nothing is sent).
- context size: how many results are asked for (low 3, medium 5, high max_results) and, on high, richer
  text (Tavily `search_depth=advanced`, Brave `extra_snippets`).
"""

from __future__ import annotations

from typing import Any

from respond.config import WEB_SEARCH_URLS, WebSearchConfig
from respond.recording.recorder import Recorder
from respond.websearch.base import (
    HTTPCall,
    SearchProvider,
    SearchQuery,
    SearchResult,
    results_for,
    site_operators,
)

# ISO 3166-1 alpha-2 -> the lower-case English name Tavily's `country` takes (Tavily has no ISO codes).
TAVILY_COUNTRIES = {
    "AR": "argentina", "AT": "austria", "AU": "australia", "BE": "belgium", "BR": "brazil", "CA": "canada",
    "CH": "switzerland", "CL": "chile", "CN": "china", "CO": "colombia", "CZ": "czech republic",
    "DE": "germany", "DK": "denmark", "EG": "egypt", "ES": "spain", "FI": "finland", "FR": "france",
    "GB": "united kingdom", "GR": "greece", "HK": "hong kong", "HU": "hungary", "ID": "indonesia",
    "IE": "ireland", "IL": "israel", "IN": "india", "IT": "italy", "JP": "japan", "KE": "kenya",
    "KR": "south korea", "MX": "mexico", "MY": "malaysia", "NG": "nigeria", "NL": "netherlands",
    "NO": "norway", "NZ": "new zealand", "PE": "peru", "PH": "philippines", "PK": "pakistan", "PL": "poland",
    "PT": "portugal", "RO": "romania", "RU": "russia", "SA": "saudi arabia", "SE": "sweden",
    "SG": "singapore", "TH": "thailand", "TR": "turkey", "TW": "taiwan", "UA": "ukraine",
    "AE": "united arab emirates", "US": "united states", "VN": "vietnam", "ZA": "south africa",
}
# The countries Brave's `country` parameter accepts.
BRAVE_COUNTRIES = frozenset(
    "AR AU AT BE BR CA CL DK FI FR DE HK IN ID IT JP KR MY MX NL NZ NO CN PL PT PH RU SA ZA ES SE CH TW TR GB US"
    .split())


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _score(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _detail(data: Any) -> str | None:
    """An error message out of the common JSON error shapes (Tavily, Brave, SearXNG)."""
    if not isinstance(data, dict):
        return None
    detail = data.get("detail")
    if isinstance(detail, dict):
        return _text(detail.get("error")) or None
    if isinstance(detail, str):
        return detail
    error = data.get("error")
    if isinstance(error, dict):
        return _text(error.get("detail")) or _text(error.get("message")) or _text(error.get("code")) or None
    if isinstance(error, str):
        return error
    errors = data.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return _text(errors[0].get("detail")) or _text(errors[0].get("code")) or None
    return None


class TavilyProvider(SearchProvider):
    name = "tavily"
    response_type = "respond.websearch.tavily.SearchResponse"

    def build(self, q: SearchQuery) -> HTTPCall:
        body: dict[str, Any] = {"query": q.query, "max_results": results_for(q, self.max_results),
                                "search_depth": "advanced" if q.context_size == "high" else "basic",
                                "topic": "general", "include_answer": False, "include_raw_content": False,
                                "include_images": False}
        if q.allowed_domains:
            body["include_domains"] = list(q.allowed_domains)
        country = TAVILY_COUNTRIES.get((q.user_location.get("country") or "").upper())
        if country:
            body["country"] = country
        return HTTPCall("POST", f"{self.base_url}/search", "tavily:/search", json=body,
                        secret_headers={"Authorization": f"Bearer {self.api_key}"} if self.api_key else {})

    def parse(self, data: Any) -> list[SearchResult]:
        return [SearchResult(url=_text(r.get("url")), title=_text(r.get("title")) or _text(r.get("url")),
                             content=_text(r.get("content")), score=_score(r.get("score")),
                             published=_text(r.get("published_date")) or None)
                for r in data.get("results") or [] if isinstance(r, dict)]

    def error_message(self, status: int, data: Any, text: str) -> str:
        reason = {401: "the API key is missing or invalid", 429: "rate limited", 432: "plan usage limit reached",
                  433: "spending limit reached"}.get(status)
        detail = _detail(data) or reason or text[:200]
        return f"Tavily search failed (HTTP {status}): {detail}"


def _with_sites(q: SearchQuery) -> str:
    """The query, restricted to `allowed_domains` with site: operators (for providers without a domain
    parameter; results are also filtered by domain afterwards)."""
    return f"{q.query} {site_operators(q.allowed_domains)}" if q.allowed_domains else q.query


class BraveProvider(SearchProvider):
    name = "brave"
    response_type = "respond.websearch.brave.WebSearchApiResponse"

    def build(self, q: SearchQuery) -> HTTPCall:
        query = _with_sites(q)
        params = {"q": query, "count": str(min(20, results_for(q, self.max_results))), "result_filter": "web",
                  "text_decorations": "false"}
        if q.context_size == "high":
            params["extra_snippets"] = "true"
        location = q.user_location
        country = (location.get("country") or "").upper()
        if country in BRAVE_COUNTRIES:
            params["country"] = country
        headers: dict[str, str] = {}
        for field_name, header in (("country", "X-Loc-Country"), ("region", "X-Loc-State-Name"),
                                   ("city", "X-Loc-City"), ("timezone", "X-Loc-Timezone")):
            value = location.get(field_name)
            if value:
                headers[header] = value.upper() if field_name == "country" else value
        return HTTPCall("GET", f"{self.base_url}/res/v1/web/search", "brave:/res/v1/web/search", params=params,
                        headers=headers,
                        secret_headers={"X-Subscription-Token": self.api_key} if self.api_key else {})

    def parse(self, data: Any) -> list[SearchResult]:
        out = []
        for r in (data.get("web") or {}).get("results") or []:
            if not isinstance(r, dict):
                continue
            content = _text(r.get("description"))
            extra = [s for s in r.get("extra_snippets") or [] if isinstance(s, str)]
            if extra:
                content = " ".join([content, *extra]).strip()
            out.append(SearchResult(url=_text(r.get("url")), title=_text(r.get("title")) or _text(r.get("url")),
                                    content=content, published=_text(r.get("page_age")) or _text(r.get("age"))
                                    or None))
        return out

    def error_message(self, status: int, data: Any, text: str) -> str:
        code = ((data or {}).get("error") or {}).get("code") if isinstance(data, dict) else None
        detail = _detail(data) or text[:200]
        if code == "SUBSCRIPTION_TOKEN_INVALID":
            detail = "the API key is invalid"
        return f"Brave search failed (HTTP {status}{', ' + code if code else ''}): {detail}"


class SearxngProvider(SearchProvider):
    name = "searxng"
    response_type = "respond.websearch.searxng.SearchResponse"

    def build(self, q: SearchQuery) -> HTTPCall:
        query = _with_sites(q)
        # no result-count parameter: the answer is trimmed client-side
        return HTTPCall("GET", f"{self.base_url}/search", "searxng:/search",
                        params={"q": query, "format": "json", "pageno": "1"})

    def parse(self, data: Any) -> list[SearchResult]:
        return [SearchResult(url=_text(r.get("url")), title=_text(r.get("title")) or _text(r.get("url")),
                             content=_text(r.get("content")), score=_score(r.get("score")),
                             published=_text(r.get("publishedDate")) or None)
                for r in data.get("results") or [] if isinstance(r, dict)]

    def error_message(self, status: int, data: Any, text: str) -> str:
        if status == 403:
            return ("SearXNG refused format=json (HTTP 403): add `json` to `search.formats` in the instance's "
                    "settings.yml.")
        return f"SearXNG search failed (HTTP {status}): {_detail(data) or text[:200]}"


PROVIDERS: dict[str, type[SearchProvider]] = {"searxng": SearxngProvider, "tavily": TavilyProvider,
                                              "brave": BraveProvider}
ENV_KEYS = {"tavily": "TAVILY_API_KEY", "brave": "BRAVE_API_KEY"}


def build_search_provider(config: WebSearchConfig, recorder: Recorder) -> SearchProvider | None:
    """The configured provider, or None when web search is off. Raises ValueError on a config that cannot
    work (searxng without base_url, tavily/brave without a key), at start-up."""
    if config.provider is None:
        return None
    if config.record_mode is not None:
        directory = config.recordings_dir or recorder.directory
        recorder = Recorder(config.record_mode, directory)
    base_url = config.base_url or WEB_SEARCH_URLS.get(config.provider)
    if not base_url:
        raise ValueError("web_search.provider 'searxng' needs web_search.base_url (or SEARXNG_URL): the URL of "
                         "your SearXNG instance, with `json` in its search.formats.")
    if config.provider in ENV_KEYS and not config.api_key:
        raise ValueError(f"web_search.provider '{config.provider}' needs web_search.api_key "
                         f"(or {ENV_KEYS[config.provider]} in the environment).")
    return PROVIDERS[config.provider](base_url, api_key=config.api_key, timeout=config.timeout,
                                      max_results=config.max_results, recorder=recorder)
