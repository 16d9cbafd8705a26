"""/openapi.json documents the request bodies of the POST endpoints (read with read_json, so FastAPI cannot
see them on its own)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

POSTS = {
    "/v1/responses": "CreateResponseRequest",
    "/v1/responses/compact": "CreateResponseRequest",
    "/v1/responses/input_tokens": "CreateResponseRequest",
    "/v1/chat/completions": "CreateChatCompletionRequest",
    "/v1/embeddings": "CreateEmbeddingRequest",
}


@pytest.fixture(scope="module")
def document(server) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/openapi.json", timeout=30)
    assert response.status_code == 200
    return response.json()


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema["$ref"]
    assert ref.startswith("#/components/schemas/")
    return document["components"]["schemas"][ref.rsplit("/", 1)[1]]


def _every_ref(value: Any) -> list[str]:
    if isinstance(value, dict):
        return ([value["$ref"]] if isinstance(value.get("$ref"), str) else []) + \
            [r for v in value.values() for r in _every_ref(v)]
    if isinstance(value, list):
        return [r for v in value for r in _every_ref(v)]
    return []


@pytest.mark.parametrize(("path", "name"), POSTS.items())
def test_post_endpoints_document_their_json_body(document, path: str, name: str) -> None:
    body = document["paths"][path]["post"]["requestBody"]
    assert body["required"] is True
    schema = body["content"]["application/json"]["schema"]
    assert schema == {"$ref": f"#/components/schemas/{name}"}
    assert _resolve(document, schema)["type"] == "object"


def test_the_request_schemas(document) -> None:
    schemas = document["components"]["schemas"]
    create = schemas["CreateResponseRequest"]["properties"]
    assert {"model", "input", "tools", "tool_choice", "text", "stream", "previous_response_id", "store",
            "instructions", "max_output_tokens", "temperature"} <= set(create)
    assert "schema" in schemas["CreateResponseRequest_TextFormat"]["properties"]  # the wire name, not schema_
    chat = schemas["CreateChatCompletionRequest"]
    assert {"model", "messages"} <= set(chat["required"]) and {"tools", "stream", "temperature"} <= set(
        chat["properties"])
    embedding = schemas["CreateEmbeddingRequest"]
    assert {"model", "input"} <= set(embedding["required"])
    # every reference in the document resolves
    for ref in _every_ref(document):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_the_request_schemas_are_valid_json_schemas(document) -> None:
    """OpenAPI 3.1 schemas are JSON Schema 2020-12: each request schema checks as one, and accepts what the
    SDK sends (with its references resolved against the document)."""
    import jsonschema
    import referencing

    registry = referencing.Registry().with_resource("urn:openapi", referencing.Resource.from_contents(
        document, default_specification=referencing.jsonschema.DRAFT202012))
    examples = {
        "CreateResponseRequest": {"model": "m", "input": [{"role": "user", "content": "hi"}], "stream": True,
                                  "tools": [{"type": "function", "name": "f", "parameters": {}}]},
        "CreateChatCompletionRequest": {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                                        "stream": True},
        "CreateEmbeddingRequest": {"model": "m", "input": ["a", "b"]},
    }
    for name, example in examples.items():
        schema = {"$ref": f"urn:openapi#/components/schemas/{name}"}
        jsonschema.Draft202012Validator.check_schema(document["components"]["schemas"][name])
        validator = jsonschema.Draft202012Validator(schema, registry=registry)
        validator.validate(example)
        assert not validator.is_valid({k: v for k, v in example.items() if k != "model"}) or \
            name == "CreateResponseRequest"  # model is required for chat and embeddings
