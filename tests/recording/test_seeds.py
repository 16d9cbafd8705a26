"""The five real recordings (made by another tool: other file names, a doubled /v1/v1 url) replay as-is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from respond.recording import CHAT_COMPLETION_CHUNK, OutboundRequest, Recorder, RecordingNotFound, use_test_id
from tests.recording.conftest import SEEDS
from tests.recording.helpers import CountingStream

SEED_FILES = sorted(SEEDS.glob("*.json"))


def _request(seed: dict) -> OutboundRequest:
    r = seed["request"]
    return OutboundRequest(method=r["method"], url=r["url"], endpoint=r["endpoint"], body=r["body"],
                           headers=r["headers"], model=r["model"])


def test_there_are_five_seeds():
    assert len(SEED_FILES) == 5


@pytest.mark.parametrize("seed_file", SEED_FILES, ids=lambda p: p.stem)
async def test_seed_replays_exactly(seeds_dir: Path, seed_file: Path):
    seed = json.loads(seed_file.read_text(encoding="utf-8"))
    live = CountingStream([])
    recorder = Recorder("replay", seeds_dir)
    with use_test_id(seed["test_id"]):
        got = [chunk async for chunk in recorder.stream(_request(seed), live, CHAT_COMPLETION_CHUNK)]
    assert got == [item["__data__"] for item in seed["response"]["body"]]
    assert live.calls == 0
    # untouched: replay never rewrites files
    assert (seeds_dir / seed_file.name).read_bytes() == seed_file.read_bytes()


async def test_seed_misses_without_its_test_id(seeds_dir: Path):
    seed = json.loads(SEED_FILES[1].read_text(encoding="utf-8"))
    with pytest.raises(RecordingNotFound) as info:
        [c async for c in Recorder("replay", seeds_dir).stream(_request(seed), CountingStream([]))]
    assert SEED_FILES[1].name in info.value.message
    assert f"test_id: None != {seed['test_id']!r}" in info.value.message
