"""Request-body schemas in `/openapi.json`.

Handlers read their bodies with `http.read_json` (orjson, no pydantic on the hot path), so FastAPI cannot see
what they take. Each POST route declares its body with `openapi_extra=json_body(NAME)` (a `$ref` into
`components/schemas`), and `install(app)` adds those schemas to the document the first time it is built:
nothing happens per request.

- `CreateResponseRequest`: the model `responses.request` validates `/v1/responses` bodies with (also the
  body of `/v1/responses/compact` and `/v1/responses/input_tokens`).
- `CreateChatCompletionRequest`, `CreateEmbeddingRequest`: the openai SDK's own request types
  (`CompletionCreateParams`, `EmbeddingCreateParams`): those endpoints pass bodies through to the provider.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import TypeAdapter

CREATE_RESPONSE = "CreateResponseRequest"
CREATE_CHAT_COMPLETION = "CreateChatCompletionRequest"
CREATE_EMBEDDING = "CreateEmbeddingRequest"


def json_body(name: str, description: str | None = None) -> dict[str, Any]:
    """`openapi_extra` for a route whose JSON body is the component schema `name`."""
    body: dict[str, Any] = {"required": True, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}
    if description:
        body["description"] = description
    return {"requestBody": body}


def _create_response() -> Any:
    from respond.responses.request import CreateResponseRequest

    return CreateResponseRequest


def _chat_completion() -> Any:
    from openai.types.chat.completion_create_params import CompletionCreateParamsBase

    class ChatCompletionRequest(CompletionCreateParamsBase, total=False):
        stream: bool | None  # the SDK splits streamed and not into two types; the wire has one field

    return ChatCompletionRequest


def _embedding() -> Any:
    from openai.types.embedding_create_params import EmbeddingCreateParams

    return EmbeddingCreateParams


REQUEST_TYPES: dict[str, Callable[[], Any]] = {
    CREATE_RESPONSE: _create_response,
    CREATE_CHAT_COMPLETION: _chat_completion,
    CREATE_EMBEDDING: _embedding,
}


def request_schemas() -> dict[str, dict[str, Any]]:
    """Every request schema and the schemas they refer to, keyed by component name. A referenced schema is
    named `<Request>_<Type>` so that two request types cannot clash over a name."""
    out: dict[str, dict[str, Any]] = {}
    for name, load in REQUEST_TYPES.items():
        schema = TypeAdapter(load()).json_schema(by_alias=True, ref_template=f"#/components/schemas/{name}_{{model}}")
        for ref, definition in schema.pop("$defs", {}).items():
            out[f"{name}_{ref}"] = definition
        schema["title"] = name
        out[name] = schema
    return out


def install(app: FastAPI) -> None:
    """Make `app.openapi()` add the request schemas to the document (built once, then cached by FastAPI)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        document.setdefault("components", {}).setdefault("schemas", {}).update(request_schemas())
        return document

    app.openapi = openapi  # type: ignore[method-assign]
