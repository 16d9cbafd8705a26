"""Who a request acts for. One implicit owner until auth is on; every repository call takes it."""

from __future__ import annotations

from starlette.requests import Request

from respond.storage.files_tables import DEFAULT_OWNER


def request_owner(request: Request) -> str:
    return getattr(request.state, "owner", None) or DEFAULT_OWNER
