"""The `web_search` tool on the tool seam: search providers from `respond.websearch`, one
`web_search_call` item per search, numbered sources cited as `url_citation` annotations.

Events of one call, in OpenAI's order: output_item.added (in_progress, action {type: search}) ->
web_search_call.in_progress -> web_search_call.searching -> [the search] -> web_search_call.completed ->
output_item.done (completed, action.query; `sources` with include=web_search_call.action.sources,
`results` with include=web_search_call.results). A failed search (provider down, slow, rate-limited) ends
the item `failed` (no completed event) and the model reads why, so the response still completes.

History: a `web_search_call` in a chain (or sent back by a store=false client) reaches the model as the
call it made and what it found, as far as the item tells (sources or results when they were included).
"""

from __future__ import annotations

import logging
import weakref
from typing import Any, ClassVar

from respond import jsonutil
from respond.errors import InvalidRequest
from respond.ids import new_id
from respond.responses.events import EventStream
from respond.responses.tools.base import Tool, ToolCall, ToolEnv, ToolResult, ToolRun
from respond.responses.tools.registry import item_kind, tool_kind
from respond.websearch.base import SearchProvider
from respond.websearch.citations import Citations
from respond.websearch.providers import build_search_provider
from respond.websearch.tool import (
    FUNCTION_NAME,
    NOT_CONFIGURED,
    TOOL_TYPES,
    WebSearchSpec,
    chat_function,
    new_call_item,
    parse_tool,
    query_from,
    run_search,
)

log = logging.getLogger("respond.websearch")

# One numbering of sources per response, shared by all its web_search tools (keyed by response id).
_CITATIONS: weakref.WeakValueDictionary[str, Citations] = weakref.WeakValueDictionary()


def _provider(env: ToolEnv, where: str, *, required: bool = True) -> SearchProvider | None:
    """The app's search provider, built on first use; a 400 saying how to configure one when there is none
    (None instead when not `required`)."""
    state = env.state.get("web_search")
    if state is None:
        try:
            state = build_search_provider(env.config.web_search, env.recorder) or NOT_CONFIGURED
        except ValueError as exc:
            log.warning("web search is misconfigured: %s", exc)
            state = f"{NOT_CONFIGURED} The configuration is incomplete: {exc}"
        env.state["web_search"] = state
    if isinstance(state, str):
        if not required:
            return None
        raise InvalidRequest(state, param=where, code="web_search_not_configured")
    return state


@tool_kind(*sorted(TOOL_TYPES))
class WebSearchTool(Tool):
    kind: ClassVar[str] = "web_search"

    def __init__(self, spec: WebSearchSpec, provider: SearchProvider | None) -> None:
        self.spec = spec
        self.provider = provider  # None: no provider configured and the client asked for no live access
        self.citations = Citations()

    @classmethod
    def parse(cls, raw: dict[str, Any], where: str, env: ToolEnv) -> Tool:
        """A tool with `external_web_access: false` (Codex CLI's default "cached" search) needs no live
        provider: with none configured it is accepted and echoed but not offered to the model, so such clients
        work unchanged on a server without web search. Any other web_search tool needs a provider (a 400
        saying how to configure one)."""
        spec = parse_tool(raw, where)
        return cls(spec, _provider(env, where, required=spec.live))

    def echo(self) -> dict[str, Any]:
        return self.spec.echo

    async def setup(self, run: ToolRun) -> None:
        shared = _CITATIONS.get(run.response["id"])
        if shared is None:
            _CITATIONS[run.response["id"]] = self.citations
            run.add_annotator(self.citations.annotate)
        else:
            self.citations = shared

    def functions(self) -> list[dict[str, Any]]:
        return [chat_function()] if self.provider is not None else []

    def matches_choice(self, choice: dict[str, Any]) -> bool:
        return self.provider is not None and choice.get("type") in TOOL_TYPES

    def start_call(self, name: str, call_id: str, output_index: int) -> ToolCall:
        return WebSearchCall(self, name, call_id, output_index)


class WebSearchCall(ToolCall):
    tool: WebSearchTool

    def __init__(self, tool: WebSearchTool, name: str, call_id: str, output_index: int) -> None:
        super().__init__(tool, name, call_id, output_index)
        self.item = new_call_item()
        # the order the model made its searches in, for numbering sources (taken as the model starts the
        # call; released when it ran, was skipped or was cut short)
        self.ticket = self.tool.citations.ticket()

    def close(self, events: EventStream, arguments: str, incomplete: bool) -> None:
        query = query_from(arguments)
        if query:
            self.item["action"]["query"] = query
            self.item["action"]["queries"] = [query]
        if incomplete:
            self.tool.citations.done(self.ticket)
        super().close(events, arguments, incomplete)

    def skip(self, run: ToolRun, message: str) -> ToolResult:
        self.tool.citations.done(self.ticket)
        return super().skip(run, message)

    async def execute(self, run: ToolRun) -> ToolResult:
        events, item_id, index = run.events, self.item["id"], self.output_index
        events.tool_status("web_search_call", "in_progress", item_id, index)
        events.tool_status("web_search_call", "searching", item_id, index)
        outcome = await run_search(self.tool.provider, self.tool.spec, self.item, self.tool.citations, self.ticket,
                                   run.include)
        if not outcome.failed:
            events.tool_status("web_search_call", "completed", item_id, index)
        events.item_done(index, self.item)
        return ToolResult(outcome.output)


# -- items as input and in history ------------------------------------------------------------------

_STATUSES = ("in_progress", "searching", "completed", "failed", "incomplete")


def _normalize(item: dict[str, Any], where: str) -> dict[str, Any]:
    action = item.get("action") if isinstance(item.get("action"), dict) else {"type": "search"}
    if action.get("type") not in ("search", "open_page", "find_in_page"):
        raise InvalidRequest(f"Invalid value for '{where}.action.type': expected 'search', 'open_page' or "
                             "'find_in_page'.", param=f"{where}.action.type", code="invalid_value")
    status = item.get("status") if item.get("status") in _STATUSES else "completed"
    out = {"type": "web_search_call", "id": item.get("id") or new_id("web_search_call"), "status": status,
           "action": action}
    if isinstance(item.get("results"), list):
        out["results"] = item["results"]
    return out


def _messages(item: dict[str, Any], messages: list[dict[str, Any]]) -> None:
    action = item.get("action") or {}
    if action.get("type") != "search":
        return
    query = action.get("query") or " ".join(action.get("queries") or [])
    if item.get("status") != "completed":
        found = "The search did not complete."
    elif item.get("results"):
        found = "\n".join(f"- {r.get('title') or r.get('url')} ({r.get('url')}): {r.get('text') or ''}".rstrip(": ")
                          for r in item["results"] if isinstance(r, dict))
    elif action.get("sources"):
        found = "Sources found: " + ", ".join(s.get("url", "") for s in action["sources"] if isinstance(s, dict))
    else:
        found = "(The results of this earlier search are not kept; search again if they are needed.)"
    messages.extend([
        {"role": "assistant", "content": "", "tool_calls": [{"id": item["id"], "type": "function", "function": {
            "name": FUNCTION_NAME, "arguments": jsonutil.dumps({"query": query})}}]},
        {"role": "tool", "tool_call_id": item["id"], "content": found}])


item_kind("web_search_call", _normalize, _messages)
