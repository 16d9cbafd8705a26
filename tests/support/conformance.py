"""Conformance validators: is this object or stream exactly what an OpenAI client expects?

Every test that looks at a Responses object, an item, a stream, a chat completion, an embeddings answer,
a model listing or an error body runs it through one of these functions. Each check is done three ways:

1. strict rules the OpenAI behaviour demands but the lenient SDK types let through (keys that must be
   present and non-null, output_text with `annotations` and `logprobs` arrays, ...);
2. the Open Responses JSON schema (shared/specs/openresponses-openapi.json), for the objects and event
   types it defines (see `open_responses_event_schemas()` and `OPENAI_TO_OPEN_RESPONSES_EVENT_TYPE`);
3. the `openai` package's pydantic types, validated for real in strict mode (no "5" -> 5 coercion).

All failures are `AssertionError`s naming the object (or stream event index), the path and what was
expected. The rules and their sources are listed in docs/conformance.md.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import os
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Union

import jsonschema
import referencing
import referencing.jsonschema
from openai.types import CreateEmbeddingResponse, Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseItem, ResponseOutputItem, ResponseStreamEvent
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

__all__ = [
    "NEVER_NULL_RESPONSE_KEYS",
    "OPENAI_TO_OPEN_RESPONSES_EVENT_TYPE",
    "TERMINAL_EVENT_TYPES",
    "open_responses_event_schemas",
    "open_responses_spec_path",
    "validate_chat_chunk",
    "validate_chat_completion",
    "validate_embeddings",
    "validate_error_envelope",
    "validate_event",
    "validate_item",
    "validate_item_list",
    "validate_model",
    "validate_model_list",
    "validate_response",
    "validate_stream",
]

# --------------------------------------------------------------------------------------------------
# constants
# --------------------------------------------------------------------------------------------------

# Keys a response object must carry with a non-null value (the issue's list, plus the Open Responses
# `ResponseResource` schema, which types them as number/integer/boolean/string/array without null).
NEVER_NULL_RESPONSE_KEYS = (
    "temperature", "top_p", "presence_penalty", "frequency_penalty", "top_logprobs", "tool_choice",
    "truncation", "background", "service_tier", "tools", "parallel_tool_calls", "store", "text",
    "output", "status", "model", "created_at", "id", "object",
)

# Items of server-side tools: one that failed or was not run (max_tool_calls) ends `failed` / `incomplete`
# while the response completes (the model is told and answers).
SERVER_TOOL_CALL_TYPES = frozenset({"mcp_call", "file_search_call", "web_search_call"})
SERVER_TOOL_END_STATUSES = frozenset({"failed", "incomplete"})

TERMINAL_EVENT_TYPES = {
    "response.completed": "completed",
    "response.incomplete": "incomplete",
    "response.failed": "failed",
}
_RESPONSE_EVENT_TYPES = {"response.created", "response.queued", "response.in_progress", *TERMINAL_EVENT_TYPES}

# OpenAI event names that Open Responses spells differently. Same fields, different `type` string.
OPENAI_TO_OPEN_RESPONSES_EVENT_TYPE = {
    "response.reasoning_text.delta": "response.reasoning.delta",
    "response.reasoning_text.done": "response.reasoning.done",
}

# Item / tool / annotation / tool_choice types the Open Responses schema defines. Objects of other
# types (file_search_call, web_search_call, file_citation, ...) are OpenAI extensions the Open Responses
# document does not describe: the schema is patched to accept them as opaque objects with a `type`, and
# the openai types validate them.
_OR_ITEM_TYPES = ["message", "function_call", "function_call_output", "reasoning"]
_OR_TOOL_TYPES = ["function"]
_OR_ANNOTATION_TYPES = ["url_citation"]
_OR_TOOL_CHOICE_TYPES = ["function", "allowed_tools"]

_SPEC_NAME = "openresponses-openapi.json"
_SPEC_URI = "urn:respond:open-responses"


# --------------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------------

def _fail(where: str, message: str) -> typing.NoReturn:
    raise AssertionError(f"{where}: {message}")


def _short(value: Any, limit: int = 120) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _require_dict(obj: Any, where: str) -> dict:
    if not isinstance(obj, dict):
        _fail(where, f"expected a JSON object, got {type(obj).__name__} {_short(obj)}")
    return obj


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require_keys(obj: Mapping, keys: Iterable[str], where: str, *, non_null: bool = False) -> None:
    for key in keys:
        if key not in obj:
            _fail(where, f"missing required key '{key}'")
        if non_null and obj[key] is None:
            _fail(where, f"'{key}' must not be null")


def _nonempty_str(obj: Mapping, key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        _fail(where, f"'{key}' must be a non-empty string, got {_short(value)}")
    return value


# --------------------------------------------------------------------------------------------------
# Open Responses JSON schema
# --------------------------------------------------------------------------------------------------

def open_responses_spec_path() -> Path:
    """Where the Open Responses OpenAPI document lives: $RESPOND_SPECS_DIR, else shared/ beside the repo."""
    candidates = []
    if os.environ.get("RESPOND_SPECS_DIR"):
        candidates.append(Path(os.environ["RESPOND_SPECS_DIR"]) / _SPEC_NAME)
    repo = Path(__file__).resolve().parents[2]
    candidates += [repo.parent / "shared" / "specs" / _SPEC_NAME, Path("/work/shared/specs") / _SPEC_NAME]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"Open Responses spec not found; looked in {[str(p) for p in candidates]}")


def _extension_branch(known: list[str]) -> dict:
    return {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"type": "string", "not": {"enum": known}}},
    }


def _patched_spec(doc: dict) -> dict:
    """The Open Responses document with the documented patches (docs/conformance.md, "Schema patches")."""
    doc = copy.deepcopy(doc)
    schemas = doc["components"]["schemas"]
    schemas["ItemField"]["oneOf"].append(_extension_branch(_OR_ITEM_TYPES))
    schemas["Tool"]["oneOf"].append(_extension_branch(_OR_TOOL_TYPES))
    schemas["Annotation"]["oneOf"].append(_extension_branch(_OR_ANNOTATION_TYPES))
    schemas["ResponseResource"]["properties"]["tool_choice"]["oneOf"].append(
        _extension_branch(_OR_TOOL_CHOICE_TYPES))
    # Defect in the published file: `schema` is `anyOf: [{type: null}]`, so no echoed json_schema format
    # with an actual schema could ever validate. OpenAI echoes the JSON schema object there.
    schemas["JsonSchemaResponseFormat"]["properties"]["schema"] = {
        "anyOf": [{"type": "object"}, {"type": "null"}]}
    return doc


@functools.cache
def _open_responses() -> tuple[dict, referencing.Registry]:
    doc = _patched_spec(json.loads(open_responses_spec_path().read_text()))
    resource = referencing.Resource.from_contents(
        doc, default_specification=referencing.jsonschema.DRAFT202012)
    return doc["components"]["schemas"], referencing.Registry().with_resource(_SPEC_URI, resource)


@functools.cache
def _or_validator(schema_name: str) -> jsonschema.Draft202012Validator:
    schemas, registry = _open_responses()
    if schema_name not in schemas:
        raise KeyError(f"Open Responses schema has no component '{schema_name}'")
    return jsonschema.Draft202012Validator(
        {"$ref": f"{_SPEC_URI}#/components/schemas/{schema_name}"}, registry=registry)


@functools.cache
def _or_event_schemas() -> dict[str, str]:
    schemas, _ = _open_responses()
    table = {}
    for name, schema in schemas.items():
        if name.endswith("StreamingEvent"):
            for event_type in schema["properties"]["type"]["enum"]:
                table[event_type] = name
    return table


def _relevance(error: jsonschema.ValidationError) -> tuple:
    # Deeper errors are more specific; an error about a discriminating `type` value only says "other branch".
    return (-len(error.path), _rejects_by_type(error), error.validator in ("oneOf", "anyOf"))


def _rejects_by_type(error: jsonschema.ValidationError) -> bool:
    if error.validator == "type" and not error.relative_path:
        return True
    return error.validator in ("enum", "const", "not") and list(error.relative_path) == ["type"]


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """Descend into oneOf/anyOf failures, following the branch whose `type` matched the instance."""
    while error.context:
        branches: dict[Any, list[jsonschema.ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        candidates = [errs for errs in branches.values() if not any(_rejects_by_type(e) for e in errs)]
        pool = candidates[0] if len(candidates) == 1 else list(error.context)
        error = min(pool, key=_relevance)
    return error


def _check_open_responses(obj: Any, schema_name: str, where: str) -> None:
    validator = _or_validator(schema_name)
    errors = list(validator.iter_errors(obj))
    if not errors:
        return
    error = _deepest(min(errors, key=_relevance))
    path = error.json_path
    rule = "/".join(str(p) for p in error.absolute_schema_path)
    _fail(where, f"Open Responses schema {schema_name}: at {path}: {error.message[:300]}"
                 f" (schema rule: ...{rule[-100:]})")


# --------------------------------------------------------------------------------------------------
# openai types (pydantic, strict)
# --------------------------------------------------------------------------------------------------

def _union_members(alias: Any) -> tuple[type[BaseModel], ...]:
    while typing.get_origin(alias) is Annotated:
        alias = typing.get_args(alias)[0]
    return tuple(m for m in typing.get_args(alias) if isinstance(m, type) and issubclass(m, BaseModel))


def _tag_of(model: type[BaseModel]) -> tuple[str, ...]:
    field = model.model_fields.get("type")
    return typing.get_args(field.annotation) if field is not None else ()


def _format_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def _is_branch_tag(part: Any) -> bool:
    return isinstance(part, str) and (part[:1].isupper() or part.startswith(("tagged-union", "function-")))


def _pydantic_message(exc: ValidationError, limit: int = 3) -> str:
    errors = exc.errors(include_url=False)
    # In smart-mode unions, a branch whose `type` literal did not match is noise: drop it.
    wrong_branches = {er["loc"][:-1] for er in errors
                      if er["type"] == "literal_error" and er["loc"][-1:] == ("type",)
                      and len(er["loc"]) >= 2 and _is_branch_tag(er["loc"][-2])}
    kept = [er for er in errors if not any(er["loc"][: len(b)] == b for b in wrong_branches)] or errors
    parts = [f"at {_format_loc(er['loc'])}: {er['msg']} (got {_short(er.get('input'), 80)})"
             for er in kept[:limit]]
    more = f" (+{len(kept) - limit} more)" if len(kept) > limit else ""
    return "; ".join(parts) + more


class _Dispatch:
    """Validates a dict against the member of an openai union whose `type` literal matches."""

    def __init__(self, alias: Any, label: str) -> None:
        self.label = label
        self.by_tag: dict[str, list[type[BaseModel]]] = {}
        for member in _union_members(alias):
            for tag in _tag_of(member):
                self.by_tag.setdefault(tag, []).append(member)

    def validate(self, obj: Any, where: str) -> BaseModel:
        tag = obj.get("type") if isinstance(obj, dict) else None
        members = self.by_tag.get(tag) if isinstance(tag, str) else None
        if not members:
            _fail(where, f"openai {self.label}: unknown type {_short(tag)}")
        best: tuple[int, str] | None = None
        for member in members:
            try:
                return member.model_validate(obj, strict=True)
            except ValidationError as exc:
                message = f"openai {member.__name__}: {_pydantic_message(exc)}"
                if best is None or exc.error_count() < best[0]:
                    best = (exc.error_count(), message)
        assert best is not None
        _fail(where, best[1])


def _sdk_validate(model: type[BaseModel], obj: Any, where: str) -> Any:
    try:
        return model.model_validate(obj, strict=True)
    except ValidationError as exc:
        _fail(where, f"openai {model.__name__}: {_pydantic_message(exc)}")


@functools.cache
def _event_adapter() -> tuple[TypeAdapter, frozenset[str]]:
    members = _union_members(ResponseStreamEvent)
    tags = frozenset(tag for m in members for tag in _tag_of(m))
    return TypeAdapter(Annotated[Union[members], Field(discriminator="type")]), tags  # noqa: UP007


@functools.cache
def _item_dispatch() -> _Dispatch:
    return _Dispatch(ResponseItem, "ResponseItem")


@functools.cache
def _output_item_dispatch() -> _Dispatch:
    return _Dispatch(ResponseOutputItem, "ResponseOutputItem")


# --------------------------------------------------------------------------------------------------
# strict rules (what the SDK types let through)
# --------------------------------------------------------------------------------------------------

def _check_content_part(part: Any, where: str) -> None:
    part = _require_dict(part, where)
    kind = part.get("type")
    if not isinstance(kind, str):
        _fail(where, f"content part needs a string 'type', got {_short(kind)}")
    if kind == "output_text":
        if not isinstance(part.get("text"), str):
            _fail(where, f"output_text 'text' must be a string, got {_short(part.get('text'))}")
        for key in ("annotations", "logprobs"):
            if not isinstance(part.get(key), list):
                _fail(where, f"output_text must carry a '{key}' array, got "
                             f"{'no key' if key not in part else _short(part[key])}")
    elif kind == "refusal":
        if not isinstance(part.get("refusal"), str):
            _fail(where, f"refusal part needs a string 'refusal', got {_short(part.get('refusal'))}")
    elif kind in ("reasoning_text", "summary_text", "input_text", "text"):
        if not isinstance(part.get("text"), str):
            _fail(where, f"{kind} part needs a string 'text', got {_short(part.get('text'))}")


_ITEM_STATUSES = ("in_progress", "completed", "incomplete")


def _check_item_strict(item: Any, where: str) -> None:
    item = _require_dict(item, where)
    kind = item.get("type")
    if not isinstance(kind, str) or not kind:
        _fail(where, f"item needs a string 'type', got {_short(kind)}")
    _nonempty_str(item, "id", f"{where} ({kind})")
    if kind == "message":
        _require_keys(item, ("role", "status", "content"), f"{where} (message)")
        if item["status"] not in _ITEM_STATUSES:
            _fail(f"{where} (message)", f"status must be one of {_ITEM_STATUSES}, got {_short(item['status'])}")
        if not isinstance(item["content"], list):
            _fail(f"{where} (message)", f"'content' must be an array, got {_short(item['content'])}")
        for index, part in enumerate(item["content"]):
            _check_content_part(part, f"{where}.content[{index}]")
    elif kind == "function_call":
        _require_keys(item, ("call_id", "name", "arguments", "status"), f"{where} (function_call)")
        _nonempty_str(item, "call_id", f"{where} (function_call)")
        _nonempty_str(item, "name", f"{where} (function_call)")
        if not isinstance(item["arguments"], str):
            _fail(f"{where} (function_call)", f"'arguments' must be a string, got {_short(item['arguments'])}")
        if item["status"] not in _ITEM_STATUSES:
            _fail(f"{where} (function_call)",
                  f"status must be one of {_ITEM_STATUSES}, got {_short(item['status'])}")
    elif kind == "function_call_output":
        _require_keys(item, ("call_id", "output", "status"), f"{where} (function_call_output)")
    elif kind == "reasoning":
        _require_keys(item, ("summary",), f"{where} (reasoning)")
        for key in ("summary", "content"):
            for index, part in enumerate(item.get(key) or []):
                _check_content_part(part, f"{where}.{key}[{index}]")


def _check_tools_strict(tools: Any, where: str) -> None:
    if not isinstance(tools, list):
        _fail(where, f"'tools' must be an array, got {_short(tools)}")
    for index, tool in enumerate(tools):
        tool = _require_dict(tool, f"{where}.tools[{index}]")
        if tool.get("type") == "function":
            _require_keys(tool, ("name", "description", "parameters", "strict"),
                          f"{where}.tools[{index}] (function tool {tool.get('name')!r})")


def _check_response_strict(obj: Any, where: str) -> None:
    obj = _require_dict(obj, where)
    _require_keys(obj, NEVER_NULL_RESPONSE_KEYS, where, non_null=True)
    if obj["object"] != "response":
        _fail(where, f"'object' must be 'response', got {_short(obj['object'])}")
    _nonempty_str(obj, "id", where)
    if not isinstance(obj.get("metadata"), dict):
        _fail(where, f"'metadata' must be an object (OpenAI echoes {{}}), got "
                     f"{_short(obj['metadata']) if 'metadata' in obj else 'no key'}")
    _check_tools_strict(obj["tools"], where)
    if not isinstance(obj["output"], list):
        _fail(where, f"'output' must be an array, got {_short(obj['output'])}")
    for index, item in enumerate(obj["output"]):
        _check_item_strict(item, f"{where}.output[{index}]")
    status = obj["status"]
    if status == "completed":
        if obj.get("error") is not None or obj.get("incomplete_details") is not None:
            _fail(where, "a completed response must have error=null and incomplete_details=null")
        if not _is_int(obj.get("completed_at")):
            _fail(where, f"a completed response needs an integer 'completed_at', got {_short(obj.get('completed_at'))}")
    elif status == "failed":
        if not isinstance(obj.get("error"), dict):
            _fail(where, f"a failed response needs an 'error' object, got {_short(obj.get('error'))}")
    elif status == "incomplete":
        details = obj.get("incomplete_details")
        if not isinstance(details, dict) or not details.get("reason"):
            _fail(where, f"an incomplete response needs incomplete_details.reason, got {_short(details)}")
    elif status in ("in_progress", "queued"):
        if obj.get("completed_at") is not None:
            _fail(where, f"a {status} response must have completed_at=null, got {_short(obj.get('completed_at'))}")
    usage = obj.get("usage")
    if isinstance(usage, dict) and all(_is_int(usage.get(k)) for k in ("input_tokens", "output_tokens", "total_tokens")):
        if usage["total_tokens"] != usage["input_tokens"] + usage["output_tokens"]:
            _fail(where, f"usage.total_tokens {usage['total_tokens']} != input_tokens + output_tokens "
                         f"({usage['input_tokens']} + {usage['output_tokens']})")


def _check_error_event_strict(ev: dict, where: str) -> None:
    # The openai SDK types the error event flat (code/message/param at the top level, as the OpenAI
    # OpenAPI document does); Open Responses nests them under `error`. A conforming event carries both.
    _require_keys(ev, ("code", "message", "param", "error"), where)
    nested = _require_dict(ev["error"], f"{where}.error")
    for key in ("code", "message", "param"):
        if key in nested and nested[key] != ev[key]:
            _fail(where, f"error.{key} {_short(nested[key])} differs from top-level {key} {_short(ev[key])}")
    if not isinstance(ev["message"], str) or not ev["message"]:
        _fail(where, f"'message' must be a non-empty string, got {_short(ev['message'])}")


# --------------------------------------------------------------------------------------------------
# public validators: Responses objects
# --------------------------------------------------------------------------------------------------

def validate_response(obj: dict, *, where: str = "response") -> Response:
    """A full Response object (non-streaming answer, GET /responses/{id}, or a stream snapshot)."""
    _check_response_strict(obj, where)
    _check_open_responses(obj, "ResponseResource", where)
    dispatch = _output_item_dispatch()
    for index, item in enumerate(obj["output"]):
        dispatch.validate(item, f"{where}.output[{index}]")
    return _sdk_validate(Response, obj, where)


def validate_item(item: dict, *, where: str = "item") -> BaseModel:
    """An item as listed by GET /responses/{id}/input_items or found in response.output."""
    _check_item_strict(item, where)
    _check_open_responses(item, "ItemField", where)
    return _item_dispatch().validate(item, where)


def validate_item_list(obj: dict, *, where: str = "item list") -> list[BaseModel]:
    """GET /responses/{id}/input_items: {"object": "list", "data", "first_id", "last_id", "has_more"}."""
    obj = _require_dict(obj, where)
    _require_keys(obj, ("object", "data", "first_id", "last_id", "has_more"), where)
    if obj["object"] != "list" or not isinstance(obj["data"], list) or not isinstance(obj["has_more"], bool):
        _fail(where, f"expected object 'list', a data array and a boolean has_more, got {_short(obj)}")
    items = [validate_item(item, where=f"{where}.data[{index}]") for index, item in enumerate(obj["data"])]
    ids = [item["id"] for item in obj["data"]]
    if len(set(ids)) != len(ids):
        _fail(where, f"duplicate item ids {ids}")
    expected = (ids[0], ids[-1]) if ids else (None, None)
    if (obj["first_id"], obj["last_id"]) != expected:
        _fail(where, f"first_id/last_id {obj['first_id']!r}/{obj['last_id']!r}, expected {expected[0]!r}/"
                     f"{expected[1]!r} (the ids of the first and last data items)")
    return items


def _event_where(ev: Any) -> str:
    if isinstance(ev, dict):
        return f"event {ev.get('type')!r} (sequence_number={ev.get('sequence_number')!r})"
    return "event"


def validate_event(ev: dict, *, where: str | None = None) -> BaseModel:
    """One stream event: strict rules, the Open Responses schema for its type (if it has one), openai."""
    where = where or _event_where(ev)
    _require_dict(ev, where)
    kind = ev.get("type")
    adapter, openai_types = _event_adapter()
    if kind not in openai_types:
        _fail(where, f"unknown stream event type {_short(kind)} (not in openai ResponseStreamEvent)")
    if not _is_int(ev.get("sequence_number")) or ev["sequence_number"] < 0:
        _fail(where, f"'sequence_number' must be a non-negative integer, got {_short(ev.get('sequence_number'))}")
    if kind in _RESPONSE_EVENT_TYPES:
        _require_keys(ev, ("response",), where)
        _check_response_strict(ev["response"], f"{where}.response")
    elif kind in ("response.output_item.added", "response.output_item.done"):
        _require_keys(ev, ("item", "output_index"), where)
        _check_item_strict(ev["item"], f"{where}.item")
    elif kind in ("response.content_part.added", "response.content_part.done",
                  "response.reasoning_summary_part.added", "response.reasoning_summary_part.done"):
        _require_keys(ev, ("part",), where)
        _check_content_part(ev["part"], f"{where}.part")
    elif kind in ("response.output_text.delta", "response.output_text.done"):
        if not isinstance(ev.get("logprobs"), list):
            _fail(where, f"'logprobs' must be an array, got {_short(ev.get('logprobs'))}")
    elif kind == "response.function_call_arguments.done":
        # Required by the OpenAI OpenAPI document (ResponseFunctionCallArgumentsDoneEvent), absent from the SDK.
        _nonempty_str(ev, "name", where)
    elif kind == "error":
        _check_error_event_strict(ev, where)
    or_type = OPENAI_TO_OPEN_RESPONSES_EVENT_TYPE.get(kind, kind)
    schema_name = _or_event_schemas().get(or_type)
    if schema_name is not None:
        _check_open_responses(ev if or_type == kind else {**ev, "type": or_type}, schema_name, where)
    if kind in _RESPONSE_EVENT_TYPES:
        dispatch = _output_item_dispatch()
        for index, item in enumerate(ev["response"]["output"]):
            dispatch.validate(item, f"{where}.response.output[{index}]")
    elif kind in ("response.output_item.added", "response.output_item.done"):
        _output_item_dispatch().validate(ev["item"], f"{where}.item")
    try:
        return adapter.validate_python(ev, strict=True)
    except ValidationError as exc:
        _fail(where, f"openai ResponseStreamEvent: {_pydantic_message(exc)}")


def open_responses_event_schemas() -> dict[str, str]:
    """{Open Responses event type: component schema name}, read from the spec."""
    return dict(_or_event_schemas())


# --------------------------------------------------------------------------------------------------
# streams
# --------------------------------------------------------------------------------------------------

# delta/done event families: event type prefix -> (part type they write to, text field of the .done event)
_TEXT_FAMILIES = {
    "response.output_text": ("output_text", "text"),
    "response.refusal": ("refusal", "refusal"),
    "response.reasoning_text": ("reasoning_text", "text"),
    "response.reasoning_summary_text": ("summary_text", "text"),
}
_EMPTY_PARTS = {
    "output_text": {"type": "output_text", "text": "", "annotations": [], "logprobs": []},
    "refusal": {"type": "refusal", "refusal": ""},
    "reasoning_text": {"type": "reasoning_text", "text": ""},
    "summary_text": {"type": "summary_text", "text": ""},
}


class _Part:
    __slots__ = ("kind", "text", "text_done", "annotations", "done_part")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.text: list[str] = []
        self.text_done = False
        self.annotations: list[Any] = []
        self.done_part: dict | None = None


class _Item:
    __slots__ = ("index", "id", "kind", "added", "done", "parts", "summary", "args", "args_done")

    def __init__(self, index: int, item: dict) -> None:
        self.index = index
        self.id = item["id"]
        self.kind = item["type"]
        self.added = item
        self.done: dict | None = None
        self.parts: list[_Part] = []      # content parts (message content, reasoning content)
        self.summary: list[_Part] = []    # reasoning summary parts
        self.args: list[str] = []
        self.args_done: str | None = None


def _check_added_item(item: dict, where: str) -> None:
    """Items in output_item.added are already complete and valid, in their empty in-progress state."""
    kind = item["type"]
    if kind == "message":
        if item.get("status") != "in_progress" or item.get("content") != []:
            _fail(where, f"a message in output_item.added must have status 'in_progress' and content [], "
                         f"got status={_short(item.get('status'))} content={_short(item.get('content'))}")
        if item.get("role") != "assistant":
            _fail(where, f"an output message must have role 'assistant', got {_short(item.get('role'))}")
    elif kind == "function_call":
        if item.get("status") != "in_progress" or item.get("arguments") != "":
            _fail(where, f"a function_call in output_item.added must have status 'in_progress' and arguments "
                         f"'' (the deltas carry them), got status={_short(item.get('status'))} "
                         f"arguments={_short(item.get('arguments'))}")
    elif kind == "reasoning":
        if item.get("summary") != [] or item.get("content", []) != []:
            _fail(where, f"a reasoning item in output_item.added must have summary [] and content [] (or no "
                         f"content), got {_short(item)}")
        if item.get("status", "in_progress") != "in_progress":
            _fail(where, f"reasoning status in output_item.added must be 'in_progress', got {_short(item['status'])}")
    elif "status" in item and item["status"] != "in_progress":
        _fail(where, f"{kind} in output_item.added must have status 'in_progress', got {_short(item['status'])}")


class _StreamChecker:
    def __init__(self) -> None:
        self.items: list[_Item] = []
        self.by_id: dict[str, _Item] = {}
        self.first: dict | None = None
        self.in_progress_seen = False
        self.terminal: dict | None = None

    # -- lookups ------------------------------------------------------------------------------------
    def item_for(self, ev: dict, where: str, *, open_: bool = True) -> _Item:
        item_id, index = ev.get("item_id"), ev.get("output_index")
        state = self.by_id.get(item_id)
        if state is None:
            _fail(where, f"item_id {item_id!r} was never announced by response.output_item.added")
        if index != state.index:
            _fail(where, f"output_index {index} does not match item {item_id!r} (added at output_index "
                         f"{state.index})")
        if open_ and state.done is not None:
            _fail(where, f"item {item_id!r} already finished with response.output_item.done")
        return state

    def part_for(self, ev: dict, where: str, *, summary: bool = False) -> tuple[_Item, _Part]:
        state = self.item_for(ev, where)
        key = "summary_index" if summary else "content_index"
        index = ev.get(key)
        parts = state.summary if summary else state.parts
        if not _is_int(index) or not 0 <= index < len(parts):
            _fail(where, f"{key} {index!r} of item {state.id!r} was never opened "
                         f"(with response.{'reasoning_summary_part' if summary else 'content_part'}.added)")
        part = parts[index]
        if part.done_part is not None:
            _fail(where, f"{key} {index} of item {state.id!r} is already done")
        return state, part

    # -- the event handlers -------------------------------------------------------------------------
    def response_event(self, ev: dict, kind: str, where: str, position: int) -> None:
        response = ev["response"]
        if kind == "response.created":
            if position != 0:
                _fail(where, "response.created must be the first event and appear once")
            if response["status"] not in ("in_progress", "queued"):
                _fail(where, f"response.created status must be 'in_progress' or 'queued', got "
                             f"{_short(response['status'])}")
            self.first = response
        else:
            assert self.first is not None
            for key in ("id", "created_at", "model"):
                if response.get(key) != self.first.get(key):
                    _fail(where, f"response.{key} {_short(response.get(key))} differs from response.created's "
                                 f"{_short(self.first.get(key))}")
        if kind in ("response.created", "response.queued", "response.in_progress"):
            if self.items:
                _fail(where, f"{kind} after output items were added")
            if response["output"] != []:
                _fail(where, f"{kind} response.output must be [], got {_short(response['output'])}")
        if kind == "response.queued" and response["status"] != "queued":
            _fail(where, f"response.queued status must be 'queued', got {_short(response['status'])}")
        if kind == "response.in_progress":
            if self.in_progress_seen:
                _fail(where, "response.in_progress appears twice")
            if response["status"] != "in_progress":
                _fail(where, f"response.in_progress status must be 'in_progress', got {_short(response['status'])}")
            self.in_progress_seen = True
        if kind in TERMINAL_EVENT_TYPES:
            self.finish(ev, kind, where)

    def finish(self, ev: dict, kind: str, where: str) -> None:
        response = ev["response"]
        expected = TERMINAL_EVENT_TYPES[kind]
        if response["status"] != expected:
            _fail(where, f"{kind} must carry status {expected!r}, got {_short(response['status'])}")
        for state in self.items:
            if state.done is None:
                _fail(where, f"item {state.id!r} (output_index {state.index}) was added but never got "
                             f"response.output_item.done")
        done_items = [state.done for state in self.items]
        if response["output"] != done_items:
            for index in range(max(len(done_items), len(response["output"]))):
                got = response["output"][index] if index < len(response["output"]) else None
                want = done_items[index] if index < len(done_items) else None
                if got != want:
                    _fail(where, f"response.output[{index}] differs from the output_item.done item "
                                 f"({len(response['output'])} output items, {len(done_items)} streamed): "
                                 f"got {_short(got, 300)}, streamed {_short(want, 300)}")
        if expected == "completed":
            for state in self.items:
                status = state.done.get("status", "completed")
                if status in SERVER_TOOL_END_STATUSES and state.done.get("type") in SERVER_TOOL_CALL_TYPES:
                    continue  # a server tool that failed (or was skipped) does not fail the response
                if status != "completed":
                    _fail(where, f"response.completed but item {state.id!r} has status "
                                 f"{_short(state.done.get('status'))}")
        self.terminal = response

    def item_added(self, ev: dict, where: str) -> None:
        item = ev["item"]
        if ev["output_index"] != len(self.items):
            _fail(where, f"output_index must be {len(self.items)} (contiguous, in order of addition), got "
                         f"{ev['output_index']}")
        if item["id"] in self.by_id:
            _fail(where, f"item id {item['id']!r} was already used")
        _check_added_item(item, f"{where}.item")
        state = _Item(ev["output_index"], item)
        self.items.append(state)
        self.by_id[state.id] = state

    def item_done(self, ev: dict, where: str) -> None:
        item, index = ev["item"], ev["output_index"]
        if not _is_int(index) or not 0 <= index < len(self.items):
            _fail(where, f"output_index {index!r} was never added")
        state = self.items[index]
        if state.done is not None:
            _fail(where, f"output_index {index} already got output_item.done")
        if item["id"] != state.id or item["type"] != state.kind:
            _fail(where, f"item id/type {item['id']!r}/{item['type']!r} differ from output_item.added's "
                         f"{state.id!r}/{state.kind!r}")
        if item.get("status") == "in_progress":
            _fail(where, "an item in output_item.done must not have status 'in_progress'")
        for key in ("role", "call_id", "name"):
            if key in state.added and item.get(key) != state.added[key]:
                _fail(where, f"item.{key} {_short(item.get(key))} differs from output_item.added's "
                             f"{_short(state.added[key])}")
        self.check_parts_done(state, item.get("content") or [], state.parts, "content", where)
        if state.kind == "reasoning":
            self.check_parts_done(state, item.get("summary") or [], state.summary, "summary", where)
        if state.kind == "function_call":
            streamed = "".join(state.args)
            if state.args_done is None:
                _fail(where, f"function_call {state.id!r} finished without response.function_call_arguments.done")
            if item["arguments"] != streamed:
                _fail(where, f"item.arguments {_short(item['arguments'])} != concatenated "
                             f"function_call_arguments deltas {_short(streamed)}")
        state.done = item

    def check_parts_done(self, state: _Item, final: list, parts: list[_Part], key: str, where: str) -> None:
        for number, part in enumerate(parts):
            if part.done_part is None:
                _fail(where, f"{key} part {number} of item {state.id!r} was never closed (content part done "
                             f"missing) before output_item.done")
        if state.kind == "message" or parts or final:
            if len(final) != len(parts):
                _fail(where, f"item.{key} has {len(final)} parts but {len(parts)} were streamed")
            for number, part in enumerate(parts):
                done_part = part.done_part
                if done_part.get("type") == "output_text" and done_part.get("logprobs") == []:
                    # OpenAI's content_part.done carries `logprobs: []`; the logprobs ride on the text
                    # deltas, output_text.done and the finished item
                    done_part = {**done_part, "logprobs": final[number].get("logprobs")}
                if final[number] != done_part:
                    _fail(where, f"item.{key}[{number}] {_short(final[number])} differs from the part in its "
                                 f"done event {_short(part.done_part)}")

    def part_added(self, ev: dict, where: str, *, summary: bool) -> None:
        state = self.item_for(ev, where)
        parts = state.summary if summary else state.parts
        key = "summary_index" if summary else "content_index"
        if ev[key] != len(parts):
            _fail(where, f"{key} must be {len(parts)} (contiguous per item), got {ev[key]}")
        part = ev["part"]
        allowed = ("summary_text",) if summary else (
            ("output_text", "refusal") if state.kind == "message" else ("reasoning_text",))
        if part["type"] not in allowed:
            _fail(where, f"a {state.kind} item cannot get a {part['type']!r} part here (expected {allowed})")
        empty = _EMPTY_PARTS[part["type"]]
        if part != empty:
            _fail(where, f"the part in the .added event must be the empty {part['type']} part {_short(empty)}, "
                         f"got {_short(part)}")
        parts.append(_Part(part["type"]))

    def part_done(self, ev: dict, where: str, *, summary: bool) -> None:
        _, part = self.part_for(ev, where, summary=summary)
        final = ev["part"]
        if final["type"] != part.kind:
            _fail(where, f"part type {final['type']!r} differs from the added part's {part.kind!r}")
        if not part.text_done:
            _fail(where, f"{part.kind} part closed before its text .done event")
        field = "refusal" if part.kind == "refusal" else "text"
        streamed = "".join(part.text)
        if final.get(field) != streamed:
            _fail(where, f"part.{field} {_short(final.get(field))} != concatenated deltas {_short(streamed)}")
        if part.kind == "output_text" and final.get("annotations") != part.annotations:
            _fail(where, f"part.annotations {_short(final.get('annotations'))} != the annotations streamed by "
                         f"response.output_text.annotation.added {_short(part.annotations)}")
        part.done_part = final

    def text_event(self, ev: dict, family: str, suffix: str, where: str) -> None:
        part_type, done_field = _TEXT_FAMILIES[family]
        summary = part_type == "summary_text"
        _, part = self.part_for(ev, where, summary=summary)
        if part.kind != part_type:
            _fail(where, f"{family}.{suffix} targets a {part.kind!r} part, expected a {part_type!r} part")
        if part.text_done:
            _fail(where, f"{family}.{suffix} after {family}.done for this part")
        if suffix == "delta":
            part.text.append(ev["delta"])
            return
        streamed = "".join(part.text)
        if ev[done_field] != streamed:
            _fail(where, f"{done_field} {_short(ev[done_field])} != concatenated deltas {_short(streamed)}")
        part.text_done = True

    def annotation_added(self, ev: dict, where: str) -> None:
        _, part = self.part_for(ev, where)
        if part.kind != "output_text":
            _fail(where, f"annotation added to a {part.kind!r} part")
        if ev["annotation_index"] != len(part.annotations):
            _fail(where, f"annotation_index must be {len(part.annotations)}, got {ev['annotation_index']}")
        part.annotations.append(ev["annotation"])

    def arguments_event(self, ev: dict, suffix: str, where: str) -> None:
        state = self.item_for(ev, where)
        if state.kind != "function_call":
            _fail(where, f"function_call_arguments event for a {state.kind!r} item")
        if state.args_done is not None:
            _fail(where, f"function_call_arguments.{suffix} after function_call_arguments.done")
        if suffix == "delta":
            state.args.append(ev["delta"])
            return
        streamed = "".join(state.args)
        if ev["arguments"] != streamed:
            _fail(where, f"arguments {_short(ev['arguments'])} != concatenated deltas {_short(streamed)}")
        if ev.get("name") != state.added.get("name"):
            _fail(where, f"name {_short(ev.get('name'))} differs from the item's {_short(state.added.get('name'))}")
        state.args_done = ev["arguments"]

    # -- dispatch -----------------------------------------------------------------------------------
    def event(self, ev: dict, position: int, where: str) -> None:
        kind = ev["type"]
        if self.terminal is not None:
            _fail(where, "event after the terminal event (nothing may follow response.completed/"
                         "incomplete/failed)")
        if position == 0 and kind != "response.created":
            _fail(where, f"the first event must be response.created, got {kind!r}")
        if kind in _RESPONSE_EVENT_TYPES:
            if kind not in ("response.created", "response.queued", "response.in_progress") \
                    and not self.in_progress_seen:
                _fail(where, f"{kind} before response.in_progress")
            self.response_event(ev, kind, where, position)
            return
        if not self.in_progress_seen and kind != "error":
            _fail(where, f"{kind} before response.in_progress (expected response.created, then "
                         f"response.in_progress)")
        if kind == "response.output_item.added":
            self.item_added(ev, where)
        elif kind == "response.output_item.done":
            self.item_done(ev, where)
        elif kind in ("response.content_part.added", "response.reasoning_summary_part.added"):
            self.part_added(ev, where, summary="summary" in kind)
        elif kind in ("response.content_part.done", "response.reasoning_summary_part.done"):
            self.part_done(ev, where, summary="summary" in kind)
        elif kind == "response.output_text.annotation.added":
            self.annotation_added(ev, where)
        elif kind.startswith("response.function_call_arguments."):
            self.arguments_event(ev, kind.rsplit(".", 1)[1], where)
        elif kind.rsplit(".", 1)[0] in _TEXT_FAMILIES:
            family, suffix = kind.rsplit(".", 1)
            self.text_event(ev, family, suffix, where)
        elif "item_id" in ev and "output_index" in ev:
            self.item_for(ev, where)  # tool progress events (file_search_call.searching, ...)


def validate_stream(events: list[dict]) -> dict:
    """A complete Responses stream (the parsed `data:` objects, in order). Returns the final response.

    Checks every event with `validate_event` (so every response snapshot with the `validate_response`
    rules), then the stream as a whole; see docs/conformance.md for the list.
    """
    if not isinstance(events, list) or not events:
        _fail("stream", f"expected a non-empty list of events, got {_short(events)}")
    checker = _StreamChecker()
    for position, ev in enumerate(events):
        where = f"stream event[{position}] {_event_where(ev)}"
        validate_event(ev, where=where)
        if ev["sequence_number"] != position:
            _fail(where, f"sequence_number must be {position} (consecutive from 0), got {ev['sequence_number']}")
        checker.event(ev, position, where)
    if checker.terminal is None:
        last = events[-1].get("type")
        _fail("stream", f"ended without a terminal event (response.completed/incomplete/failed); last event "
                        f"was {last!r} at index {len(events) - 1}")
    if not checker.in_progress_seen:
        _fail("stream", "no response.in_progress event")
    return checker.terminal


# --------------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------------

_UNCHECKED: Any = object()
_INVALID_REQUEST_STATUSES = (400, 404, 409, 413, 415, 422)


def validate_error_envelope(body: Any, status: int, *, param: Any = _UNCHECKED, code: Any = _UNCHECKED,
                            error_type: str | None = None) -> dict:
    """`{"error": {"message", "type", "param", "code"}}`. `param`/`code`, when given (even None), must match.

    Returns the inner error object.
    """
    where = f"error envelope (HTTP {status})"
    if not _is_int(status) or not 400 <= status <= 599:
        _fail(where, f"an error must have a 4xx/5xx HTTP status, got {status!r}")
    body = _require_dict(body, where)
    if set(body) != {"error"}:
        _fail(where, f"body must be exactly {{'error': {{...}}}}, got keys {sorted(body)}")
    error = _require_dict(body["error"], f"{where}.error")
    _require_keys(error, ("message", "type", "param", "code"), f"{where}.error")
    _nonempty_str(error, "message", f"{where}.error")
    _nonempty_str(error, "type", f"{where}.error")
    for key in ("param", "code"):
        if error[key] is not None and not isinstance(error[key], str):
            _fail(f"{where}.error", f"'{key}' must be a string or null, got {_short(error[key])}")
    if status in _INVALID_REQUEST_STATUSES and error["type"] != "invalid_request_error":
        _fail(f"{where}.error", f"HTTP {status} must have type 'invalid_request_error', got {error['type']!r}")
    if status >= 500 and error["type"] != "server_error":
        _fail(f"{where}.error", f"HTTP {status} must have type 'server_error', got {error['type']!r}")
    if error_type is not None and error["type"] != error_type:
        _fail(f"{where}.error", f"type {error['type']!r}, expected {error_type!r}")
    if param is not _UNCHECKED and error["param"] != param:
        _fail(f"{where}.error", f"param {error['param']!r}, expected {param!r} (message: {error['message']!r})")
    if code is not _UNCHECKED and error["code"] != code:
        _fail(f"{where}.error", f"code {error['code']!r}, expected {code!r} (message: {error['message']!r})")
    return error


# --------------------------------------------------------------------------------------------------
# chat completions, embeddings, models
# --------------------------------------------------------------------------------------------------

def _check_usage_totals(usage: Any, where: str) -> None:
    if usage is None:
        return
    usage = _require_dict(usage, f"{where}.usage")
    _require_keys(usage, ("prompt_tokens", "completion_tokens", "total_tokens"), f"{where}.usage")
    if all(_is_int(usage[k]) for k in ("prompt_tokens", "completion_tokens", "total_tokens")) and \
            usage["total_tokens"] != usage["prompt_tokens"] + usage["completion_tokens"]:
        _fail(f"{where}.usage", f"total_tokens {usage['total_tokens']} != prompt_tokens + completion_tokens")


def validate_chat_completion(obj: dict) -> ChatCompletion:
    """A non-streaming chat completion (required keys from the OpenAI OpenAPI document + openai type)."""
    where = "chat completion"
    obj = _require_dict(obj, where)
    _require_keys(obj, ("id", "object", "created", "model", "choices"), where, non_null=True)
    if obj["object"] != "chat.completion":
        _fail(where, f"'object' must be 'chat.completion', got {_short(obj['object'])}")
    if not isinstance(obj["choices"], list) or not obj["choices"]:
        _fail(where, f"'choices' must be a non-empty array, got {_short(obj['choices'])}")
    for index, choice in enumerate(obj["choices"]):
        cwhere = f"{where}.choices[{index}]"
        choice = _require_dict(choice, cwhere)
        _require_keys(choice, ("index", "message", "finish_reason", "logprobs"), cwhere)
        if choice["index"] != index:
            _fail(cwhere, f"'index' must be {index}, got {_short(choice['index'])}")
        message = _require_dict(choice["message"], f"{cwhere}.message")
        _require_keys(message, ("role", "content", "refusal"), f"{cwhere}.message")
        if choice["finish_reason"] == "tool_calls" and not message.get("tool_calls"):
            _fail(cwhere, "finish_reason 'tool_calls' without message.tool_calls")
    _check_usage_totals(obj.get("usage"), where)
    return _sdk_validate(ChatCompletion, obj, where)


def validate_chat_chunk(obj: dict) -> ChatCompletionChunk:
    """One chat.completion.chunk of a streamed chat completion."""
    where = "chat completion chunk"
    obj = _require_dict(obj, where)
    _require_keys(obj, ("id", "object", "created", "model", "choices"), where, non_null=True)
    if obj["object"] != "chat.completion.chunk":
        _fail(where, f"'object' must be 'chat.completion.chunk', got {_short(obj['object'])}")
    if not isinstance(obj["choices"], list):
        _fail(where, f"'choices' must be an array, got {_short(obj['choices'])}")
    for index, choice in enumerate(obj["choices"]):
        cwhere = f"{where}.choices[{index}]"
        _require_keys(_require_dict(choice, cwhere), ("index", "delta", "finish_reason"), cwhere)
    _check_usage_totals(obj.get("usage"), where)
    return _sdk_validate(ChatCompletionChunk, obj, where)


def validate_embeddings(obj: dict, *, encoding_format: str = "float", dimensions: int | None = None
                        ) -> CreateEmbeddingResponse | dict:
    """An embeddings answer. With encoding_format='base64' the vectors are base64 little-endian float32."""
    where = "embeddings"
    obj = _require_dict(obj, where)
    _require_keys(obj, ("object", "model", "data", "usage"), where, non_null=True)
    if not isinstance(obj["data"], list) or not obj["data"]:
        _fail(where, f"'data' must be a non-empty array, got {_short(obj['data'])}")
    usage = _require_dict(obj["usage"], f"{where}.usage")
    _require_keys(usage, ("prompt_tokens", "total_tokens"), f"{where}.usage")
    sizes = set()
    for index, entry in enumerate(obj["data"]):
        ewhere = f"{where}.data[{index}]"
        entry = _require_dict(entry, ewhere)
        _require_keys(entry, ("object", "index", "embedding"), ewhere)
        if entry["index"] != index or entry["object"] != "embedding":
            _fail(ewhere, f"expected object 'embedding' and index {index}, got {entry['object']!r}/{entry['index']!r}")
        vector = entry["embedding"]
        if encoding_format == "base64":
            if not isinstance(vector, str):
                _fail(ewhere, f"base64 embedding must be a string, got {_short(vector)}")
            try:
                raw = base64.b64decode(vector, validate=True)
            except ValueError as exc:
                _fail(ewhere, f"embedding is not valid base64: {exc}")
            if len(raw) % 4:
                _fail(ewhere, f"base64 embedding decodes to {len(raw)} bytes, not a float32 array")
            sizes.add(len(raw) // 4)
        else:
            if not isinstance(vector, list) or not vector or not all(
                    isinstance(x, float) or _is_int(x) for x in vector):
                _fail(ewhere, f"embedding must be a non-empty array of numbers, got {_short(vector)}")
            sizes.add(len(vector))
    if len(sizes) > 1:
        _fail(where, f"embeddings have different sizes {sorted(sizes)}")
    if dimensions is not None and sizes != {dimensions}:
        _fail(where, f"embedding size {sorted(sizes)}, expected {dimensions}")
    if encoding_format == "base64":  # the openai type only knows float vectors: check the rest of it
        _sdk_validate(CreateEmbeddingResponse,
                      {**obj, "data": [{**entry, "embedding": [0.0]} for entry in obj["data"]]}, where)
        return obj
    return _sdk_validate(CreateEmbeddingResponse, obj, where)


def validate_model(obj: dict, *, where: str = "model") -> Model:
    obj = _require_dict(obj, where)
    _require_keys(obj, ("id", "object", "created", "owned_by"), where, non_null=True)
    return _sdk_validate(Model, obj, where)


def validate_model_list(obj: dict) -> list[Model]:
    where = "model list"
    obj = _require_dict(obj, where)
    _require_keys(obj, ("object", "data"), where, non_null=True)
    if obj["object"] != "list" or not isinstance(obj["data"], list):
        _fail(where, f"expected {{'object': 'list', 'data': [...]}}, got {_short(obj)}")
    models = [validate_model(entry, where=f"{where}.data[{index}]") for index, entry in enumerate(obj["data"])]
    ids = [m.id for m in models]
    if len(set(ids)) != len(ids):
        _fail(where, f"duplicate model ids in {ids}")
    return models
