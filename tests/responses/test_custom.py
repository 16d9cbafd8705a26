"""tools/custom.py: the free-form input decoded from `{"input": "..."}` arguments as they stream."""

from __future__ import annotations

import json

import pytest

from respond.responses.tools.custom import InputStream, input_of

TEXTS = ["plain", 'quotes " and \\ backslashes', "lines\nand\ttabs\r\n", "unicode: é ü 中文 😀 \u2028",
         "*** Begin Patch\n*** Add File: a.py\n+print(\"hi\\n\")\n*** End Patch", ""]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
@pytest.mark.parametrize("ascii_only", [True, False])
def test_pieces_decode_to_the_input(text: str, size: int, ascii_only: bool) -> None:
    arguments = json.dumps({"input": text}, ensure_ascii=ascii_only)
    stream = InputStream()
    out = [stream.feed(arguments[i:i + size]) for i in range(0, len(arguments), size)]
    assert "".join(out) == text
    assert input_of(arguments) == text


def test_whitespace_around_the_key() -> None:
    stream = InputStream()
    assert stream.feed('{ \n "input" :  "a') == "a"
    assert stream.feed('b"}') == "b"


def test_other_shapes_stream_nothing_and_close_decides() -> None:
    for arguments in ('{"text": "x"}', "plain words", '{"other": 1, "input": "x"}'):
        stream = InputStream()
        assert "".join(stream.feed(c) for c in arguments) == ""
    assert input_of('{"text": "x"}') == "x"  # one string field, whatever its name
    assert input_of("plain words") == "plain words"
    assert input_of('{"other": 1, "input": "x"}') == "x"
    assert input_of('{"a": 1}') == '{"a": 1}'
