"""files/parsing.py and files/chunking.py on real documents (a PDF and a DOCX made here)."""

from __future__ import annotations

import pytest

from respond.errors import InvalidRequest
from respond.files.chunking import AUTO, chunk_text, resolve_strategy
from respond.files.parsing import UnsupportedFile, extract_text
from respond.responses.tokens import count_text
from tests.support.retrieval import make_docx, make_pdf


def test_formats() -> None:
    assert "second page" in extract_text(make_pdf(["first page", "second page"]), "a.pdf")
    assert extract_text(make_pdf(["x"]), "no-extension") == "x"  # sniffed by its %PDF- header
    docx = extract_text(make_docx(["Hello", "World"], table=[["a", "b"]]), "d.docx")
    assert docx.splitlines() == ["Hello", "World", "a | b"]
    html = extract_text(b"<p>One &amp; two</p><script>x()</script><style>p{}</style><div>three</div>", "p.html")
    assert html == "One & two\nthree"
    assert extract_text(b'{"a":[1,2]}', "x.json") == '{\n  "a": [\n    1,\n    2\n  ]\n}'
    assert extract_text(b"a,b\n1,\"x, y\"\n", "t.csv") == "a, b\n1, x, y"
    assert extract_text(b"def f():\n    return 1\n", "m.py") == "def f():\n    return 1\n"
    assert extract_text("caf\u00e9".encode("latin-1"), "l.txt") == "caf\u00e9"  # not UTF-8: latin-1
    with pytest.raises(UnsupportedFile):
        extract_text(b"\x00\x01\x02binary", "blob.bin")
    with pytest.raises(UnsupportedFile):
        extract_text(b"%PDF-1.4 garbage", "broken.pdf")
    with pytest.raises(UnsupportedFile):
        extract_text(b"not a zip", "broken.docx")


def test_chunks_are_token_windows_with_overlap() -> None:
    text = " ".join(f"word{i}" for i in range(2000))
    chunks = chunk_text(text, 200, 50)
    assert all(n <= 200 for _, n in chunks) and chunks[0][1] == 200
    assert abs(count_text(chunks[0][0]) - 200) <= 2
    # consecutive windows share their overlap: the end of one is the start of the next
    tail = chunks[0][0].split()[-5:]
    assert " ".join(tail) in chunks[1][0]
    no_overlap = chunk_text(text, 200, 0)
    assert sum(n for _, n in no_overlap) == count_text(text)
    assert chunk_text("", 100, 0) == []


def test_strategies() -> None:
    assert resolve_strategy(None) == resolve_strategy({"type": "auto"}) == AUTO
    assert AUTO["static"] == {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}
    static = {"type": "static", "static": {"max_chunk_size_tokens": 300, "chunk_overlap_tokens": 150}}
    assert resolve_strategy(static) == static
    for bad in [{"type": "other"}, {"type": "static"},
                {"type": "static", "static": {"max_chunk_size_tokens": 5000, "chunk_overlap_tokens": 0}},
                {"type": "static", "static": {"max_chunk_size_tokens": 300, "chunk_overlap_tokens": 151}}]:
        with pytest.raises(InvalidRequest):
            resolve_strategy(bad)
