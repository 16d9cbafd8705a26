"""File bytes -> text, by extension (then content type, then a UTF-8 sniff): plain text, markdown and code
as they are; HTML without its tags, scripts and styles; JSON re-indented; CSV as `a, b, c` lines; PDF with
pypdf; DOCX with python-docx (paragraphs and table cells). CPU-bound: call it off the event loop."""

from __future__ import annotations

import csv
import html.parser
import io
import json
from pathlib import PurePath


class UnsupportedFile(ValueError):
    """The file's type cannot be turned into text."""


TEXT_EXTENSIONS = {
    ".txt", ".md", ".markdown", ".rst", ".log", ".ini", ".cfg", ".toml", ".yaml", ".yml", ".xml", ".tex",
    ".py", ".js", ".ts", ".tsx", ".jsx", ".java", ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".go", ".rs",
    ".rb", ".php", ".sh", ".bash", ".sql", ".swift", ".kt", ".scala", ".r", ".lua", ".pl", ".css",
}


def extract_text(data: bytes, filename: str | None, content_type: str | None = None) -> str:
    kind = _kind(data, filename, content_type)
    if kind == "pdf":
        return _pdf(data)
    if kind == "docx":
        return _docx(data)
    text = _decode(data)
    if kind == "html":
        return _html(text)
    if kind == "json":
        try:
            return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            return text
    if kind == "csv":
        return "\n".join(", ".join(row) for row in csv.reader(io.StringIO(text)))
    return text


def _kind(data: bytes, filename: str | None, content_type: str | None) -> str:
    ext = PurePath(filename or "").suffix.lower()
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ext == ".pdf" or ctype == "application/pdf" or data.startswith(b"%PDF-"):
        return "pdf"
    if ext == ".docx" or ctype.endswith("wordprocessingml.document"):
        return "docx"
    if ext in (".html", ".htm") or ctype == "text/html":
        return "html"
    if ext == ".json" or ctype == "application/json":
        return "json"
    if ext == ".csv" or ctype == "text/csv":
        return "csv"
    if ext in TEXT_EXTENSIONS or ctype.startswith("text/"):
        return "text"
    if b"\x00" in data[:8192]:
        raise UnsupportedFile(f"Unsupported file type for text extraction: {filename or ctype or 'unknown'}.")
    return "text"


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _pdf(data: bytes) -> str:
    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages).strip()
    except Exception as exc:  # pypdf raises many types for damaged files
        raise UnsupportedFile(f"The PDF could not be read: {exc}") from exc


def _docx(data: bytes) -> str:
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:
        raise UnsupportedFile(f"The DOCX file could not be read: {exc}") from exc
    parts = [p.text for p in document.paragraphs if p.text.strip()]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text for cell in row.cells))
    return "\n".join(parts)


class _TextOnly(html.parser.HTMLParser):
    SKIP = {"script", "style", "noscript", "template"}
    BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in self.SKIP:
            self._skipping += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _html(text: str) -> str:
    parser = _TextOnly()
    parser.feed(text)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)
