"""/v1/admin/api_keys: create (the key is returned once), list and retrieve (never the key), revoke.

Only admin keys (config `auth.admin_keys`, $RESPOND_ADMIN_KEY) may call these; anyone else gets a 403.
With authentication off there are no admin keys, so the admin API is closed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from respond.api.http import JSON, read_json_object, require
from respond.api.owner import request_principal
from respond.auth import Authenticator
from respond.auth.service import PermissionDenied
from respond.errors import InvalidRequest, NotFound

router = APIRouter()


def _admin(request: Request) -> Authenticator:
    if not request_principal(request).admin:
        raise PermissionDenied("This endpoint needs an admin key (config auth.admin_keys or $RESPOND_ADMIN_KEY).",
                               code="insufficient_permissions")
    return request.app.state.services.auth


def _string(body: dict[str, Any], name: str, required: bool) -> str | None:
    value = require(body, name) if required else body.get(name)
    if value is not None and (not isinstance(value, str) or len(value) > 256):
        raise InvalidRequest(f"Invalid '{name}': expected a string of at most 256 characters.", param=name,
                             code="invalid_value")
    return value


@router.post("/v1/admin/api_keys")
async def create_key(request: Request) -> JSON:
    auth = _admin(request)
    body = await read_json_object(request)
    owner = _string(body, "owner", required=True)
    assert owner is not None
    return JSON(await auth.create_key(owner, _string(body, "name", required=False),
                                      requests_per_minute=_limit(body, "requests_per_minute"),
                                      tokens_per_minute=_limit(body, "tokens_per_minute")))


def _limit(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise InvalidRequest(f"Invalid '{name}': expected a positive integer.", param=name, code="invalid_value")
    return value


@router.get("/v1/admin/api_keys")
async def list_keys(request: Request, owner: str | None = None, after: str | None = None,
                    limit: Annotated[int, Query(ge=1, le=100)] = 20) -> JSON:
    auth = _admin(request)
    data, has_more = await auth._store().list(owner=owner, after=after, limit=limit)
    return JSON({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                 "last_id": data[-1]["id"] if data else None, "has_more": has_more})


@router.get("/v1/admin/api_keys/{key_id}")
async def get_key(request: Request, key_id: str) -> JSON:
    key = await _admin(request)._store().get(key_id)
    if key is None:
        raise NotFound(f"API key with id '{key_id[:64]}' not found.", param="key_id")
    return JSON(key)


@router.delete("/v1/admin/api_keys/{key_id}")
async def revoke_key(request: Request, key_id: str) -> JSON:
    return JSON(await _admin(request).revoke_key(key_id))
