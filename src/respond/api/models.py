"""GET /v1/models and GET /v1/models/{model_id}: the models every provider serves, ids `provider/model`."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from respond.api.http import JSON

router = APIRouter()


@router.get("/v1/models")
async def list_models(request: Request) -> Response:
    models = await request.app.state.services.router.list_models()
    return JSON({"object": "list", "data": models})


@router.get("/v1/models/{model_id:path}")
async def retrieve_model(model_id: str, request: Request) -> Response:
    model = await request.app.state.services.router.get_model(model_id)
    return JSON(model)
