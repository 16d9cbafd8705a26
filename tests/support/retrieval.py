"""Helpers for the Files / Vector Stores tests: strict validation against the openai package's types,
real PDF and DOCX documents made on the spot, and waiting for background ingestion."""

from __future__ import annotations

import io
import time
from typing import Any

import openai
from openai.types import FileObject, VectorStore, VectorStoreSearchResponse
from openai.types.vector_stores import FileContentResponse, VectorStoreFile, VectorStoreFileBatch
from pydantic import BaseModel

_TYPES: dict[str, type[BaseModel]] = {
    "file": FileObject,
    "vector_store": VectorStore,
    "vector_store.file": VectorStoreFile,
    "vector_store.files_batch": VectorStoreFileBatch,
}


def validate(obj: dict[str, Any], model: type[BaseModel] | None = None) -> BaseModel:
    """Strict pydantic validation (no coercion) of a raw JSON object against its openai type."""
    model = model or _TYPES[obj["object"]]
    parsed = model.model_validate(obj, strict=True)
    missing = set(model.model_fields) - set(obj) - {"description"}
    optional = {n for n, f in model.model_fields.items() if not f.is_required()}
    assert not (missing - optional), f"{model.__name__} lacks {sorted(missing - optional)}"
    return parsed


def validate_list(page: dict[str, Any]) -> list[BaseModel]:
    assert page["object"] == "list" and isinstance(page["has_more"], bool), page
    return [validate(item) for item in page["data"]]


def validate_search_page(page: dict[str, Any]) -> None:
    assert page["object"] == "vector_store.search_results.page"
    assert isinstance(page["search_query"], list) and page["has_more"] is False and page["next_page"] is None
    for hit in page["data"]:
        VectorStoreSearchResponse.model_validate(hit, strict=True)
        assert set(hit) == {"file_id", "filename", "score", "attributes", "content"}


def validate_content_page(page: dict[str, Any]) -> None:
    assert page["object"] == "vector_store.file_content.page"
    for part in page["data"]:
        FileContentResponse.model_validate(part, strict=True)


def make_pdf(pages: list[str]) -> bytes:
    """A real PDF (one text line per page, Helvetica), written by hand: objects, xref table and trailer."""
    objects: list[bytes] = []
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, text in enumerate(pages):
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 11 Tf 40 760 Td ({escaped}) Tj ET".encode()
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
                       f"/Contents {5 + 2 * i} 0 R >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def make_docx(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def wait_for_file(client: openai.OpenAI, store_id: str, file_id: str, timeout: float = 120) -> Any:
    """Poll the vector store file until it leaves `in_progress`."""
    deadline = time.monotonic() + timeout
    while True:
        vs_file = client.vector_stores.files.retrieve(file_id, vector_store_id=store_id)
        if vs_file.status != "in_progress":
            return vs_file
        assert time.monotonic() < deadline, f"{file_id} still in progress after {timeout}s"
        time.sleep(0.1)


def wait_for_store(client: openai.OpenAI, store_id: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        store = client.vector_stores.retrieve(store_id)
        if store.file_counts.in_progress == 0:
            return store
        assert time.monotonic() < deadline, f"{store_id} still ingesting after {timeout}s"
        time.sleep(0.1)
