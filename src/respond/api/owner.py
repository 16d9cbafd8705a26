"""Who a request acts for: the owner recorded on what it stores and required on what it reads.

There is no authentication yet, so every request acts for the one implicit owner. Handlers pass the owner
explicitly to the services (and they to the repositories), so authentication only has to change this.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from respond.storage.tables import DEFAULT_OWNER


def request_owner(connection: HTTPConnection) -> str:
    """The owner of an HTTP request or WebSocket connection."""
    return DEFAULT_OWNER
