"""Summarize py-spy raw (collapsed) stacks from `bench/run.py --profile DIR`: where respond's CPU goes.

    .venv/bin/python bench/hotspots.py /tmp/prof/chat-sse-256-c32.txt [--top 25] [--cpu-ms 8.3]

Prints, as shares of all samples: self time by package (respond, starlette, uvicorn, httpx, httpcore, h11,
sqlalchemy, ...), inclusive time of respond's own functions (everything that ran below them), self time of
the hottest functions, and inclusive time of the hottest functions anywhere. With `--cpu-ms X` (the cell's
measured CPU-ms per request from the table) each share is also shown as CPU-ms per request.

Caveats: py-spy samples wall-clock stacks of non-idle threads, so a thread that is runnable but preempted
(another process on its core) still counts; frames right at a syscall are over-weighted on a busy machine.
Work done in event-loop callbacks (anyio cancel scopes, transport protocols) is not under the coroutine
that caused it. Use shares to find candidates and A/B runs (bench/ab) to measure savings.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+?)(?::(?P<line>\d+))?\)$")


def parse(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    """[(frames as (function, file) from outermost to innermost, samples)]."""
    stacks = []
    for raw in path.read_text().splitlines():
        raw = raw.strip()
        if not raw:
            continue
        body, _, count = raw.rpartition(" ")
        frames = []
        for part in body.split(";"):
            m = FRAME.match(part)
            if m is None:
                continue  # the thread label
            frames.append((m["func"], m["file"]))
        if frames:
            stacks.append((frames, int(count)))
    return stacks


def package(file: str) -> str:
    if file.startswith("respond/"):
        return "respond/" + file.split("/")[1]
    if file.startswith("<frozen") or "/" not in file:
        return "stdlib"
    top = file.split("/")[0]
    return top


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--cpu-ms", type=float, help="measured CPU-ms per request, to scale shares")
    args = parser.parse_args(argv)
    stacks = parse(args.profile)
    total = sum(n for _, n in stacks)
    if not total:
        print("no samples", file=sys.stderr)
        return 1

    def fmt(n: int) -> str:
        share = f"{100 * n / total:5.1f}%"
        if args.cpu_ms:
            share += f" {args.cpu_ms * n / total:6.3f} ms/req"
        return share

    self_pkg: collections.Counter[str] = collections.Counter()
    self_fn: collections.Counter[str] = collections.Counter()
    incl_fn: collections.Counter[str] = collections.Counter()
    incl_respond: collections.Counter[str] = collections.Counter()
    for frames, n in stacks:
        func, file = frames[-1]
        self_pkg[package(file)] += n
        self_fn[f"{file}:{func}"] += n
        seen = set()
        for func, file in frames:
            key = f"{file}:{func}"
            if key in seen:
                continue
            seen.add(key)
            incl_fn[key] += n
            if file.startswith("respond/"):
                incl_respond[key] += n

    print(f"{args.profile}: {total} samples")
    for title, counter in (("self time by package", self_pkg), ("inclusive time of respond's functions", incl_respond),
                           ("self time by function", self_fn), ("inclusive time by function", incl_fn)):
        print(f"\n## {title}")
        for key, n in counter.most_common(args.top):
            print(f"  {fmt(n)}  {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
