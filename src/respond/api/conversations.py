"""/v1/conversations over HTTP: conversations and their items (the service does the work)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from respond.api.http import JSON, read_json_object
from respond.api.owner import request_owner
from respond.conversations import ConversationService

router = APIRouter()

Order = Literal["asc", "desc"]
Limit = Annotated[int, Query(ge=1, le=100)]
Include = Annotated[list[str] | None, Query()]


def _service(request: Request) -> ConversationService:
    return request.app.state.services.conversations


@router.post("/v1/conversations")
async def create_conversation(request: Request) -> JSON:
    body = await read_json_object(request) if await request.body() else {}
    return JSON(await _service(request).create(owner=request_owner(request), metadata=body.get("metadata"),
                                               items=body.get("items")))


@router.get("/v1/conversations/{conversation_id}")
async def get_conversation(request: Request, conversation_id: str) -> JSON:
    return JSON(await _service(request).get(conversation_id, owner=request_owner(request)))


@router.post("/v1/conversations/{conversation_id}")
async def update_conversation(request: Request, conversation_id: str) -> JSON:
    body = await read_json_object(request)
    return JSON(await _service(request).update(conversation_id, owner=request_owner(request),
                                               metadata=body.get("metadata")))


@router.delete("/v1/conversations/{conversation_id}")
async def delete_conversation(request: Request, conversation_id: str) -> JSON:
    return JSON(await _service(request).delete(conversation_id, owner=request_owner(request)))


@router.post("/v1/conversations/{conversation_id}/items")
async def create_items(request: Request, conversation_id: str, include: Include = None) -> JSON:
    body = await read_json_object(request)
    items = body.get("items")
    return JSON(await _service(request).add_items(conversation_id, owner=request_owner(request), items=items,
                                                  include=include))


@router.get("/v1/conversations/{conversation_id}/items")
async def list_items(request: Request, conversation_id: str, after: str | None = None, limit: Limit = 20,
                     order: Order = "desc", include: Include = None) -> JSON:
    return JSON(await _service(request).list_items(conversation_id, owner=request_owner(request), after=after,
                                                   limit=limit, order=order, include=include))


@router.get("/v1/conversations/{conversation_id}/items/{item_id}")
async def get_item(request: Request, conversation_id: str, item_id: str, include: Include = None) -> JSON:
    return JSON(await _service(request).get_item(conversation_id, item_id, owner=request_owner(request),
                                                 include=include))


@router.delete("/v1/conversations/{conversation_id}/items/{item_id}")
async def delete_item(request: Request, conversation_id: str, item_id: str) -> JSON:
    return JSON(await _service(request).delete_item(conversation_id, item_id, owner=request_owner(request)))
