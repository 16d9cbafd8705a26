"""Exception handlers: every error a client sees is an OpenAI error envelope with the right status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from respond.api.http import JSON, ClientDisconnected
from respond.errors import APIError, InvalidRequest, invalid_request_from

log = logging.getLogger("respond.api")


def error_response(exc: APIError) -> JSON:
    return JSON(exc.envelope(), status_code=exc.status_code)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSON:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSON:
        errors = [{**e, "loc": tuple(p for p in e.get("loc", ()) if p not in ("body", "query", "path"))}
                  for e in exc.errors()]
        return error_response(invalid_request_from(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSON:
        kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404:
            message = f"Unknown request URL: {request.method} {request.url.path}."
        if exc.status_code == 405:
            message = f"Method {request.method} is not allowed for {request.url.path}."
        return JSON(APIError(message, status_code=exc.status_code, error_type=kind,
                                       code=None).envelope(), status_code=exc.status_code)

    @app.exception_handler(ClientDisconnected)
    async def _gone(request: Request, exc: ClientDisconnected) -> Response:
        return Response(status_code=499)  # nobody is listening; nginx's "client closed request"

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSON:
        if _is_nul_rejection(exc):  # PostgreSQL text cannot hold NUL: a value the client sent, not our fault
            return error_response(InvalidRequest("The request contains a NUL character (\\u0000) in an id, name "
                                                 "or value that this server stores or looks up.",
                                                 code="invalid_value"))
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(APIError("The server had an error while processing your request.",
                                       code="internal_error"))


# asyncpg's names for "this text holds a character the database encoding cannot store" (NUL in UTF-8).
_NUL_ERRORS = ("CharacterNotInRepertoireError", "UntranslatableCharacterError")


def _is_nul_rejection(exc: BaseException | None) -> bool:
    """Whether the database refused a NUL character the request carried (looked up through the causes)."""
    seen = 0
    while exc is not None and seen < 8:
        if type(exc).__name__ in _NUL_ERRORS:
            return True
        orig = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's error
        exc = orig if isinstance(orig, BaseException) else (exc.__cause__ or exc.__context__)
        seen += 1
    return False
