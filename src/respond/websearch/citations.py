"""Numbered sources -> `url_citation` annotations with exact character ranges.

The model cites a source by its number in brackets, `[3]` (or several, `[1, 3]` / `[1][3]`), as the
search results it read asked it to (render.py). `Citations` holds the sources of one response (number ->
url, title); `annotate(text)` finds the markers in the final text and returns one annotation per cited
number: for `[n]` the range covers the whole marker, in `[1, 3]` each number's own digits. Numbers that
name no source of this response are left alone. Indexes are Python string offsets (code points), as in
OpenAI's annotations.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

_MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_NUMBER = re.compile(r"\d{1,3}")


class Citations:
    """The sources of one response, numbered in the order the model made its searches.

    Searches of one turn run concurrently and finish in any order; each takes a `ticket()` when the model
    makes the call, and numbers its sources only after every earlier ticket is `done` (`wait_turn`), so
    the first search's sources are [1]..[k] however the network behaves.
    """

    __slots__ = ("sources", "_turns", "__weakref__")

    def __init__(self) -> None:
        self.sources: dict[int, tuple[str, str]] = {}
        self._turns: list[asyncio.Event] = []

    def ticket(self) -> int:
        self._turns.append(asyncio.Event())
        return len(self._turns) - 1

    async def wait_turn(self, ticket: int) -> None:
        for earlier in self._turns[:ticket]:
            await earlier.wait()

    def done(self, ticket: int) -> None:
        """This search numbered its sources (or will never run): later ones may go on."""
        self._turns[ticket].set()

    @property
    def next_number(self) -> int:
        return len(self.sources) + 1

    def add(self, url: str, title: str) -> int:
        number = self.next_number
        self.sources[number] = (url, title)
        return number

    def annotate(self, text: str) -> list[dict[str, Any]]:
        if not self.sources or "[" not in text:
            return []
        out: list[dict[str, Any]] = []
        for marker in _MARKER.finditer(text):
            numbers = list(_NUMBER.finditer(marker.group(1)))
            single = len(numbers) == 1
            for number in numbers:
                source = self.sources.get(int(number.group()))
                if source is None:
                    continue
                if single:
                    start, end = marker.start(), marker.end()
                else:
                    start, end = marker.start(1) + number.start(), marker.start(1) + number.end()
                out.append({"type": "url_citation", "url": source[0], "title": source[1],
                            "start_index": start, "end_index": end})
        return out
