from __future__ import annotations

import logging
from pathlib import Path

import pytest

from respond.recording import CHAT_COMPLETION, Recorder, RecordingNotFound, use_test_id
from respond.recording.diff import diff
from respond.recording.hashing import request_hash
from tests.recording.helpers import CountingCall, chat_request, completion

TEST = "tests/test_chat.py::test_conversation"


async def _record(rec_dir: Path, req, test_id: str | None) -> None:
    with use_test_id(test_id):
        await Recorder("record", rec_dir).call(req, CountingCall(completion()), CHAT_COMPLETION)


async def _miss(rec_dir: Path, req, test_id: str | None) -> RecordingNotFound:
    with use_test_id(test_id), pytest.raises(RecordingNotFound) as info:
        await Recorder("replay", rec_dir).call(req, CountingCall(), CHAT_COMPLETION)
    return info.value


def _conversation(last: str, temperature: float = 0.2):
    req = chat_request("Say hello", temperature=temperature)
    req.body["messages"] += [{"role": "assistant", "content": "Hello!"}, {"role": "user", "content": last}]
    return req


def test_diff_paths_and_values():
    a = {"model": "m", "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "x"}], "n": 1}
    b = {"model": "m", "messages": [{"role": "user", "content": "b"}], "top_p": 0.5}
    assert diff(a, b) == [
        "messages[0].content: 'a' != 'b'",
        "messages[1]: {'role': 'user', 'content': 'x'} != <absent>",
        "n: 1 != <absent>",
        "top_p: <absent> != 0.5",
    ]
    assert diff(a, a) == []
    assert diff([1], [1.0]) == []
    long_a, long_b = "x" * 200 + "A" + "y" * 200, "x" * 200 + "B" + "y" * 200
    [line] = diff({"t": long_a}, {"t": long_b})
    assert "first difference at character 200" in line and "A" in line and "B" in line and len(line) < 250


async def test_miss_names_hash_test_endpoint_nearest_and_diff(rec_dir: Path, caplog: pytest.LogCaptureFixture):
    await _record(rec_dir, _conversation("Say goodbye"), TEST)
    await _record(rec_dir, chat_request("Unrelated question with other fields", n=3), TEST)
    recorded_name = f"{request_hash('POST', '/v1/chat/completions', _conversation('Say goodbye').body, TEST)}.json"

    req = _conversation("Say good night", temperature=0.3)
    with caplog.at_level(logging.ERROR, logger="respond.recording"):
        err = await _miss(rec_dir, req, TEST)
    message = err.message
    wanted_hash = request_hash("POST", "/v1/chat/completions", req.body, TEST)
    assert wanted_hash in message and err.request_hash == wanted_hash
    assert TEST in message and err.test_id == TEST
    assert "/v1/chat/completions" in message and err.endpoint == "/v1/chat/completions"
    assert recorded_name in message and err.nearest == str(rec_dir / recorded_name)
    assert "messages[2].content: 'Say good night' != 'Say goodbye'" in message
    assert "temperature: 0.3 != 0.2" in message
    assert err.diff == ["messages[2].content: 'Say good night' != 'Say goodbye'", "temperature: 0.3 != 0.2"]
    assert "record-if-missing" in message
    assert any(wanted_hash in r.getMessage() for r in caplog.records)


async def test_nearest_prefers_the_same_test_id(rec_dir: Path):
    await _record(rec_dir, _conversation("exactly this"), "tests/other.py::test_x")
    await _record(rec_dir, _conversation("something rather different", temperature=0.9), TEST)
    err = await _miss(rec_dir, _conversation("exactly this"), TEST)
    assert "something rather different" in err.message and "tests/other.py::test_x" not in err.message

    # with no recording of the same test, the closest body wins and the test id difference is shown
    err = await _miss(rec_dir, _conversation("exactly this"), "tests/third.py::test_z")
    assert err.diff == ["test_id: 'tests/third.py::test_z' != 'tests/other.py::test_x'"]


async def test_miss_with_nothing_for_the_endpoint(rec_dir: Path):
    err = await _miss(rec_dir, chat_request("anything"), None)
    assert "Nearest recording: none" in err.message and err.nearest is None and "None" in err.message
