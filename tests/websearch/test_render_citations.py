"""What the model reads (numbered sources bounded by search_context_size) and citations -> annotations."""

from __future__ import annotations

from respond.websearch.base import SearchResult
from respond.websearch.citations import Citations
from respond.websearch.render import CONTEXT_BUDGETS, render_failure, render_results


def results(n: int, words: int) -> list[SearchResult]:
    return [SearchResult(url=f"https://site{i}.test/page", title=f"Page {i}", content=" ".join(["word"] * words))
            for i in range(n)]


def test_numbering_starts_where_the_response_is() -> None:
    text = render_results("q", results(2, 3), first_number=4, context_size="medium")
    assert text == ('Web search results for "q" (cite a source as [n] right after what it supports):\n'
                    "\n[4] Page 0\nURL: https://site0.test/page\nword word word\n"
                    "\n[5] Page 1\nURL: https://site1.test/page\nword word word")


def test_context_size_bounds_each_result_and_the_total() -> None:
    many = results(8, 2000)  # 10 000 characters each
    for size, (per_result, total) in CONTEXT_BUDGETS.items():
        text = render_results("q", many, 1, size)
        bodies = [block.split("\n")[2] for block in text.split("\n\n")[1:] if len(block.split("\n")) > 2]
        assert all(len(b) <= per_result + 4 for b in bodies)  # + " ..."
        assert sum(len(b) for b in bodies) <= total + 4 * len(bodies)
        assert text.count("URL: ") == 8  # every source is still listed (title + URL), only text is cut
    assert len(render_results("q", many, 1, "low")) < len(render_results("q", many, 1, "medium")) \
        < len(render_results("q", many, 1, "high"))


def test_no_results_and_failures_read_plainly() -> None:
    assert render_results("q", [], 1, "low") == 'Web search results for "q": no results found.'
    assert render_failure("q", "Brave search failed (HTTP 429, RATE_LIMITED): slow down").startswith(
        'The web search for "q" failed: Brave search failed (HTTP 429')


def test_citations_map_markers_to_exact_ranges() -> None:
    c = Citations()
    assert c.add("https://a.test/", "A") == 1 and c.add("https://b.test/", "B") == 2
    text = "Alpha [1]. Both [1, 2]. Chained [2][1]. Unknown [7]. Link [x]."
    got = [(a["url"], text[a["start_index"]:a["end_index"]], a["start_index"]) for a in c.annotate(text)]
    assert got == [("https://a.test/", "[1]", 6), ("https://a.test/", "1", 17), ("https://b.test/", "2", 20),
                   ("https://b.test/", "[2]", 32), ("https://a.test/", "[1]", 35)]
    assert all(a.keys() == {"type", "url", "title", "start_index", "end_index"} for a in c.annotate(text))
    assert Citations().annotate("nothing [1]") == []
    emoji = "😀 [2]"
    (a,) = c.annotate(emoji)
    assert emoji[a["start_index"]:a["end_index"]] == "[2]"  # code point offsets


async def test_searches_number_in_call_order_whatever_finishes_first() -> None:
    import asyncio

    c = Citations()
    first, second, skipped, third = c.ticket(), c.ticket(), c.ticket(), c.ticket()
    order: list[str] = []

    async def search(ticket: int, name: str, delay: float) -> None:
        await asyncio.sleep(delay)  # the network: the later call answers first
        await c.wait_turn(ticket)
        c.add(f"https://{name}.test/", name)
        order.append(name)
        c.done(ticket)

    c.done(skipped)  # never ran (max_tool_calls): must not hold the others up
    await asyncio.gather(search(third, "c", 0), search(second, "b", 0.01), search(first, "a", 0.02))
    assert order == ["a", "b", "c"] and [c.sources[n][1] for n in (1, 2, 3)] == ["a", "b", "c"]
