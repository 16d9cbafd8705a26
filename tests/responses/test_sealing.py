"""responses/sealing.py: reasoning sealed with AES-GCM under the server key."""

from __future__ import annotations

import base64

import pytest

from respond.errors import InvalidRequest
from respond.responses.sealing import KEY_FILE, ReasoningSealer, open_reasoning

ITEM = {"type": "reasoning", "id": "rs_1", "summary": [], "content": [{"type": "reasoning_text", "text": "why"}]}


def test_key_is_made_once_and_kept(tmp_path) -> None:
    a = ReasoningSealer.from_config(None, tmp_path / "data")
    blob = a.seal(ITEM)
    key = (tmp_path / "data" / KEY_FILE).read_text()
    b = ReasoningSealer.from_config(None, tmp_path / "data")
    assert (tmp_path / "data" / KEY_FILE).read_text() == key
    assert b.open(blob, "input[0].encrypted_content") == {"content": ITEM["content"], "summary": []}
    assert a.seal(ITEM) != blob  # a fresh nonce per item


@pytest.mark.parametrize("key", ["short", base64.urlsafe_b64encode(b"x" * 16).decode(), "!!!"])
def test_bad_configured_keys_are_refused(tmp_path, key) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        ReasoningSealer.from_config(key, tmp_path)


def test_open_reasoning_restores_content_and_names_the_item(tmp_path) -> None:
    sealer = ReasoningSealer(b"k" * 32)
    items = [{"type": "message", "role": "user", "content": []},
             {"type": "reasoning", "id": "rs_1", "summary": [], "content": [{"type": "reasoning_text", "text": "lie"}],
              "encrypted_content": sealer.seal(ITEM)}]
    open_reasoning(sealer, items)
    assert items[1]["content"] == ITEM["content"]  # the sealed text wins over what the client sent along
    blob = items[1]["encrypted_content"]
    middle = len(blob) // 2
    items[1]["encrypted_content"] = blob[:middle] + ("A" if blob[middle] != "A" else "B") + blob[middle + 1:]
    with pytest.raises(InvalidRequest) as exc:
        open_reasoning(sealer, items)
    assert exc.value.param == "input[1].encrypted_content" and exc.value.code == "invalid_encrypted_content"
    with pytest.raises(InvalidRequest):
        ReasoningSealer(b"o" * 32).open(sealer.seal(ITEM), "p")


def test_processes_starting_together_share_one_key(tmp_path) -> None:
    """`respond serve --workers N` on an empty data dir: every process ends up with the key that won, none
    with an empty or half-written file; no temp files are left behind."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from respond.responses.sealing import ReasoningSealer; "
            "s = ReasoningSealer.from_config(None, Path(sys.argv[1])); "
            "print(s.seal_value('x', b'test'))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for _ in range(6)]
    blobs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    mine = ReasoningSealer.from_config(None, tmp_path)
    assert [mine.open_value(b, b"test") for b in blobs] == ["x"] * 6
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]
