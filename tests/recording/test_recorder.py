from __future__ import annotations

import asyncio
import dataclasses
import json
from contextlib import aclosing
from pathlib import Path

import pytest

from respond.errors import UpstreamError
from respond.recording import (
    CHAT_COMPLETION,
    CHAT_COMPLETION_CHUNK,
    Recorder,
    RecordingIncomplete,
    RecordingNotFound,
    use_test_id,
)
from respond.recording.hashing import request_hash
from tests.recording.helpers import (
    CountingCall,
    CountingStream,
    chat_request,
    chunks,
    completion,
    load,
    recordings,
)


def _hash(req, test_id=None):
    return request_hash(req.method, req.endpoint, req.body, test_id)


async def _collect(iterator):
    return [item async for item in iterator]


async def test_live_mode_passes_through_and_writes_nothing(rec_dir: Path):
    recorder = Recorder("live", rec_dir)
    live = CountingCall(completion())
    assert await recorder.call(chat_request(), live, CHAT_COMPLETION) == completion()
    assert await recorder.call(chat_request(), live, CHAT_COMPLETION) == completion()
    assert live.calls == 2
    stream = CountingStream(chunks())
    assert await _collect(recorder.stream(chat_request(stream=True), stream, CHAT_COMPLETION_CHUNK)) == chunks()
    assert recordings(rec_dir) == []
    assert Recorder("live", None).mode == "live"


def test_invalid_configuration():
    with pytest.raises(ValueError, match="unknown record mode"):
        Recorder("sometimes", "/tmp/x")
    with pytest.raises(ValueError, match="needs a recordings directory"):
        Recorder("replay", None)


async def test_record_writes_a_normalized_scrubbed_file(rec_dir: Path):
    recorder = Recorder("record", rec_dir)
    req = chat_request("Say hello", temperature=0.5)
    live = CountingCall(completion(ident="chatcmpl-AbC123"))
    result = await recorder.call(req, live, CHAT_COMPLETION)
    h = _hash(req)
    assert live.calls == 1
    assert result["id"] == f"rec-{h[:12]}" and result["created"] == 0
    assert result["choices"][0]["message"]["content"] == "Hello!"

    [path] = recordings(rec_dir)
    assert path.name == f"{h}.json"
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and text.startswith('{\n  "test_id": null,\n  "request": {\n    "method"')
    data = json.loads(text)
    assert list(data) == ["test_id", "request", "response", "id_normalization_mapping"]
    assert data["request"] == {"method": "POST", "url": req.url, "headers": {"Content-Type": "application/json"},
                               "body": req.body, "endpoint": "/v1/chat/completions", "model": "gpt-test"}
    assert data["response"] == {"body": {"__type__": CHAT_COMPLETION, "__data__": result}, "is_streaming": False}
    assert data["id_normalization_mapping"] == {"chatcmpl-AbC123": f"rec-{h[:12]}"}
    assert "sk-secret" not in text

    # record mode always calls the upstream again and rewrites the same file
    assert await recorder.call(req, live, CHAT_COMPLETION) == result
    assert live.calls == 2 and recordings(rec_dir) == [path]


async def test_replay_returns_the_recording_without_calling_live(rec_dir: Path):
    req = chat_request("Replay me")
    recorded = await Recorder("record", rec_dir).call(req, CountingCall(completion("Recorded")), CHAT_COMPLETION)
    live = CountingCall(completion("LIVE - must not be used"))
    replayer = Recorder("replay", rec_dir)
    assert await replayer.call(req, live, CHAT_COMPLETION) == recorded
    assert await replayer.call(chat_request("Replay me"), live, CHAT_COMPLETION) == recorded
    assert live.calls == 0
    with pytest.raises(RecordingNotFound) as info:
        await replayer.call(chat_request("Something else"), live, CHAT_COMPLETION)
    assert live.calls == 0
    assert info.value.status_code == 500 and info.value.code == "recording_not_found"
    assert info.value.envelope()["error"]["code"] == "recording_not_found"


async def test_record_if_missing_records_once_then_replays(rec_dir: Path):
    recorder = Recorder("record-if-missing", rec_dir)
    live = CountingCall(completion())
    first = await recorder.call(chat_request("one"), live, CHAT_COMPLETION)
    second = await recorder.call(chat_request("one"), live, CHAT_COMPLETION)
    assert first == second and live.calls == 1
    await recorder.call(chat_request("two"), live, CHAT_COMPLETION)
    assert live.calls == 2 and len(recordings(rec_dir)) == 2
    stream = CountingStream(chunks())
    a = await _collect(recorder.stream(chat_request("s", stream=True), stream, CHAT_COMPLETION_CHUNK))
    b = await _collect(recorder.stream(chat_request("s", stream=True), stream, CHAT_COMPLETION_CHUNK))
    assert a == b and stream.calls == 1 and len(recordings(rec_dir)) == 3


async def test_stream_record_and_replay(rec_dir: Path):
    req = chat_request("Stream please", stream=True)
    h = _hash(req)
    live = CountingStream(chunks("Hello there friend"))
    got = await _collect(Recorder("record", rec_dir).stream(req, live, CHAT_COMPLETION_CHUNK))
    assert [c["choices"][0]["delta"].get("content") for c in got] == ["", "Hello", "there", "friend", None]
    assert {c["id"] for c in got} == {f"rec-{h[:12]}"} and {c["created"] for c in got} == {0}

    data = load(rec_dir / f"{h}.json")
    assert data["response"]["is_streaming"] is True
    assert data["response"]["body"] == [{"__type__": CHAT_COMPLETION_CHUNK, "__data__": c} for c in got]
    assert data["id_normalization_mapping"] == {"chatcmpl-Str3am": f"rec-{h[:12]}"}

    replay_live = CountingStream(chunks("never"))
    replayed = await _collect(Recorder("replay", rec_dir).stream(req, replay_live, CHAT_COMPLETION_CHUNK))
    assert replayed == got and replay_live.calls == 0


async def test_consumer_mutation_does_not_corrupt_the_recording(rec_dir: Path):
    req = chat_request("mutate", stream=True)
    async for chunk in Recorder("record", rec_dir).stream(req, CountingStream(chunks("a b")), CHAT_COMPLETION_CHUNK):
        chunk["choices"].clear()
    replayed = await _collect(Recorder("replay", rec_dir).stream(req, CountingStream([]), CHAT_COMPLETION_CHUNK))
    assert all(len(c["choices"]) == 1 for c in replayed)


async def test_upstream_error_is_recorded_and_reraised(rec_dir: Path):
    req = chat_request("too long")
    error = UpstreamError("context length exceeded", upstream_status=400, code="context_length_exceeded",
                          param="messages", body={"error": {"message": "context length exceeded"}})
    live = CountingCall(error=error)
    with pytest.raises(UpstreamError) as recorded:
        await Recorder("record", rec_dir).call(req, live, CHAT_COMPLETION)
    assert recorded.value is error
    data = load(recordings(rec_dir)[0])
    assert data["response"]["body"] is None
    assert data["response"]["error"] == {"status": 400, "message": "context length exceeded",
                                         "code": "context_length_exceeded", "param": "messages",
                                         "body": {"error": {"message": "context length exceeded"}}}
    with pytest.raises(UpstreamError) as replayed:
        await Recorder("replay", rec_dir).call(req, live, CHAT_COMPLETION)
    assert live.calls == 1
    got = replayed.value
    assert type(got) is UpstreamError
    assert (got.message, got.upstream_status, got.code, got.param, got.body, got.status_code, got.error_type) == \
        (error.message, error.upstream_status, error.code, error.param, error.body, error.status_code,
         error.error_type)


async def test_stream_failing_midway_records_chunks_and_error(rec_dir: Path):
    req = chat_request("cut", stream=True)
    live = CountingStream(chunks("one two three four"), fail_after=2,
                          error=UpstreamError("upstream stream ended unexpectedly"))
    got = []
    with pytest.raises(UpstreamError, match="ended unexpectedly"):
        async for chunk in Recorder("record", rec_dir).stream(req, live, CHAT_COMPLETION_CHUNK):
            got.append(chunk)
    assert len(got) == 2
    data = load(recordings(rec_dir)[0])
    assert len(data["response"]["body"]) == 2
    assert data["response"]["error"]["message"] == "upstream stream ended unexpectedly"

    replayed = []
    with pytest.raises(UpstreamError, match="ended unexpectedly") as info:
        async for chunk in Recorder("replay", rec_dir).stream(req, CountingStream([]), CHAT_COMPLETION_CHUNK):
            replayed.append(chunk)
    assert replayed == got and info.value.status_code == 502


async def test_no_answer_at_all_is_not_recorded(rec_dir: Path):
    recorder = Recorder("record-if-missing", rec_dir)
    live = CountingCall(error=UpstreamError("connection refused"))
    for _ in range(2):
        with pytest.raises(UpstreamError, match="connection refused"):
            await recorder.call(chat_request(), live, CHAT_COMPLETION)
    assert live.calls == 2 and recordings(rec_dir) == []
    stream = CountingStream(chunks(), fail_after=0, error=UpstreamError("timed out"))
    with pytest.raises(UpstreamError):
        await _collect(recorder.stream(chat_request(stream=True), stream, CHAT_COMPLETION_CHUNK))
    assert recordings(rec_dir) == []


async def test_early_close_closes_upstream_and_marks_the_recording(rec_dir: Path):
    req = chat_request("partial", stream=True)
    live = CountingStream(chunks("a b c d e"))
    got = []
    async with aclosing(Recorder("record", rec_dir).stream(req, live, CHAT_COMPLETION_CHUNK)) as stream:
        async for chunk in stream:
            got.append(chunk)
            if len(got) == 2:
                break
    assert live.closed == 1 and live.yielded == 2  # the upstream was closed at once, not read to the end
    data = load(recordings(rec_dir)[0])
    assert data["response"]["truncated"] is True and len(data["response"]["body"]) == 2

    replayer = Recorder("replay", rec_dir)
    again = []
    async for chunk in replayer.stream(req, CountingStream([]), CHAT_COMPLETION_CHUNK):
        again.append(chunk)
        if len(again) == 2:
            break
    assert again == got
    with pytest.raises(RecordingIncomplete, match="closed early"):
        await _collect(replayer.stream(req, CountingStream([]), CHAT_COMPLETION_CHUNK))


async def test_secrets_never_reach_the_file_and_do_not_change_the_hash(rec_dir: Path):
    req = chat_request("secret", max_tokens=7)
    req.body["api_key"] = "sk-body-secret"
    req.headers["Cookie"] = "session=abc"
    req.url = "http://upstream.test/v1/chat/completions?api-key=sk-url-secret"
    await Recorder("record", rec_dir).call(req, CountingCall(completion()), CHAT_COMPLETION)
    text = recordings(rec_dir)[0].read_text()
    for secret in ("sk-secret", "sk-body-secret", "sk-url-secret", "session=abc", "Authorization", "Cookie"):
        assert secret not in text
    assert '"max_tokens": 7' in text

    other = chat_request("secret", max_tokens=7)
    other.body["api_key"] = "sk-a-different-key"
    other.headers["Authorization"] = "Bearer sk-another"
    live = CountingCall(completion())
    await Recorder("replay", rec_dir).call(other, live, CHAT_COMPLETION)
    assert live.calls == 0


async def test_test_id_is_part_of_the_identity(rec_dir: Path):
    req = chat_request("per test")
    with use_test_id("tests/test_a.py::test_one"):
        await Recorder("record", rec_dir).call(req, CountingCall(completion("A")), CHAT_COMPLETION)
    data = load(recordings(rec_dir)[0])
    assert data["test_id"] == "tests/test_a.py::test_one"
    assert recordings(rec_dir)[0].name == f"{_hash(req, 'tests/test_a.py::test_one')}.json"
    replayer = Recorder("replay", rec_dir)
    with use_test_id("tests/test_a.py::test_one"):
        assert (await replayer.call(req, CountingCall(), CHAT_COMPLETION))["choices"][0]["message"]["content"] == "A"
    with use_test_id("tests/test_a.py::test_two"), pytest.raises(RecordingNotFound):
        await replayer.call(req, CountingCall(), CHAT_COMPLETION)
    with pytest.raises(RecordingNotFound):
        await replayer.call(req, CountingCall(), CHAT_COMPLETION)


async def test_lookup_ignores_file_names_and_reloads_when_files_change(rec_dir: Path):
    req = chat_request("renamed")
    await Recorder("record", rec_dir).call(req, CountingCall(completion("R")), CHAT_COMPLETION)
    [path] = recordings(rec_dir)
    renamed = rec_dir / "sub" / "000_whatever.json"
    renamed.parent.mkdir()
    path.rename(renamed)
    replayer = Recorder("replay", rec_dir)
    assert (await replayer.call(req, CountingCall(), CHAT_COMPLETION))["choices"][0]["message"]["content"] == "R"
    moved = rec_dir / "001_moved.json"
    renamed.rename(moved)  # the indexed file vanished: the index reloads and finds it again
    assert (await replayer.call(req, CountingCall(), CHAT_COMPLETION))["choices"][0]["message"]["content"] == "R"
    moved.unlink()
    with pytest.raises(RecordingNotFound):
        await replayer.call(req, CountingCall(), CHAT_COMPLETION)
    # a file whose name is a hash but whose content is another request is not trusted
    await Recorder("record", rec_dir).call(chat_request("other"), CountingCall(completion()), CHAT_COMPLETION)
    [other] = recordings(rec_dir)
    other.rename(rec_dir / f"{_hash(req)}.json")
    with pytest.raises(RecordingNotFound):
        await Recorder("replay", rec_dir).call(req, CountingCall(), CHAT_COMPLETION)


async def test_rerecording_replaces_a_differently_named_copy(rec_dir: Path):
    req = chat_request("dup")
    await Recorder("record", rec_dir).call(req, CountingCall(completion("old")), CHAT_COMPLETION)
    [path] = recordings(rec_dir)
    path.rename(rec_dir / "seed_copy.json")
    await Recorder("record", rec_dir).call(req, CountingCall(completion("new")), CHAT_COMPLETION)
    assert [p.name for p in recordings(rec_dir)] == [path.name]
    assert load(path)["response"]["body"]["__data__"]["choices"][0]["message"]["content"] == "new"


async def test_concurrent_recording_is_safe(rec_dir: Path):
    recorder = Recorder("record", rec_dir)

    async def one(i: int):
        return await recorder.call(chat_request(f"q{i % 10}"), CountingCall(completion(f"a{i % 10}")), CHAT_COMPLETION)

    results = await asyncio.gather(*(one(i) for i in range(40)))
    assert len(results) == 40
    files = recordings(rec_dir)
    assert len(files) == 10
    assert all(load(f)["response"]["body"]["__data__"]["object"] == "chat.completion" for f in files)
    assert [p.name for p in rec_dir.iterdir() if p.name.startswith(".")] == []


async def test_typed_results_are_stored_as_plain_data(rec_dir: Path):
    @dataclasses.dataclass
    class Thing:
        id: str
        score: float

    req = chat_request("typed")
    calls = []

    async def typed_live():
        calls.append(1)
        return [Thing("a", 0.5), Thing("b", 0.25)]

    recorded = await Recorder("record", rec_dir).call(req, typed_live, "tests.Thing")
    assert recorded == [{"id": "a", "score": 0.5}, {"id": "b", "score": 0.25}]
    data = load(recordings(rec_dir)[0])
    assert data["response"]["body"] == [{"__type__": "tests.Thing", "__data__": {"id": "a", "score": 0.5}},
                                        {"__type__": "tests.Thing", "__data__": {"id": "b", "score": 0.25}}]
    assert await Recorder("replay", rec_dir).call(req, typed_live, "tests.Thing") == recorded
    assert len(calls) == 1


async def test_usage_log_lists_served_hashes(rec_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RESPOND_RECORDING_USAGE_LOG", "1")
    req = chat_request("used")
    await Recorder("record", rec_dir).call(req, CountingCall(completion()), CHAT_COMPLETION)
    await Recorder("replay", rec_dir).call(req, CountingCall(), CHAT_COMPLETION)
    assert (rec_dir / ".used").read_text().splitlines() == [_hash(req), _hash(req)]
    monkeypatch.delenv("RESPOND_RECORDING_USAGE_LOG")
    log = rec_dir.parent / "usage.log"
    await Recorder("replay", rec_dir, usage_log=log).call(req, CountingCall(), CHAT_COMPLETION)
    assert log.read_text().splitlines() == [_hash(req)]
    assert Recorder("replay", rec_dir).usage_log is None
