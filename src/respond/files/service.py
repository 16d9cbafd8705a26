"""`FileService`: upload (streamed into the `BlobStore`, the row inserted only after the blob is complete),
retrieve, list, content, delete, and text extraction for `input_file` parts and ingestion.

Order of an upload: bytes -> temporary blob -> checks -> rename (commit) -> insert the row. A failure before
the rename leaves nothing; a failure of the insert deletes the committed blob. So a file is never
half-written (the rename is atomic) nor half-registered (no row without its complete blob).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from respond import ids
from respond.errors import InvalidRequest, not_found
from respond.files.blobs import BlobStore
from respond.files.parsing import extract_text
from respond.files.upload import Upload
from respond.storage.files_repo import FileStore, file_object

log = logging.getLogger("respond.files")

PURPOSES = ("assistants", "user_data", "batch", "vision", "evals", "fine-tune")
MIN_EXPIRY, MAX_EXPIRY = 3600, 30 * 24 * 3600


def check_page(limit: int, order: str, max_limit: int = 10_000) -> None:
    if order not in ("asc", "desc"):
        raise InvalidRequest(f"Invalid 'order': expected 'asc' or 'desc', got {order!r}.", param="order",
                             code="invalid_value")
    if not 1 <= limit <= max_limit:
        raise InvalidRequest(f"Invalid 'limit': must be between 1 and {max_limit}, got {limit}.", param="limit",
                             code="invalid_value")


def parse_expires_after(value: Any, param: str = "expires_after") -> dict[str, Any] | None:
    """`{"anchor": "created_at", "seconds": N}` checked; None when absent."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest(f"Invalid '{param}': expected an object.", param=param, code="invalid_type")
    anchor, seconds = value.get("anchor"), value.get("seconds")
    if anchor not in ("created_at", "last_active_at"):
        raise InvalidRequest(f"Invalid '{param}.anchor': expected 'created_at'.", param=f"{param}.anchor",
                             code="invalid_value")
    if isinstance(seconds, str) and seconds.isdigit():
        seconds = int(seconds)
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise InvalidRequest(f"Invalid '{param}.seconds': expected an integer.", param=f"{param}.seconds",
                             code="invalid_type")
    return {"anchor": anchor, "seconds": seconds}


class FileService:
    def __init__(self, store: FileStore, blobs: BlobStore, *, max_bytes: int) -> None:
        self.store = store
        self.blobs = blobs
        self.max_bytes = max_bytes
        self.on_delete: list[Callable[[str, str], Awaitable[None]]] = []  # (owner, file_id): detach elsewhere

    def new_upload_key(self) -> str:
        return ids.new_id("file")

    async def register(self, owner: str, file_id: str, upload: Upload) -> dict[str, Any]:
        """Check the fields of a received upload, commit its blob and insert its row."""
        writer = upload.writer
        try:
            if writer is None:
                raise InvalidRequest("Missing required parameter: 'file'.", param="file", code="missing_required_parameter")
            purpose = upload.fields.get("purpose")
            if not purpose:
                raise InvalidRequest("Missing required parameter: 'purpose'.", param="purpose",
                                     code="missing_required_parameter")
            if purpose not in PURPOSES:
                raise InvalidRequest(f"Invalid value for 'purpose': expected one of {', '.join(PURPOSES)}; "
                                     f"got '{purpose}'.", param="purpose", code="invalid_value")
            expires_after = None
            if "expires_after[anchor]" in upload.fields or "expires_after[seconds]" in upload.fields:
                expires_after = parse_expires_after({"anchor": upload.fields.get("expires_after[anchor]"),
                                                     "seconds": upload.fields.get("expires_after[seconds]")})
                if expires_after["anchor"] != "created_at" or not MIN_EXPIRY <= expires_after["seconds"] <= MAX_EXPIRY:
                    raise InvalidRequest(f"Invalid 'expires_after': anchor must be 'created_at' and seconds between "
                                         f"{MIN_EXPIRY} and {MAX_EXPIRY}.", param="expires_after", code="invalid_value")
            if writer.size == 0:
                raise InvalidRequest("The file is empty.", param="file", code="empty_file")
        except BaseException:
            if writer is not None:
                await writer.abort()
            raise
        await writer.commit()
        now = int(time.time())
        row = {"id": file_id, "created_at": now, "filename": upload.filename or "upload", "purpose": purpose,
               "bytes": writer.size, "blob_key": file_id, "content_type": upload.content_type,
               "expires_at": now + expires_after["seconds"] if expires_after else None}
        try:
            await self.store.insert(owner, row)
        except BaseException:
            await self.blobs.delete(file_id)
            raise
        return file_object(_Row(row))

    async def get_row(self, owner: str, file_id: str, param: str = "file_id") -> Any:
        row = await self.store.get(owner, file_id)
        if row is None:
            raise not_found("File", file_id, param=param)
        return row

    async def get(self, owner: str, file_id: str) -> dict[str, Any]:
        return file_object(await self.get_row(owner, file_id))

    async def list(self, owner: str, *, purpose: str | None = None, after: str | None = None, limit: int = 10_000,
                   order: str = "desc") -> dict[str, Any]:
        check_page(limit, order)
        rows, has_more = await self.store.list(owner, purpose=purpose, after=after, limit=limit, order=order)
        data = [file_object(r) for r in rows]
        return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None, "has_more": has_more}

    async def content(self, owner: str, file_id: str) -> tuple[Any, AsyncIterator[bytes]]:
        row = await self.get_row(owner, file_id)
        return row, self.blobs.open(row.blob_key)

    async def read_bytes(self, owner: str, file_id: str) -> tuple[Any, bytes]:
        row = await self.get_row(owner, file_id)
        return row, await self.blobs.read_all(row.blob_key)

    async def text(self, owner: str, file_id: str) -> tuple[Any, str]:
        """The file's text (for `input_file` parts): parsed off the event loop."""
        import asyncio

        row, data = await self.read_bytes(owner, file_id)
        text = await asyncio.to_thread(extract_text, data, row.filename, row.content_type)
        return row, text

    async def delete(self, owner: str, file_id: str) -> dict[str, Any]:
        row = await self.get_row(owner, file_id)
        for hook in self.on_delete:
            await hook(owner, file_id)
        await self.store.delete(owner, file_id)
        await self.blobs.delete(row.blob_key)
        return {"id": file_id, "object": "file", "deleted": True}

    async def sweep_expired(self) -> int:
        """Delete expired files (rows, blobs, attachments). Returns how many."""
        rows = await self.store.expired(int(time.time()))
        for row in rows:
            for hook in self.on_delete:
                await hook(row.owner, row.id)
            await self.blobs.delete(row.blob_key)
        if rows:
            await self.store.delete_rows([r.id for r in rows])
        return len(rows)


class _Row:
    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
