"""`input_file` parts that name an uploaded file (`file_id`) -> the file's text, for the model.

Runs in `prepare` on a copy of the context items (the stored items keep the `file_id` reference): in
message content and in `function_call_output` lists, each such part becomes an `input_text` part holding
the file's name and extracted text. An unknown or unreadable file is a 400 before anything streams.
"""

from __future__ import annotations

from typing import Any

from respond.errors import InvalidRequest
from respond.files.parsing import UnsupportedFile
from respond.files.service import FileService


def _parts_of(item: dict[str, Any]) -> list[dict[str, Any]] | None:
    if item.get("type") == "message" and isinstance(item.get("content"), list):
        return item["content"]
    if item.get("type") == "function_call_output" and isinstance(item.get("output"), list):
        return item["output"]
    return None


def _is_file_ref(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") == "input_file" and bool(part.get("file_id")) \
        and not part.get("file_data")


def has_file_refs(items: list[dict[str, Any]]) -> bool:
    for item in items:
        parts = _parts_of(item)
        if parts and any(_is_file_ref(p) for p in parts):
            return True
    return False


async def resolve_file_parts(items: list[dict[str, Any]], files: FileService, owner: str) -> list[dict[str, Any]]:
    texts: dict[str, str] = {}
    out = []
    for item in items:
        parts = _parts_of(item)
        if not parts or not any(_is_file_ref(p) for p in parts):
            out.append(item)
            continue
        new_parts = []
        for part in parts:
            if not _is_file_ref(part):
                new_parts.append(part)
                continue
            file_id = part["file_id"]
            if file_id not in texts:
                row = await files.store.get(owner, file_id)
                if row is None:
                    raise InvalidRequest(f"File with id '{file_id}' not found.", param="input", code="file_not_found")
                try:
                    _, text = await files.text(owner, file_id)
                except UnsupportedFile as exc:
                    raise InvalidRequest(f"The file '{file_id}' cannot be read as text: {exc}", param="input",
                                         code="unsupported_file") from None
                texts[file_id] = f"[file {row.filename} ({file_id})]\n{text}"
            new_parts.append({"type": "input_text", "text": texts[file_id]})
        key = "content" if item.get("type") == "message" else "output"
        out.append({**item, key: new_parts})
    return out
