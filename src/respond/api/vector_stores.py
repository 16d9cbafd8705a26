"""/v1/vector_stores: stores, their files, file batches and search (thin: the service does the work)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from respond.api.http import JSON, read_json_object
from respond.api.owner import request_owner
from respond.recording import context as recording_context
from respond.vector_stores.service import VectorStoreService

router = APIRouter()

Order = Literal["asc", "desc"]
Limit = Annotated[int, Query(ge=1, le=100)]
Status = Literal["in_progress", "completed", "failed", "cancelled"]


def _service(request: Request) -> VectorStoreService:
    return request.app.state.services.vector_stores


@router.post("/v1/vector_stores")
async def create_store(request: Request) -> JSON:
    body = await read_json_object(request)
    return JSON(await _service(request).create(request_owner(request), body, recording_context.test_id.get()))


@router.get("/v1/vector_stores")
async def list_stores(request: Request, after: str | None = None, before: str | None = None, limit: Limit = 20,
                      order: Order = "desc") -> JSON:
    return JSON(await _service(request).list(request_owner(request), after=after, before=before, limit=limit,
                                             order=order))


@router.get("/v1/vector_stores/{store_id}")
async def get_store(request: Request, store_id: str) -> JSON:
    return JSON(await _service(request).get(request_owner(request), store_id))


@router.post("/v1/vector_stores/{store_id}")
async def update_store(request: Request, store_id: str) -> JSON:
    body = await read_json_object(request)
    return JSON(await _service(request).update(request_owner(request), store_id, body))


@router.delete("/v1/vector_stores/{store_id}")
async def delete_store(request: Request, store_id: str) -> JSON:
    return JSON(await _service(request).delete(request_owner(request), store_id))


@router.post("/v1/vector_stores/{store_id}/search")
async def search_store(request: Request, store_id: str) -> JSON:
    body = await read_json_object(request)
    return JSON(await _service(request).search(request_owner(request), store_id, body))


# -- files --------------------------------------------------------------------------------------------------


@router.post("/v1/vector_stores/{store_id}/files")
async def attach_file(request: Request, store_id: str) -> JSON:
    body = await read_json_object(request)
    return JSON(await _service(request).attach_file(request_owner(request), store_id, body,
                                                    recording_context.test_id.get()))


@router.get("/v1/vector_stores/{store_id}/files")
async def list_store_files(request: Request, store_id: str, after: str | None = None, before: str | None = None,
                           limit: Limit = 20, order: Order = "desc",
                           filter: Status | None = None) -> JSON:  # noqa: A002 - OpenAI's parameter name
    return JSON(await _service(request).list_files(request_owner(request), store_id, status=filter, after=after,
                                                   before=before, limit=limit, order=order))


@router.get("/v1/vector_stores/{store_id}/files/{file_id}")
async def get_store_file(request: Request, store_id: str, file_id: str) -> JSON:
    return JSON(await _service(request).get_file(request_owner(request), store_id, file_id))


@router.post("/v1/vector_stores/{store_id}/files/{file_id}")
async def update_store_file(request: Request, store_id: str, file_id: str) -> JSON:
    body = await read_json_object(request)
    return JSON(await _service(request).update_file(request_owner(request), store_id, file_id, body))


@router.delete("/v1/vector_stores/{store_id}/files/{file_id}")
async def delete_store_file(request: Request, store_id: str, file_id: str) -> JSON:
    return JSON(await _service(request).delete_file(request_owner(request), store_id, file_id))


@router.get("/v1/vector_stores/{store_id}/files/{file_id}/content")
async def get_store_file_content(request: Request, store_id: str, file_id: str) -> JSON:
    return JSON(await _service(request).file_content(request_owner(request), store_id, file_id))


# -- file batches -------------------------------------------------------------------------------------------


@router.post("/v1/vector_stores/{store_id}/file_batches")
async def create_batch(request: Request, store_id: str) -> JSON:
    body = await read_json_object(request)
    return JSON(await _service(request).create_batch(request_owner(request), store_id, body,
                                                     recording_context.test_id.get()))


@router.get("/v1/vector_stores/{store_id}/file_batches/{batch_id}")
async def get_batch(request: Request, store_id: str, batch_id: str) -> JSON:
    return JSON(await _service(request).get_batch(request_owner(request), store_id, batch_id))


@router.post("/v1/vector_stores/{store_id}/file_batches/{batch_id}/cancel")
async def cancel_batch(request: Request, store_id: str, batch_id: str) -> JSON:
    return JSON(await _service(request).cancel_batch(request_owner(request), store_id, batch_id))


@router.get("/v1/vector_stores/{store_id}/file_batches/{batch_id}/files")
async def list_batch_files(request: Request, store_id: str, batch_id: str, after: str | None = None,
                           before: str | None = None, limit: Limit = 20, order: Order = "desc",
                           filter: Status | None = None) -> JSON:  # noqa: A002
    return JSON(await _service(request).list_batch_files(request_owner(request), store_id, batch_id, status=filter,
                                                         after=after, before=before, limit=limit, order=order))
