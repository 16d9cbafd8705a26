"""The embedded chat model's requests: an OpenAI chat-completions body, validated and mapped to one
`ChatJob` for the chat worker process (messages flattened to text for the model's chat template, sampling,
output limit, stop strings, JSON constraints, a forced tool call).

Bad input is an `InvalidRequest` naming the field, never an exception from deep inside llama.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from respond.errors import InvalidRequest
from respond.jsonutil import dumps

DEFAULT_MAX_TOKENS = 1024
REPEAT_PENALTY = 1.1  # llama-cpp's chat default; keeps this tiny model out of loops
TEXT_PART_TYPES = ("text", "input_text", "output_text")


@dataclass(eq=False)
class ChatJob:
    """One chat request, validated and mapped for the worker process (`cancelled` is set there)."""

    model: str
    messages: list[dict[str, Any]]
    sampling: dict[str, Any]
    max_tokens: int | None
    stop: list[str]
    json_schema: dict[str, Any] | None = None  # constrain output to this schema ({} = any JSON object)
    json_mode: bool = False
    forced_tool: dict[str, Any] | None = None  # the function to call (its `function` dict)
    include_usage: bool = False
    cancelled: threading.Event = field(default_factory=threading.Event)


def _text_of(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and part.get("type") in TEXT_PART_TYPES:
                texts.append(str(part.get("text") or ""))
            elif isinstance(part, dict) and part.get("type") == "refusal":
                texts.append(str(part.get("refusal") or ""))
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise InvalidRequest(f"The local model only reads text; '{where}' has a content part of type "
                                     f"'{kind}'.", param=where, code="unsupported_value")
        return "".join(texts)
    raise InvalidRequest(f"Invalid type for '{where}': expected a string or an array of content parts.",
                         param=where, code="invalid_type")


def _normalize_messages(messages: Any, tools_note: str | None) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array.", param="messages", code="invalid_value")
    out: list[dict[str, Any]] = []
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            raise InvalidRequest(f"Invalid '{where}': expected an object with a 'role'.", param=where,
                                 code="invalid_value")
        role = msg["role"]
        if role not in ("system", "developer", "user", "assistant", "tool", "function"):
            raise InvalidRequest(f"Invalid value for '{where}.role': '{role}'.", param=f"{where}.role",
                                 code="invalid_value")
        text = _text_of(msg.get("content"), f"{where}.content")
        if role == "developer":
            role = "system"
        elif role == "assistant" and msg.get("tool_calls"):
            if not isinstance(msg["tool_calls"], list) or not all(
                    isinstance(c, dict) and isinstance(c.get("function"), dict) for c in msg["tool_calls"]):
                raise InvalidRequest(f"Invalid '{where}.tool_calls': expected an array of objects with a "
                                     "'function' object.", param=f"{where}.tool_calls", code="invalid_type")
            calls = [f'{{"name": {dumps(c["function"].get("name"))}, "arguments": '
                     f'{c["function"].get("arguments") or "{}"}}}' for c in msg["tool_calls"]]
            text = "\n".join([text, *calls]) if text else "\n".join(calls)
        elif role in ("tool", "function"):
            role = "user"
            text = f"Result of tool call {msg.get('tool_call_id') or msg.get('name') or ''}:\n{text}"
        out.append({"role": role, "content": text})
    if tools_note:
        if out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{tools_note}"}
        else:
            out.insert(0, {"role": "system", "content": tools_note})
    return out


def _number(body: dict[str, Any], name: str, lo: float, hi: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise InvalidRequest(f"Invalid '{name}': expected a number between {lo} and {hi}.", param=name,
                             code="invalid_value")
    return float(value)


def _tools_note(functions: list[dict[str, Any]]) -> str:
    lines = ["You can use these functions:"]
    for fn in functions:
        lines.append(f"- {fn.get('name')}: {fn.get('description') or ''} parameters: "
                     f"{dumps(fn.get('parameters') or {})}")
    return "\n".join(lines)


def prepare_chat(body: dict[str, Any], model: str) -> ChatJob:
    if (body.get("n") or 1) != 1:
        raise InvalidRequest("The local model supports only n=1.", param="n", code="unsupported_value")
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise InvalidRequest("Invalid 'tools': expected an array.", param="tools", code="invalid_type")
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("function"), dict):
            raise InvalidRequest(f"Invalid 'tools[{i}]': expected an object with a 'function' object.",
                                 param=f"tools[{i}]", code="invalid_type")
    functions = [t["function"] for t in tools if t.get("type", "function") == "function"]
    choice = body.get("tool_choice")
    forced: dict[str, Any] | None = None
    if functions and isinstance(choice, dict):
        named = choice.get("function")
        name = (named.get("name") if isinstance(named, dict) else None) or choice.get("name")
        forced = next((f for f in functions if f.get("name") == name), None)
        if forced is None:
            raise InvalidRequest(f"Invalid 'tool_choice': no function named '{name}' in 'tools'.",
                                 param="tool_choice", code="invalid_value")
    elif functions and choice == "required" and len(functions) == 1:
        forced = functions[0]
    use_tools = bool(functions) and choice != "none"
    messages = _normalize_messages(body.get("messages"), _tools_note(functions) if use_tools and not forced else None)

    sampling: dict[str, Any] = {}
    temperature = _number(body, "temperature", 0, 2)
    sampling["temperature"] = 1.0 if temperature is None else temperature
    top_p = _number(body, "top_p", 0, 1)
    sampling["top_p"] = 1.0 if top_p is None else top_p
    for name in ("presence_penalty", "frequency_penalty"):
        value = _number(body, name, -2, 2)
        if value is not None:
            sampling[name] = value
    seed = body.get("seed")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InvalidRequest("Invalid 'seed': expected an integer.", param="seed", code="invalid_type")
        sampling["seed"] = seed & 0xFFFFFFFF

    max_tokens = body.get("max_completion_tokens")
    param = "max_completion_tokens"
    if max_tokens is None:
        max_tokens, param = body.get("max_tokens"), "max_tokens"
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise InvalidRequest(f"Invalid '{param}': expected an integer >= 1.", param=param, code="invalid_value")

    stop = body.get("stop")
    if stop is None:
        stops: list[str] = []
    elif isinstance(stop, str):
        stops = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        stops = [s for s in stop if s]
    else:
        raise InvalidRequest("Invalid 'stop': expected a string or an array of strings.", param="stop",
                             code="invalid_type")

    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise InvalidRequest("Invalid 'stream_options': expected an object.", param="stream_options",
                             code="invalid_type")
    job = ChatJob(model=model, messages=messages, sampling=sampling, max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
                   stop=stops, forced_tool=forced, include_usage=bool(stream_options.get("include_usage")))
    fmt = body.get("response_format")
    if forced is not None:
        job.json_schema = forced.get("parameters") or {"type": "object"}
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        job.json_mode = True
    elif isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        json_schema = fmt.get("json_schema")
        schema = json_schema.get("schema") if isinstance(json_schema, dict) else None
        if not isinstance(schema, dict):
            raise InvalidRequest("Missing 'response_format.json_schema.schema'.", param="response_format",
                                 code="invalid_value")
        job.json_schema = schema
    elif fmt is not None and not (isinstance(fmt, dict) and fmt.get("type") == "text"):
        raise InvalidRequest("Invalid 'response_format': expected type 'text', 'json_object' or 'json_schema'.",
                             param="response_format", code="invalid_value")
    return job
