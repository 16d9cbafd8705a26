from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from respond.recording import CHAT_COMPLETION, OutboundRequest, Recorder, use_test_id
from respond.recording.cli import main
from respond.recording.store import read_record, record_hash
from tests.recording.helpers import CountingCall, chat_request, completion, load, recordings

TEST_A = "tests/test_a.py::test_one"
TEST_B = "tests/test_b.py::test_two"


async def _populate(directory: Path) -> dict[str, str]:
    """Three recordings: two for test A, one embeddings call for test B. Returns {name: hash}."""
    recorder = Recorder("record", directory)
    with use_test_id(TEST_A):
        await recorder.call(chat_request("first question"), CountingCall(completion()), CHAT_COMPLETION)
        await recorder.call(chat_request("second question", temperature=0.4), CountingCall(completion()),
                            CHAT_COMPLETION)
    with use_test_id(TEST_B):
        await recorder.call(OutboundRequest("POST", "http://u/v1/embeddings", "/v1/embeddings",
                                            {"model": "e", "input": "x"}, {}, "e"),
                            CountingCall({"object": "list", "data": []}), "emb")
    return {read_record(p)["request"]["body"].get("messages", [{}])[-1].get("content", "emb"): p.stem
            for p in recordings(directory)}


async def test_list_filters_by_test_and_endpoint(rec_dir: Path, capsys: pytest.CaptureFixture[str]):
    hashes = await _populate(rec_dir)
    assert main(["list", "--dir", str(rec_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and {line.split("\t")[0] for line in lines} == {h[:16] for h in hashes.values()}
    assert main(["list", "--dir", str(rec_dir), "--test", "test_a.py"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and all(TEST_A in line and "/v1/chat/completions" in line for line in out)
    assert main(["list", "--dir", str(rec_dir), "--endpoint", "embeddings"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.split("\t")[1:6] == ["POST", "/v1/embeddings", "e", "call", TEST_B]


async def test_show_and_find(rec_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    hashes = await _populate(rec_dir)
    h = hashes["first question"]
    monkeypatch.setenv("RESPOND_RECORDINGS_DIR", str(rec_dir))  # the default directory
    assert main(["show", h[:10]]) == 0
    out = capsys.readouterr().out
    header, body = out.split("\n", 1)
    assert h in header and json.loads(body) == load(rec_dir / f"{h}.json")

    assert main(["find", "--test", "test_b"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith(str(rec_dir)) and TEST_B in line
    assert main(["find", "--hash", h[:8]]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.split("\t")[1] == h
    assert main(["find", "--hash", "ffffffffffffffff"]) == 1
    assert main(["show", "zzzz"]) == 2
    assert "no recording matches" in capsys.readouterr().err
    assert main(["show", ""]) == 2
    assert "ambiguous" in capsys.readouterr().err


async def test_diff_two_recordings(rec_dir: Path, capsys: pytest.CaptureFixture[str]):
    hashes = await _populate(rec_dir)
    a, b = hashes["first question"], hashes["second question"]
    assert main(["diff", "--dir", str(rec_dir), a[:12], str(rec_dir / f"{b}.json")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == ["body.messages[0].content: 'first question' != 'second question'",
                         "body.temperature: <absent> != 0.4"]
    assert main(["diff", "--dir", str(rec_dir), a, a]) == 0
    assert main(["diff", "--dir", str(rec_dir), a, hashes["emb"]]) == 1
    out = capsys.readouterr().out
    assert "endpoint: '/v1/chat/completions' != '/v1/embeddings'" in out
    assert f"test_id: {TEST_A!r} != {TEST_B!r}" in out


async def test_prune_deletes_unused_recordings(rec_dir: Path, capsys: pytest.CaptureFixture[str]):
    hashes = await _populate(rec_dir)
    log = rec_dir / ".used"
    # a run that only replayed the first question, logging what it used
    with use_test_id(TEST_A):
        await Recorder("replay", rec_dir, usage_log=True).call(chat_request("first question"), CountingCall(),
                                                              CHAT_COMPLETION)
    assert log.read_text().split() == [hashes["first question"]]
    assert main(["prune", "--dir", str(rec_dir), "--dry-run"]) == 0
    assert len(recordings(rec_dir)) == 3 and capsys.readouterr().out.count("would delete") == 2
    assert main(["prune", "--dir", str(rec_dir), "--used-log", str(log)]) == 0
    assert [p.stem for p in recordings(rec_dir)] == [hashes["first question"]]
    empty = rec_dir / "empty.log"
    empty.write_text("")
    assert main(["prune", "--dir", str(rec_dir), "--used-log", str(empty)]) == 2
    assert len(recordings(rec_dir)) == 1


async def test_renormalize_rewrites_names_ids_and_secrets(rec_dir: Path, seeds_dir: Path,
                                                          capsys: pytest.CaptureFixture[str]):
    seed = seeds_dir / "002_40f741358aaa2d20.json"
    shutil.copy(seed, rec_dir / seed.name)
    raw = {"test_id": None,
           "request": {"method": "POST", "url": "http://u/v1/chat/completions?api_key=sk-url",
                       "headers": {"Authorization": "Bearer sk-h", "Accept": "json"},
                       "body": {"model": "m", "messages": [], "api_key": "sk-b", "max_tokens": 3},
                       "endpoint": "/v1/chat/completions", "model": "m"},
           "response": {"body": {"__type__": CHAT_COMPLETION, "__data__": completion(ident="chatcmpl-raw",
                                                                                     created=99)},
                        "is_streaming": False}}
    (rec_dir / "handmade.json").write_text(json.dumps(raw))
    assert main(["renormalize", "--dir", str(rec_dir), "--dry-run"]) == 0
    assert "would rewrite" in capsys.readouterr().out and (rec_dir / "handmade.json").exists()

    assert main(["renormalize", "--dir", str(rec_dir)]) == 0
    assert capsys.readouterr().out.count("rewrote") == 2
    files = recordings(rec_dir)
    assert len(files) == 2 and all(p.stem == record_hash(load(p)) for p in files)
    seed_after = next(load(p) for p in files if load(p)["test_id"])
    before = json.loads(seed.read_text())
    assert seed_after["response"] == before["response"] and seed_after["request"] == before["request"]
    made = next(p for p in files if not load(p)["test_id"])
    text = made.read_text()
    assert "sk-" not in text and "Authorization" not in text and '"max_tokens": 3' in text
    data = load(made)
    h = made.stem
    assert data["response"]["body"]["__data__"]["id"] == f"rec-{h[:12]}"
    assert data["response"]["body"]["__data__"]["created"] == 0
    assert data["id_normalization_mapping"] == {"chatcmpl-raw": f"rec-{h[:12]}"}

    # idempotent, and the renamed files still replay
    assert main(["renormalize", "--dir", str(rec_dir)]) == 0
    assert "rewrote" not in capsys.readouterr().out
    req = chat_request("")
    req.body = {"model": "m", "messages": [], "max_tokens": 3}
    got = await Recorder("replay", rec_dir).call(req, CountingCall(), CHAT_COMPLETION)
    assert got["id"] == f"rec-{h[:12]}"


def test_missing_directory_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["list", "--dir", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
