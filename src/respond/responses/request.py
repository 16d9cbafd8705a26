"""The `POST /v1/responses` request (and the compact / input_tokens bodies), validated at the edge.

A top-level parameter OpenAI does not know is a 400 `unknown_parameter`, as OpenAI answers it; the known
ones are `CREATE_PARAMETERS` (every parameter of the openai SDK's `responses.create`, pinned here and
checked against the SDK by a test) plus what real clients send besides (`client_metadata`: Codex CLI).
With `strict_parameters: false` in the config, unknown parameters are accepted and ignored. Booleans and
numbers must be JSON booleans and numbers (`"stream": "true"` is a 400 `invalid_type`). Nested objects
(`text`, `reasoning`...) accept fields Respond does not use.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, field_validator

from respond.errors import InvalidRequest, invalid_request_from, shorten

# The top-level parameters of `POST /v1/responses`: the openai SDK's `responses.create` (ResponseCreateParams,
# tests/responses/test_request.py compares), plus `client_metadata` (Codex CLI sends it; ignored).
CREATE_PARAMETERS = frozenset((
    "access_programs", "background", "context_management", "conversation", "image", "include", "input",
    "instructions", "max_output_tokens", "max_tool_calls", "metadata", "model", "moderation",
    "parallel_tool_calls", "previous_response_id", "prompt", "prompt_cache_key", "prompt_cache_options",
    "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier", "store", "stream",
    "stream_options", "temperature", "text", "tool_choice", "tools", "top_logprobs", "top_p", "truncation",
    "user", "client_metadata"))
# `POST /v1/responses/compact`: the SDK's `responses.compact` (CompactResponseMethodPublicBody in OpenAI's
# spec: `model` required).
COMPACT_PARAMETERS = frozenset((
    "image", "input", "instructions", "model", "previous_response_id", "prompt_cache_key", "prompt_cache_options",
    "prompt_cache_retention", "service_tier", "client_metadata"))
# `POST /v1/responses/input_tokens`: the SDK's `responses.input_tokens.count` (TokenCountsBody).
INPUT_TOKENS_PARAMETERS = frozenset((
    "conversation", "input", "instructions", "model", "parallel_tool_calls", "personality", "previous_response_id",
    "reasoning", "text", "tool_choice", "tools", "truncation", "client_metadata"))


class TextFormat(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: StrictBool | None = None


class TextConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    format: TextFormat = Field(default_factory=TextFormat)
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_obfuscation: StrictBool | None = None


INCLUDABLE = Literal[
    "message.output_text.logprobs", "reasoning.encrypted_content", "message.input_image.image_url",
    "file_search_call.results", "web_search_call.results", "web_search_call.action.sources",
    "computer_call_output.output.image_url", "code_interpreter_call.outputs"]


class CreateResponseRequest(BaseModel):
    """The body of `POST /v1/responses` (also the payload of a WebSocket `response.create` frame)."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    store: StrictBool | None = True
    background: StrictBool | None = False
    metadata: dict[str, str] | None = None
    temperature: StrictFloat | None = Field(default=None, ge=0, le=2)
    top_p: StrictFloat | None = Field(default=None, ge=0, le=1)
    presence_penalty: StrictFloat | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: StrictFloat | None = Field(default=None, ge=-2, le=2)
    max_output_tokens: StrictInt | None = Field(default=None, ge=16)
    max_tool_calls: StrictInt | None = Field(default=None, ge=0)
    top_logprobs: StrictInt | None = Field(default=None, ge=0, le=20)
    text: TextConfig | None = None
    tool_choice: str | dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    parallel_tool_calls: StrictBool | None = None
    truncation: Literal["auto", "disabled"] | None = None
    reasoning: ReasoningConfig | None = None
    include: list[INCLUDABLE] | None = None
    prompt: Any = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority", "fast", "ultrafast"] | None = None
    stream: StrictBool | None = False
    stream_options: StreamOptions | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return value
        if len(value) > 16:
            raise ValueError("metadata may have at most 16 keys")
        for key, item in value.items():
            if len(key) > 64:
                raise ValueError(f"metadata key '{key[:20]}...' is longer than 64 characters")
            if len(item) > 512:
                raise ValueError(f"metadata value for '{key}' is longer than 512 characters")
        return value


def parse_create_request(body: Any, *, strict: bool = True,
                         parameters: frozenset[str] = CREATE_PARAMETERS) -> CreateResponseRequest:
    """Validate a raw JSON body, mapping pydantic errors to a 400 that names the parameter.

    `strict`: a top-level parameter not in `parameters` is a 400 `unknown_parameter` (else it is ignored).
    """
    from pydantic import ValidationError

    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    unknown = [key for key in body if key not in parameters]
    if unknown:
        if strict:
            raise InvalidRequest(f"Unknown parameter: '{shorten(unknown[0])}'.", param=shorten(unknown[0]),
                                 code="unknown_parameter")
        body = {k: v for k, v in body.items() if k in parameters}
    try:
        return CreateResponseRequest.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors()
        error = invalid_request_from(errors)
        expected = _EXPECTED_TYPES.get(errors[0].get("type", ""))
        if expected is not None and error.param:
            got = _json_type(errors[0].get("input"))
            error.message = f"Invalid type for '{error.param}': expected {expected}, but got {got} instead."
            error.code = "invalid_type"
        raise error from None


_EXPECTED_TYPES = {"bool_type": "a boolean", "int_type": "an integer", "float_type": "a number",
                   "string_type": "a string", "dict_type": "an object", "list_type": "an array",
                   "model_type": "an object"}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    return "an object"
