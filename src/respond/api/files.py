"""/v1/files: upload (multipart, streamed to the blob store), list, retrieve, content, delete."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import StreamingResponse

from respond.api.http import JSON
from respond.api.owner import request_owner
from respond.files.service import FileService
from respond.files.upload import receive_upload

router = APIRouter()


def _service(request: Request) -> FileService:
    return request.app.state.services.files


@router.post("/v1/files")
async def upload_file(request: Request) -> JSON:
    service = _service(request)
    file_id = service.new_upload_key()
    upload = await receive_upload(request, lambda: service.blobs.writer(file_id), service.max_bytes)
    return JSON(await service.register(request_owner(request), file_id, upload))


@router.get("/v1/files")
async def list_files(request: Request, purpose: str | None = None, after: str | None = None,
                     limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
                     order: Literal["asc", "desc"] = "desc") -> JSON:
    return JSON(await _service(request).list(request_owner(request), purpose=purpose, after=after, limit=limit,
                                             order=order))


@router.get("/v1/files/{file_id}")
async def get_file(request: Request, file_id: str) -> JSON:
    return JSON(await _service(request).get(request_owner(request), file_id))


@router.get("/v1/files/{file_id}/content")
async def get_file_content(request: Request, file_id: str) -> StreamingResponse:
    row, body = await _service(request).content(request_owner(request), file_id)
    media = row.content_type if row.content_type and row.content_type.isascii() and row.content_type.isprintable() \
        else "application/octet-stream"  # rows stored before uploads checked the part's media type
    return StreamingResponse(body, media_type=media, headers={"content-length": str(row.bytes)})


@router.delete("/v1/files/{file_id}")
async def delete_file(request: Request, file_id: str) -> JSON:
    return JSON(await _service(request).delete(request_owner(request), file_id))
