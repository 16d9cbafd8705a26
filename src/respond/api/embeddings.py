"""POST /v1/embeddings: a pass-through to the provider behind the requested model (`model` swapped for the
provider's own name; the result is returned as the provider produced it)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from respond.api.http import JSON, read_json_object, require, require_model
from respond.api.openapi import CREATE_EMBEDDING, json_body
from respond.errors import InvalidRequest

router = APIRouter()


@router.post("/v1/embeddings", openapi_extra=json_body(CREATE_EMBEDDING))
async def create_embeddings(request: Request) -> Response:
    body = await read_json_object(request)
    model = require_model(body)
    inputs = body.get("input")
    if isinstance(inputs, list) and not inputs:
        raise InvalidRequest("'input' cannot be an empty array.", param="input", code="invalid_value")
    inputs = require(body, "input")
    if not isinstance(inputs, str | list):
        raise InvalidRequest("Invalid type for 'input': expected a string or an array.", param="input",
                             code="invalid_type")
    inference = request.app.state.services.router
    provider, upstream_model = await inference.aresolve(model)
    result = await provider.embeddings({**body, "model": upstream_model})
    return JSON(result)
