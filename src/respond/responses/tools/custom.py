"""Custom tools: free-form text input, run by the client (like function tools).

`{"type": "custom", "name", "description", "format": {"type": "text"} | {"type": "grammar", "syntax":
"regex" | "lark", "definition"}}`. Chat-completions backends know only JSON functions, so the model is
offered a function with one string parameter, `{"input": string}`; the call comes back as a
`custom_tool_call` item whose `input` is that string, streamed as `response.custom_tool_call_input.delta`
/ `.done`. The client answers with a `custom_tool_call_output` item.

Grammars. A `regex` grammar goes into the parameter's JSON schema as `pattern`, which backends with
constrained decoding (llama.cpp's server, vLLM...) enforce; a `lark` grammar goes into the descriptions
only (no chat backend takes Lark). Respond checks what it can once the call is complete: a regex with
Python's `re.fullmatch`. A call whose input breaks the regex is never handed to the client as if it were
valid: the response ends `failed` (`server_error`, the message names the tool and the grammar) with the
call in its output. Lark grammars are not checked (that would need the `lark` package).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from respond.errors import APIError, InvalidRequest
from respond.ids import new_id
from respond.responses.context import add_tool_call, add_tool_output, chat_function_name
from respond.responses.events import EventStream
from respond.responses.items import normalize_call_output, require_str
from respond.responses.tools.base import Tool, ToolCall, ToolEnv, optional
from respond.responses.tools.base import require_str as require_tool_str
from respond.responses.tools.registry import item_kind, tool_kind

INPUT = "input"  # the one parameter of the function a custom tool is offered as


@tool_kind("custom")
@dataclass(frozen=True)
class CustomTool(Tool):
    kind: ClassVar[str] = "custom"

    name: str
    description: str | None
    format: dict[str, Any]  # {"type": "text"} or the grammar as given
    pattern: re.Pattern[str] | None = field(default=None, compare=False)  # a compiled regex grammar

    @classmethod
    def parse(cls, raw: dict[str, Any], where: str, env: ToolEnv | None = None) -> CustomTool:
        name = require_tool_str(raw, "name", where)
        description = optional(raw, "description", where, str, "a string")
        fmt = optional(raw, "format", where, dict, "an object") or {"type": "text"}
        kind = fmt.get("type")
        if kind == "text":
            return cls(name, description, {"type": "text"})
        if kind != "grammar":
            raise InvalidRequest(f"Invalid value for '{where}.format.type': expected 'text' or 'grammar'.",
                                 param=f"{where}.format.type", code="invalid_value")
        syntax = fmt.get("syntax")
        if syntax not in ("lark", "regex"):
            raise InvalidRequest(f"Invalid value for '{where}.format.syntax': expected 'lark' or 'regex'.",
                                 param=f"{where}.format.syntax", code="invalid_value")
        definition = require_tool_str(fmt, "definition", f"{where}.format")
        pattern = None
        if syntax == "regex":
            try:
                pattern = re.compile(definition)
            except re.error as exc:
                raise InvalidRequest(f"Invalid value for '{where}.format.definition': not a valid regular "
                                     f"expression ({exc}).", param=f"{where}.format.definition",
                                     code="invalid_value") from None
        return cls(name, description, {"type": "grammar", "syntax": syntax, "definition": definition}, pattern)

    def echo(self) -> dict[str, Any]:
        return {"type": "custom", "name": self.name, "description": self.description, "format": self.format}

    def functions(self) -> list[dict[str, Any]]:
        fmt = self.format
        text = "The raw input for the tool, as a string."
        schema: dict[str, Any] = {"type": "string"}
        if fmt["type"] == "grammar":
            text = (f"The raw input for the tool. It must match this {fmt['syntax']} grammar exactly:\n"
                    f"{fmt['definition']}")
            if fmt["syntax"] == "regex":  # anchored: a grammar matches the whole input (llama.cpp wants ^...$)
                schema["pattern"] = f"^({fmt['definition']})$"
        schema["description"] = text
        description = self.description or f"The {self.name} tool."
        description += f" Takes free-form text: put the whole input in the `{INPUT}` string."
        return [{"type": "function", "function": {
            "name": self.name, "description": description,
            "parameters": {"type": "object", "properties": {INPUT: schema}, "required": [INPUT],
                           "additionalProperties": False}}}]

    def label(self) -> str:
        return self.name

    def matches_choice(self, choice: dict[str, Any]) -> bool:
        return choice.get("type") == "custom" and choice.get("name") == self.name

    def start_call(self, name: str, call_id: str, output_index: int) -> CustomToolCall:
        return CustomToolCall(self, name, call_id, output_index)

    def check(self, text: str) -> str | None:
        """Why `text` breaks the grammar, or None (regex only; Lark grammars are not checked)."""
        if self.pattern is not None and self.pattern.fullmatch(text) is None:
            return (f"The model's input for custom tool '{self.name}' does not match the tool's regex grammar "
                    f"({_short(self.format['definition'])}): {_short(text)}")
        return None


class CustomToolCall(ToolCall):
    """A `custom_tool_call` item: the model's `{"input": ...}` arguments become the item's `input`."""

    awaits_client: ClassVar[bool] = True

    def __init__(self, tool: CustomTool | None, name: str, call_id: str, output_index: int) -> None:
        super().__init__(tool, name, call_id, output_index)
        self.item = {"type": "custom_tool_call", "id": new_id("custom_tool_call"), "call_id": call_id,
                     "name": name, "input": "", "status": "in_progress"}
        self._stream = InputStream()
        self._streamed: list[str] = []

    def arguments_delta(self, events: EventStream, delta: str) -> None:
        text = self._stream.feed(delta)
        if text:
            self._streamed.append(text)
            events.custom_input_delta(self.item["id"], self.output_index, text)

    def close(self, events: EventStream, arguments: str, incomplete: bool) -> None:
        self.arguments = arguments
        text = input_of(arguments)
        streamed = "".join(self._streamed)
        if len(text) > len(streamed) and text.startswith(streamed):  # e.g. arguments that were not JSON
            events.custom_input_delta(self.item["id"], self.output_index, text[len(streamed):])
        self.item["input"] = text
        self.item["status"] = "incomplete" if incomplete else "completed"
        events.custom_input_done(self.item["id"], self.output_index, text)
        events.item_done(self.output_index, self.item)
        if not incomplete and isinstance(self.tool, CustomTool):
            problem = self.tool.check(text)
            if problem is not None:
                self.error = APIError(problem)


def input_of(arguments: str) -> str:
    """The free-form input in the model's arguments: `{"input": "..."}` (or an object with one string
    value), else the arguments themselves (a backend that passed the text through as is)."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments
    if isinstance(value, dict):
        if isinstance(value.get(INPUT), str):
            return value[INPUT]
        strings = [v for v in value.values() if isinstance(v, str)]
        if len(value) == 1 and strings:
            return strings[0]
    return arguments


class InputStream:
    """Decodes the `input` string of `{"input": "..."}` arguments as they stream, piece by piece: each
    `feed` returns the newly decoded text (escape sequences split across pieces are held back)."""

    __slots__ = ("_buf", "_pos", "_state")

    _KEY = re.compile(r'\s*\{\s*"input"\s*:\s*"')
    _ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}

    def __init__(self) -> None:
        self._buf = ""
        self._pos = 0
        self._state = "key"  # key -> value -> end (or "off": not the expected shape; close() decides)

    def feed(self, piece: str) -> str:
        self._buf += piece
        if self._state == "key":
            m = self._KEY.match(self._buf)
            if m is None:
                if not _could_become(self._buf):
                    self._state = "off"
                return ""
            self._state, self._pos = "value", m.end()
        if self._state != "value":
            return ""
        out: list[str] = []
        buf, i, n = self._buf, self._pos, len(self._buf)
        while i < n:
            c = buf[i]
            if c == '"':
                self._state = "end"
                i += 1
                break
            if c != "\\":
                j = i
                while j < n and buf[j] not in '"\\':
                    j += 1
                out.append(buf[i:j])
                i = j
                continue
            if i + 1 >= n:
                break  # the escape continues in the next piece
            e = buf[i + 1]
            if e == "u":
                if i + 6 > n:
                    break
                code = int(buf[i + 2:i + 6], 16)
                if 0xD800 <= code < 0xDC00:  # a surrogate pair: wait for the low half
                    if i + 12 > n:
                        break
                    low = int(buf[i + 8:i + 12], 16)
                    out.append(chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)))
                    i += 12
                    continue
                out.append(chr(code))
                i += 6
                continue
            out.append(self._ESCAPES.get(e, e))
            i += 2
        self._pos = i
        return "".join(out)


def _could_become(prefix: str) -> bool:
    """Whether `prefix` may still grow into `{"input": "` (whitespace allowed)."""
    compact = re.sub(r"\s+", "", prefix)
    return '{"input":"'.startswith(compact)


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


# -- items as input and history ----------------------------------------------------------------------

def _normalize_call(item: dict[str, Any], where: str) -> dict[str, Any]:
    require_str(item, ("call_id", "name", "input"), where)
    out = {"type": "custom_tool_call", "id": item.get("id") or new_id("custom_tool_call"),
           "call_id": item["call_id"], "name": item["name"], "input": item["input"],
           "status": item.get("status") or "completed"}
    if item.get("namespace") is not None:
        require_str(item, ("namespace",), where)
        out["namespace"] = item["namespace"]
    return out


def _call_messages(item: dict[str, Any], messages: list[dict[str, Any]]) -> None:
    add_tool_call(messages, item["call_id"], chat_function_name(item.get("namespace"), item["name"]),
                  json.dumps({INPUT: item["input"]}, ensure_ascii=False))


item_kind("custom_tool_call", _normalize_call, _call_messages)
item_kind("custom_tool_call_output", normalize_call_output, lambda item, messages: add_tool_output(messages, item))
