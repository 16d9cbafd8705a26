"""The `web_search` tool, independent of the loop: its definition (validated, echoed), the function the
model calls, and one search turned into a `web_search_call` item plus the text the model reads.

Tool types: `web_search`, `web_search_2025_08_26`, `web_search_preview`, `web_search_preview_2025_03_11`.
Fields: `search_context_size` (low/medium/high), `user_location` ({type: approximate, country, region,
city, timezone}), `filters.allowed_domains`, and from newer clients `external_web_access` (Codex CLI):
`false` means no live web access for this request -- searches are answered from recordings only (the
server's search recorder directory, the closest thing to a cache Respond has) and otherwise fail with a
message saying live access was disabled. `search_content_types` is accepted; only text is searched.
Unknown extra fields are accepted and echoed, as newer clients send them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from respond import jsonutil
from respond.errors import APIError, InvalidRequest
from respond.ids import new_id
from respond.recording.errors import RecordingError
from respond.websearch.base import (
    CONTEXT_SIZES,
    LOCATION_FIELDS,
    SearchProvider,
    SearchQuery,
    normalize_domain,
)
from respond.websearch.citations import Citations
from respond.websearch.render import render_failure, render_refused, render_results

TOOL_TYPES = frozenset({"web_search", "web_search_2025_08_26", "web_search_preview",
                        "web_search_preview_2025_03_11"})
FUNCTION_NAME = "web_search"
INCLUDE_SOURCES = "web_search_call.action.sources"
INCLUDE_RESULTS = "web_search_call.results"
NOT_CONFIGURED = ("The web_search tool needs a search provider, and none is configured on this server. Set "
                  "SEARXNG_URL (a SearXNG instance with json in search.formats), TAVILY_API_KEY or BRAVE_API_KEY "
                  "in the server's environment, or the `web_search` section of its config file "
                  "(provider, base_url, api_key); see docs/web_search.md.")

FUNCTION_DESCRIPTION = ("Search the web for current information. Returns numbered sources; cite them in the "
                        "answer as [n] right after the statement they support.")
FUNCTION_PARAMETERS = {"type": "object", "properties": {"query": {
    "type": "string", "description": "The search query, as you would type it into a search engine."}},
    "required": ["query"], "additionalProperties": False}


@dataclass(frozen=True)
class WebSearchSpec:
    """A validated `web_search` tool definition."""

    echo: dict[str, Any]
    context_size: str = "medium"
    user_location: dict[str, str] = field(default_factory=dict)
    allowed_domains: tuple[str, ...] = ()
    live: bool = True  # external_web_access


def parse_tool(tool: dict[str, Any], where: str) -> WebSearchSpec:
    """Validate one web_search tool (400 naming the field); the echo is the tool as sent, with
    `search_context_size` defaulted and the location's type filled in, as OpenAI echoes it."""
    size = tool.get("search_context_size")
    if size is None:
        size = "medium"
    elif size not in CONTEXT_SIZES:
        raise InvalidRequest(f"Invalid value for '{where}.search_context_size': expected one of 'low', 'medium', "
                             f"'high', got {size!r}.", param=f"{where}.search_context_size", code="invalid_value")
    location: dict[str, str] = {}
    raw_location = tool.get("user_location")
    if raw_location is not None:
        if not isinstance(raw_location, dict):
            raise InvalidRequest(f"Invalid type for '{where}.user_location': expected an object.",
                                 param=f"{where}.user_location", code="invalid_type")
        if raw_location.get("type", "approximate") not in ("approximate", None):
            raise InvalidRequest(f"Invalid value for '{where}.user_location.type': only 'approximate' is "
                                 "supported.", param=f"{where}.user_location.type", code="invalid_value")
        for name in LOCATION_FIELDS:
            value = raw_location.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise InvalidRequest(f"Invalid type for '{where}.user_location.{name}': expected a string.",
                                     param=f"{where}.user_location.{name}", code="invalid_type")
            if value.strip():
                location[name] = value.strip()
        country = location.get("country")
        if country is not None and (len(country) != 2 or not country.isalpha()):
            raise InvalidRequest(f"Invalid value for '{where}.user_location.country': expected a two-letter ISO "
                                 f"3166-1 country code, got {country!r}.", param=f"{where}.user_location.country",
                                 code="invalid_value")
    domains: list[str] = []
    filters = tool.get("filters")
    if filters is not None:
        if not isinstance(filters, dict):
            raise InvalidRequest(f"Invalid type for '{where}.filters': expected an object.", param=f"{where}.filters",
                                 code="invalid_type")
        allowed = filters.get("allowed_domains")
        if allowed is not None:
            if not isinstance(allowed, list) or not all(isinstance(d, str) for d in allowed):
                raise InvalidRequest(f"Invalid type for '{where}.filters.allowed_domains': expected an array of "
                                     "strings.", param=f"{where}.filters.allowed_domains", code="invalid_type")
            for d in allowed:
                host = normalize_domain(d)
                if not host or "." not in host:
                    raise InvalidRequest(f"Invalid value for '{where}.filters.allowed_domains': {d!r} is not a "
                                         "domain name.", param=f"{where}.filters.allowed_domains",
                                         code="invalid_value")
                if host not in domains:
                    domains.append(host)
    live = tool.get("external_web_access")
    if live is not None and not isinstance(live, bool):
        raise InvalidRequest(f"Invalid type for '{where}.external_web_access': expected a boolean.",
                             param=f"{where}.external_web_access", code="invalid_type")
    echo = dict(tool)
    echo["search_context_size"] = size
    if isinstance(raw_location, dict):
        echo["user_location"] = {"type": "approximate", **{k: raw_location.get(k) for k in LOCATION_FIELDS}}
    return WebSearchSpec(echo=echo, context_size=size, user_location=location, allowed_domains=tuple(domains),
                         live=live is not False)


def chat_function() -> dict[str, Any]:
    """The function the upstream model sees for a web_search tool."""
    return {"type": "function", "function": {"name": FUNCTION_NAME, "description": FUNCTION_DESCRIPTION,
                                             "parameters": FUNCTION_PARAMETERS}}


@dataclass
class SearchOutcome:
    item: dict[str, Any]  # the finished web_search_call item
    output: str  # what the model reads
    failed: bool = False


def new_call_item() -> dict[str, Any]:
    """The web_search_call as announced (output_item.added), before the model's query is known."""
    return {"type": "web_search_call", "id": new_id("web_search_call"), "status": "in_progress",
            "action": {"type": "search"}}


def query_from(arguments: Any) -> str:
    """The query out of the model's call arguments (a JSON object with `query`; a bare string is taken as is)."""
    value: Any = arguments
    if isinstance(arguments, str):
        try:
            value = jsonutil.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return arguments.strip()
    if isinstance(value, dict):
        q = value.get("query") or value.get("q") or ""
        if isinstance(q, list):
            q = " ".join(str(x) for x in q)
        return str(q).strip()
    if isinstance(value, str):
        return value.strip()
    return ""


async def run_search(provider: SearchProvider, spec: WebSearchSpec, item: dict[str, Any], citations: Citations,
                     ticket: int, include: frozenset[str] | set[str]) -> SearchOutcome:
    """Run one search for the announced `item`; never raises for a provider failure (the item ends
    `failed` and the model is told). Sources are numbered in `citations` (shared by the response) once
    the searches the model made before this one (`ticket`) are numbered."""
    try:
        return await _search(provider, spec, item, citations, ticket, include)
    finally:
        citations.done(ticket)


async def _search(provider: SearchProvider, spec: WebSearchSpec, item: dict[str, Any], citations: Citations,
                  ticket: int, include: frozenset[str] | set[str]) -> SearchOutcome:
    query = item["action"].get("query") or ""
    if not query:
        item["status"] = "failed"
        return SearchOutcome(item, render_refused(query, "the query was empty; call web_search with a query."),
                             failed=True)
    q = SearchQuery(query=query, max_results=provider.max_results, allowed_domains=spec.allowed_domains,
                    user_location=spec.user_location, context_size=spec.context_size)  # type: ignore[arg-type]
    try:
        results = await provider.search(q, live=spec.live)
    except RecordingError:
        raise  # a replay miss is a test-setup failure, not a search failure: it fails the response, loudly
    except APIError as exc:
        item["status"] = "failed"
        return SearchOutcome(item, render_failure(query, exc.message), failed=True)
    await citations.wait_turn(ticket)
    first = citations.next_number
    for r in results:
        citations.add(r.url, r.title)
    item["status"] = "completed"
    if INCLUDE_SOURCES in include:
        item["action"]["sources"] = [{"type": "url", "url": r.url} for r in results]
    if INCLUDE_RESULTS in include:
        item["results"] = [{"url": r.url, "title": r.title, "text": r.content} for r in results]
    return SearchOutcome(item, render_results(query, results, first, spec.context_size))
