"""Web search: what one search costs respond, live against a loopback stand-in and replayed from a recording.

    PYTHONPATH=src:. python bench/web_search_latency.py [--n 200]

Prints median / p95 wall time per `SearchProvider.search` for each provider (live: HTTP to the stand-in in
this process's own thread, so it includes the stand-in's time; replay: the Recorder reading the recording),
and the CPU time of the replayed path. Run by hand; numbers go to bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

from respond.recording import Recorder
from respond.recording.context import use_test_id
from respond.websearch.base import SearchQuery
from respond.websearch.providers import BraveProvider, SearxngProvider, TavilyProvider
from tests.support.search_standins import BRAVE_KEY, TAVILY_KEY, StandinServer

QUERY = SearchQuery("eiffel tower height", allowed_domains=("wikipedia.org",), context_size="medium")


def make(kind: str, base: str, recorder: Recorder):
    cls = {"tavily": TavilyProvider, "brave": BraveProvider, "searxng": SearxngProvider}[kind]
    return cls(f"{base}/{kind}", api_key={"tavily": TAVILY_KEY, "brave": BRAVE_KEY}.get(kind), recorder=recorder)


async def timed(provider, n: int) -> tuple[list[float], float]:
    walls = []
    cpu0 = time.process_time()
    for _ in range(n):
        t0 = time.perf_counter()
        await provider.search(QUERY)
        walls.append((time.perf_counter() - t0) * 1000)
    return walls, (time.process_time() - cpu0) * 1000 / n


def summary(walls: list[float]) -> str:
    walls = sorted(walls)
    return f"median {statistics.median(walls):6.2f} ms  p95 {walls[int(len(walls) * 0.95) - 1]:6.2f} ms"


async def main(n: int) -> None:
    server = StandinServer()
    server.start()
    base = f"http://127.0.0.1:{server.standins.port}"
    with tempfile.TemporaryDirectory() as tmp, use_test_id("bench"):
        for kind in ("searxng", "tavily", "brave"):
            live, _ = await timed(make(kind, base, Recorder("live", None)), n)
            await make(kind, base, Recorder("record", tmp)).search(QUERY)
            replay, cpu = await timed(make(kind, base, Recorder("replay", tmp)), n)
            print(f"{kind:8s} live   {summary(live)}")
            print(f"{kind:8s} replay {summary(replay)}  cpu {cpu:.2f} ms/search")
    server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    asyncio.run(main(parser.parse_args().n))
