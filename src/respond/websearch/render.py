"""What the model reads: search results as numbered sources, bounded by `search_context_size`.

The tool's output to the model is plain text::

    Web search results for "python 3.13 release" (cite a source as [n] right after what it supports):

    [1] What's New In Python 3.13
    URL: https://docs.python.org/3/whatsnew/3.13.html
    Python 3.13 was released on October 7, 2024 ...

Numbers run on across the searches of one response ([1]-[5] for the first, [6]-... for the next), so a
number names one source for the whole answer; `citations.Citations` maps them back to url_citation
annotations. `search_context_size` bounds the text: per result and in total (CONTEXT_BUDGETS, characters).
"""

from __future__ import annotations

from respond.websearch.base import SearchResult

# (characters per result, characters for all results of one search)
CONTEXT_BUDGETS = {"low": (300, 1200), "medium": (800, 4000), "high": (2000, 12000)}


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] or text[:limit]
    return cut + " ..."


def render_results(query: str, results: list[SearchResult], first_number: int, context_size: str) -> str:
    """The tool output for one search; result i is numbered first_number + i."""
    if not results:
        return f'Web search results for "{query}": no results found.'
    per_result, total = CONTEXT_BUDGETS.get(context_size, CONTEXT_BUDGETS["medium"])
    lines = [f'Web search results for "{query}" (cite a source as [n] right after what it supports):']
    used = 0
    for offset, result in enumerate(results):
        room = min(per_result, total - used)
        content = _clip(result.content, room) if room > 0 else ""
        used += len(content)
        block = [f"\n[{first_number + offset}] {result.title}", f"URL: {result.url}"]
        if result.published:
            block.append(f"Published: {result.published}")
        if content:
            block.append(content)
        lines.extend(block)
    return "\n".join(lines)


def render_failure(query: str, message: str) -> str:
    return (f'The web search for "{query}" failed: {message} Answer without it, and tell the user the web '
            "search failed.")


def render_refused(query: str, reason: str) -> str:
    return f'The web search for "{query}" was not run: {reason}'
