"""Function tools: run by the client. The response ends with the `function_call` items; the client sends
`function_call_output` items (with previous_response_id) and the model continues.

The `function_call` / `function_call_output` items themselves are core items (items.py, context.py): they
predate the tool package and every client sends them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from respond.errors import InvalidRequest
from respond.ids import new_id
from respond.responses.events import EventStream
from respond.responses.tools.base import Tool, ToolCall, ToolEnv
from respond.responses.tools.registry import tool_kind


@tool_kind("function")
@dataclass(frozen=True)
class FunctionTool(Tool):
    """A client function tool as the request gave it (`strict` None: not given)."""

    kind: ClassVar[str] = "function"

    name: str
    description: str | None
    parameters: dict[str, Any] | None
    strict: bool | None

    @classmethod
    def parse(cls, raw: dict[str, Any], where: str, env: ToolEnv | None = None) -> FunctionTool:
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"Missing required parameter: '{where}.name'.", param=f"{where}.name",
                                 code="missing_required_parameter")
        params = raw.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise InvalidRequest(f"Invalid value for '{where}.parameters': expected a JSON schema object.",
                                 param=f"{where}.parameters")
        strict = raw.get("strict")
        if strict is not None and not isinstance(strict, bool):
            raise InvalidRequest(f"Invalid type for '{where}.strict': expected a boolean.", param=f"{where}.strict",
                                 code="invalid_type")
        return cls(name=name, description=raw.get("description"), parameters=params, strict=strict)

    def echo(self) -> dict[str, Any]:
        """Description, parameters and strict always present (strict defaults to true, as in the API)."""
        return {"type": "function", "name": self.name, "description": self.description,
                "parameters": self.parameters, "strict": True if self.strict is None else self.strict}

    def chat(self) -> dict[str, Any]:
        """The Chat Completions form; `strict` only when the client set it (the upstream's default otherwise)."""
        function: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            function["description"] = self.description
        if self.parameters is not None:
            function["parameters"] = self.parameters
        if self.strict is not None:
            function["strict"] = self.strict
        return {"type": "function", "function": function}

    def functions(self) -> list[dict[str, Any]]:
        return [self.chat()]

    def label(self) -> str:
        return self.name

    def matches_choice(self, choice: dict[str, Any]) -> bool:
        return choice.get("type") == "function" and choice.get("name") == self.name

    def start_call(self, name: str, call_id: str, output_index: int) -> FunctionCall:
        return FunctionCall(self, name, call_id, output_index)


class FunctionCall(ToolCall):
    """A `function_call` item; also what a call to a name no tool owns becomes (the client sees it)."""

    awaits_client: ClassVar[bool] = True

    def __init__(self, tool: Tool | None, name: str, call_id: str, output_index: int) -> None:
        super().__init__(tool, name, call_id, output_index)
        self.item = {"type": "function_call", "id": new_id("function_call"), "call_id": call_id, "name": name,
                     "arguments": "", "status": "in_progress"}

    def arguments_delta(self, events: EventStream, delta: str) -> None:
        events.arguments_delta(self.item["id"], self.output_index, delta)

    def close(self, events: EventStream, arguments: str, incomplete: bool) -> None:
        self.arguments = arguments
        self.item["arguments"] = arguments
        self.item["status"] = "incomplete" if incomplete else "completed"
        events.arguments_done(self.item["id"], self.output_index, self.name, arguments)
        events.item_done(self.output_index, self.item)
