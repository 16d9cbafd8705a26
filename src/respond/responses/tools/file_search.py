"""The `file_search` tool: `{"type": "file_search", "vector_store_ids", "filters", "max_num_results",
"ranking_options"}`.

The model is offered one function, `file_search(query)`; Respond runs the search over every listed vector
store (in parallel, hybrid by default), hands the model the chunks with their file ids, filenames, scores
and attributes, and asks it to cite files as `<|file_id|>`. The output has a `file_search_call` item
(`queries`, `status`; `results` only with `include=["file_search_call.results"]`), streamed as
`response.file_search_call.in_progress / searching / completed`. Every output_text the model writes after
the search gets `file_citation` annotations (file_id, filename, index = the position of the citation
marker in the text) for the files it cites (`response.output_text.annotation.added`).
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from respond.errors import APIError, InvalidRequest
from respond.ids import new_id
from respond.responses.tools import Tool, ToolCall, ToolEnv, ToolResult, ToolRun, item_kind, tool_kind
from respond.responses.tools.base import InvalidArguments
from respond.storage.vector_filters import validate_filters
from respond.vector_stores.service import parse_ranking

DEFAULT_MAX_RESULTS = 10
FUNCTION = {
    "type": "function",
    "function": {
        "name": "file_search",
        "description": "Search the user's uploaded files for passages relevant to a query. Use it to answer "
                       "questions about the content of those files.",
        "parameters": {"type": "object", "properties": {"query": {
            "type": "string",
            "description": "The query to search for. Can be a natural language sentence or keywords."}},
            "required": ["query"]},
    },
}
CITE = re.compile(r"<\|(file[-_][A-Za-z0-9_-]+)\|>")


@tool_kind("file_search")
class FileSearchTool(Tool):
    kind: ClassVar[str] = "file_search"

    def __init__(self, store_ids: list[str], filters: dict | None, max_results: int, ranking: dict | None) -> None:
        self.store_ids = store_ids
        self.filters = filters
        self.max_results = max_results
        self.ranking = ranking
        self.where = "tools[0]"  # set by parse

    @classmethod
    def parse(cls, raw: dict[str, Any], where: str, env: ToolEnv) -> FileSearchTool:
        store_ids = raw.get("vector_store_ids")
        if not isinstance(store_ids, list) or not store_ids or not all(isinstance(s, str) and s for s in store_ids):
            raise InvalidRequest(f"Invalid value for '{where}.vector_store_ids': expected a non-empty array of "
                                 "vector store ids.", param=f"{where}.vector_store_ids", code="invalid_value")
        filters = validate_filters(raw.get("filters"), f"{where}.filters")
        max_results = raw.get("max_num_results", DEFAULT_MAX_RESULTS)
        if max_results is None:
            max_results = DEFAULT_MAX_RESULTS
        if not isinstance(max_results, int) or isinstance(max_results, bool) or not 1 <= max_results <= 50:
            raise InvalidRequest(f"Invalid value for '{where}.max_num_results': expected an integer between 1 "
                                 "and 50.", param=f"{where}.max_num_results", code="invalid_value")
        ranking = raw.get("ranking_options")
        parse_ranking(ranking, f"{where}.ranking_options")
        tool = cls(list(dict.fromkeys(store_ids)), filters, max_results, ranking)
        tool.where = where
        return tool

    def echo(self) -> dict[str, Any]:
        ranking = dict(self.ranking or {})
        ranking.setdefault("ranker", "auto")
        ranking.setdefault("score_threshold", 0.0)
        return {"type": "file_search", "vector_store_ids": self.store_ids, "filters": self.filters,
                "max_num_results": self.max_results, "ranking_options": ranking}

    async def check_access(self, env: ToolEnv, owner: str) -> None:
        """Every vector store named must be the owner's: 404 (as for an unknown id) before anything runs."""
        service = env.state.get("vector_stores")
        if service is not None:
            for index, store_id in enumerate(self.store_ids):
                await service.require_store(owner, store_id, param=f"{self.where}.vector_store_ids[{index}]")

    def functions(self) -> list[dict[str, Any]]:
        return [FUNCTION]

    def start_call(self, name: str, call_id: str, output_index: int) -> FileSearchCall:
        return FileSearchCall(self, name, call_id, output_index)


class FileSearchCall(ToolCall):
    def __init__(self, tool: Tool | None, name: str, call_id: str, output_index: int) -> None:
        super().__init__(tool, name, call_id, output_index)
        self.item = {"type": "file_search_call", "id": new_id("file_search_call"), "queries": [],
                     "status": "in_progress", "results": None}

    def close(self, events: Any, arguments: str, incomplete: bool) -> None:
        self.item["queries"] = _queries(arguments)
        super().close(events, arguments, incomplete)

    async def execute(self, run: ToolRun) -> ToolResult:
        tool = self.tool
        assert isinstance(tool, FileSearchTool)
        events, item_id, index = run.events, self.item["id"], self.output_index
        events.tool_status("file_search_call", "in_progress", item_id, index)
        events.tool_status("file_search_call", "searching", item_id, index)
        try:
            queries = self.item["queries"] or _queries(self.arguments, strict=True)
            self.item["queries"] = queries
            service = run.env.state.get("vector_stores")
            if service is None:
                raise APIError("File search is not available on this server.")
            hits = await service.search_stores(run.owner, tool.store_ids, queries, tool.filters,
                                               tool.max_results, tool.ranking)
        except (InvalidArguments, APIError) as exc:
            self.item["status"] = "failed"
            events.item_done(index, self.item)
            message = exc.message if isinstance(exc, APIError) else str(exc)
            return ToolResult(f"The file search failed: {message}")
        self.item["status"] = "completed"
        if "file_search_call.results" in run.include:
            self.item["results"] = [{"file_id": h["file_id"], "filename": h["filename"], "score": h["score"],
                                     "attributes": h["attributes"] or {}, "text": h["text"]} for h in hits]
        events.tool_status("file_search_call", "completed", item_id, index)
        events.item_done(index, self.item)
        if hits:
            run.add_annotator(_citations({h["file_id"]: h["filename"] for h in hits}))
        return ToolResult(format_results(queries, hits))


def _queries(arguments: str, strict: bool = False) -> list[str]:
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        if strict:
            raise InvalidArguments(f"The arguments are not valid JSON: {arguments[:200]!r}") from None
        return []
    if not isinstance(value, dict):
        if strict:
            raise InvalidArguments("The arguments must be a JSON object with a 'query'.")
        return []
    queries = value.get("queries")
    if isinstance(queries, list) and queries and all(isinstance(q, str) and q.strip() for q in queries):
        return queries
    query = value.get("query")
    if isinstance(query, str) and query.strip():
        return [query]
    if strict:
        raise InvalidArguments("The arguments need a non-empty 'query' string.")
    return []


def format_results(queries: list[str], hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the model reads: each chunk with its file id, filename, score and attributes, then how to cite."""
    query = "; ".join(queries)
    if not hits:
        return [{"type": "text", "text": f"file_search found no results for {json.dumps(query)}. Tell the user "
                 "the files do not say, rather than guessing."}]
    parts = [{"type": "text", "text": f"file_search found {len(hits)} chunks:\nBEGIN of file_search results.\n"}]
    for i, hit in enumerate(hits, start=1):
        attributes = json.dumps(hit["attributes"] or {}, ensure_ascii=False)
        parts.append({"type": "text", "text": f"[{i}] file_id: {hit['file_id']}, filename: {hit['filename']}, "
                      f"score: {hit['score']:.4f}, attributes: {attributes} (cite as <|{hit['file_id']}|>)\n"
                      f"{hit['text']}\n"})
    parts.append({"type": "text", "text": "END of file_search results.\n"})
    parts.append({"type": "text", "text": f"The above results were retrieved to help answer the user's query: "
                  f"{json.dumps(query)}. Use them as supporting information only in answering this query. Cite "
                  "sources immediately at the end of sentences before punctuation, using `<|file-id|>` format "
                  "(e.g., 'This is a fact <|file_abc123|>.'). Do not add extra punctuation. Use only the file IDs "
                  "provided (do not invent new ones).\n"})
    return parts


def _citations(filenames: dict[str, str]) -> Any:
    def annotate(text: str) -> list[dict[str, Any]]:
        return [{"type": "file_citation", "file_id": m.group(1), "filename": filenames[m.group(1)],
                 "index": m.start()} for m in CITE.finditer(text) if m.group(1) in filenames]
    return annotate


# -- the item as input (store=false clients send it back) and in history ----------------------------------


def _normalize(item: dict[str, Any], where: str) -> dict[str, Any]:
    queries = item.get("queries")
    if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
        raise InvalidRequest(f"Invalid value for '{where}.queries': expected an array of strings.",
                             param=f"{where}.queries", code="invalid_value")
    results = item.get("results")
    if results is not None and not isinstance(results, list):
        raise InvalidRequest(f"Invalid value for '{where}.results': expected an array or null.",
                             param=f"{where}.results", code="invalid_value")
    return {"type": "file_search_call", "id": item.get("id") or new_id("file_search_call"), "queries": queries,
            "status": item.get("status") or "completed", "results": results}


def _to_messages(item: dict[str, Any], messages: list[dict[str, Any]]) -> None:
    arguments = json.dumps({"query": "; ".join(item["queries"])})
    messages.append({"role": "assistant", "content": "", "tool_calls": [
        {"id": item["id"], "type": "function", "function": {"name": "file_search", "arguments": arguments}}]})
    results = item.get("results")
    if results is None:
        content: Any = "(the search results of this earlier call are not kept)"
    else:
        content = format_results(item["queries"], [{**r, "score": float(r.get("score") or 0)} for r in results])
    messages.append({"role": "tool", "tool_call_id": item["id"], "content": content})


item_kind("file_search_call", _normalize, _to_messages)
