"""Who a request acts for: the owner recorded on what it stores and required on what it reads.

The authentication middleware (`api/auth.py`) resolves the principal once per request; with auth off it is
the one implicit owner ("default"). Handlers pass the owner explicitly to the services (and they to the
repositories, which filter every statement by it).
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from respond.api.auth import principal_of
from respond.auth import Principal


def request_owner(connection: HTTPConnection) -> str:
    """The owner of an HTTP request or WebSocket connection."""
    return principal_of(connection.scope).owner


def request_principal(connection: HTTPConnection) -> Principal:
    return principal_of(connection.scope)
