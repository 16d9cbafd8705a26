"""The `POST /v1/responses` request, validated at the edge.

Only what Respond acts on is typed strictly; fields the SDK may send that Respond does not use are
accepted and ignored (extra="allow"), as clients of newer SDKs send them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from respond.errors import InvalidRequest, invalid_request_from


class TextFormat(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None


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

    include_obfuscation: bool | None = None


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
    store: bool | None = True
    background: bool | None = False
    metadata: dict[str, str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    max_output_tokens: int | None = Field(default=None, ge=16)
    max_tool_calls: int | None = Field(default=None, ge=0)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    text: TextConfig | None = None
    tool_choice: str | dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    parallel_tool_calls: bool | None = None
    truncation: Literal["auto", "disabled"] | None = None
    reasoning: ReasoningConfig | None = None
    include: list[INCLUDABLE] | None = None
    prompt: Any = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    service_tier: str | None = None
    stream: bool | None = False
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


def parse_create_request(body: Any) -> CreateResponseRequest:
    """Validate a raw JSON body, mapping pydantic errors to a 400 that names the parameter."""
    from pydantic import ValidationError

    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        return CreateResponseRequest.model_validate(body)
    except ValidationError as exc:
        raise invalid_request_from(exc.errors()) from None
