"""The authentication middleware: resolves the request's principal once, before any handler runs.

It stores the principal in the request scope's state (`respond.api.owner.request_owner` reads it) or
answers 401 itself: over HTTP an OpenAI error envelope with `WWW-Authenticate: Bearer`; on the WebSocket
handshake the same 401 response before the connection is accepted (ASGI `websocket.http.response`, which
uvicorn supports; the openai SDK's `responses.connect()` then raises `websockets.InvalidStatus` carrying
the 401 and the envelope), or a close with code 1008 where the server cannot send a denial response.
Paths in `auth.public_paths` (health, OpenAPI schema, docs) need no credentials. A key with quotas takes one
request from its bucket here (429 `rate_limit_exceeded` + `Retry-After` when empty); the handlers that run
responses charge their tokens with `charge_usage` when they finish.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from respond import jsonutil
from respond.auth import Authenticator, Principal
from respond.auth.quotas import RateLimited
from respond.auth.service import IMPLICIT
from respond.errors import APIError

log = logging.getLogger("respond.auth")

STATE_KEY = "respond.principal"
_AUTHORIZATION = b"authorization"


class AuthMiddleware:
    def __init__(self, app: ASGIApp, public_paths: list[str], trusted: bool = False) -> None:
        self.app = app
        self.public = frozenset(public_paths)
        self.trusted = trusted  # library mode: in-process callers act as the implicit owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if self.trusted or scope["path"] in self.public:
            state[STATE_KEY] = IMPLICIT
            await self.app(scope, receive, send)
            return
        authenticator: Authenticator = scope["app"].state.services.auth
        header = None
        for name, value in scope["headers"]:
            if name == _AUTHORIZATION:
                header = value
                break
        try:
            principal = await authenticator.authenticate(header)
            if principal.limited:
                authenticator.admit(principal)
        except APIError as exc:
            log.info("%s %s rejected: %s", scope.get("method", "WEBSOCKET"), scope["path"], exc.code)
            await _deny(scope, send, exc)
            return
        state[STATE_KEY] = principal
        await self.app(scope, receive, send)


def principal_of(scope: Scope) -> Principal:
    """The principal the middleware resolved (a missing one is a bug: fail rather than act as anyone)."""
    return scope["state"][STATE_KEY]


def charge_usage(scope: Scope, response: dict[str, Any]) -> None:
    """Count a finished response's tokens against the caller's tokens-per-minute quota (if it has one)."""
    principal = principal_of(scope)
    if principal.tokens_per_minute is not None:
        scope["app"].state.services.auth.charge(principal, response.get("usage"))


async def _deny(scope: Scope, send: Send, exc: APIError) -> None:
    body = jsonutil.dumpb(exc.envelope())
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json"),
                                          (b"content-length", str(len(body)).encode())]
    if exc.status_code == 401:
        headers.append((b"www-authenticate", b'Bearer realm="respond"'))
    if isinstance(exc, RateLimited):
        headers.extend(exc.headers())
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    extensions: dict[str, Any] = scope.get("extensions") or {}
    if "websocket.http.response" in extensions:
        await send({"type": "websocket.http.response.start", "status": exc.status_code, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": exc.message[:120]})
