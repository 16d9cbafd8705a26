"""/v1/responses over HTTP: create (JSON or SSE), retrieve, delete, list, input items, compact, count."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from respond.api.auth import charge_usage
from respond.api.http import JSON, EventStreamResponse, cancel_on_disconnect, read_json, sse_frame
from respond.api.openapi import CREATE_RESPONSE, json_body
from respond.api.owner import request_owner
from respond.responses.request import (
    COMPACT_PARAMETERS,
    CREATE_PARAMETERS,
    INPUT_TOKENS_PARAMETERS,
    CreateResponseRequest,
    parse_create_request,
)
from respond.responses.runs import Runs
from respond.responses.service import Prepared, ResponseService

router = APIRouter()

Order = Literal["asc", "desc"]
Limit = Annotated[int, Query(ge=1, le=100)]


def _service(request: Request) -> ResponseService:
    return request.app.state.services.responses


async def _body(request: Request, parameters: frozenset[str] = CREATE_PARAMETERS) -> CreateResponseRequest:
    """The validated body; `parameters`: the top-level parameters this endpoint accepts."""
    strict = request.app.state.services.config.strict_parameters
    return parse_create_request(await read_json(request), strict=strict, parameters=parameters)


@router.post("/v1/responses", openapi_extra=json_body(CREATE_RESPONSE))
async def create_response(request: Request) -> Any:
    req = await _body(request)
    service = _service(request)
    owner = request_owner(request)
    prepared = await service.prepare(req, stream=bool(req.stream), owner=owner)
    if req.background:
        runs = _runs(request)
        queued = await runs.enqueue(prepared)
        if req.stream:
            return EventStreamResponse(_frames(runs.follow(queued["id"], owner, None)))
        return JSON(queued)
    if req.stream:
        return EventStreamResponse(_sse(request, service, prepared))
    try:
        return JSON(await cancel_on_disconnect(request, service.create(prepared)))
    finally:
        charge_usage(request.scope, prepared.run.response)


def _runs(request: Request) -> Runs:
    return request.app.state.services.runs


async def _frames(batches: AsyncIterator[list[dict[str, Any]]]) -> AsyncIterator[bytes]:
    try:
        async for batch in batches:
            yield b"".join(map(sse_frame, batch))
    finally:
        await batches.aclose()  # type: ignore[attr-defined]


async def _sse(request: Request, service: ResponseService, prepared: Prepared) -> AsyncIterator[bytes]:
    batches = service.stream(prepared)
    try:
        async for batch in batches:
            yield b"".join(map(sse_frame, batch))  # the events of one upstream read: one write
    finally:
        await batches.aclose()
        charge_usage(request.scope, prepared.run.response)


@router.post("/v1/responses/compact", openapi_extra=json_body(CREATE_RESPONSE))
async def compact_response(request: Request) -> JSON:
    req = await _body(request, COMPACT_PARAMETERS)
    return JSON(await cancel_on_disconnect(request, _service(request).compact(req, owner=request_owner(request))))


@router.post("/v1/responses/input_tokens", openapi_extra=json_body(CREATE_RESPONSE))
async def count_input_tokens(request: Request) -> JSON:
    req = await _body(request, INPUT_TOKENS_PARAMETERS)
    return JSON(await _service(request).count_input_tokens(req, owner=request_owner(request)))


@router.get("/v1/responses")
async def list_responses(request: Request, after: str | None = None, limit: Limit = 20,
                         order: Order = "desc", model: str | None = None) -> JSON:
    return JSON(await _service(request).list(owner=request_owner(request), after=after, limit=limit, order=order, model=model))


@router.get("/v1/responses/{response_id}")
async def get_response(request: Request, response_id: str, stream: bool = False,
                       starting_after: Annotated[int | None, Query(ge=-1, le=2_147_483_647)] = None) -> Any:
    """The response; with `stream=true` (background responses), its events after `starting_after`, then
    live until it ends (responses/runs.py)."""
    owner = request_owner(request)
    if stream:
        runs = _runs(request)
        await runs.check_resumable(response_id, owner)
        return EventStreamResponse(_frames(runs.follow(response_id, owner, starting_after)))
    return JSON(await _service(request).get(response_id, owner=owner))


@router.delete("/v1/responses/{response_id}")
async def delete_response(request: Request, response_id: str) -> JSON:
    return JSON(await _service(request).delete(response_id, owner=request_owner(request)))


@router.post("/v1/responses/{response_id}/cancel")
async def cancel_response(request: Request, response_id: str) -> JSON:
    return JSON(await _runs(request).cancel(response_id, request_owner(request)))


@router.get("/v1/responses/{response_id}/input_items")
async def list_input_items(request: Request, response_id: str, after: str | None = None,
                           before: str | None = None, limit: Limit = 20,
                           order: Order = "desc", include: Annotated[list[str] | None, Query()] = None) -> JSON:
    return JSON(await _service(request).input_items(response_id, owner=request_owner(request), after=after, before=before, limit=limit,
                                                    order=order))
