"""Namespace tools: a named group of function (and custom) tools, run by the client.

`{"type": "namespace", "name": "crm", "description": "...", "tools": [{"type": "function", ...},
{"type": "custom", ...}]}` (Codex CLI groups an MCP server's tools so, e.g. `mcp__lab`). Chat backends have
no namespaces: each tool inside is offered as the function `<namespace>__<name>` (so two namespaces, or a
namespace and a top-level function, never clash), and a call to it comes back as the inner tool's own item
(`function_call` / `custom_tool_call`) with its own `name` and `namespace: "crm"`, continued with
`function_call_output` / `custom_tool_call_output` as usual. In history, such items are shown to the model
under the same `<namespace>__<name>` (context.chat_function_name).
"""

from __future__ import annotations

from typing import Any, ClassVar

from respond.errors import InvalidRequest
from respond.responses.context import chat_function_name
from respond.responses.tools.base import Tool, ToolCall, ToolEnv, optional, require_str
from respond.responses.tools.custom import CustomTool
from respond.responses.tools.function import FunctionTool
from respond.responses.tools.registry import tool_kind

INNER_KINDS: dict[str, type[Tool]] = {"function": FunctionTool, "custom": CustomTool}


@tool_kind("namespace")
class NamespaceTool(Tool):
    kind: ClassVar[str] = "namespace"

    def __init__(self, name: str, description: str, tools: list[Tool]) -> None:
        self.name = name
        self.description = description
        self.tools = tools
        # chat function name -> (inner tool, the inner tool's own function name)
        self._by_chat: dict[str, tuple[Tool, str]] = {}
        for tool in tools:
            for fn in tool.functions():
                own = fn["function"]["name"]
                self._by_chat[chat_function_name(name, own)] = (tool, own)

    @classmethod
    def parse(cls, raw: dict[str, Any], where: str, env: ToolEnv) -> NamespaceTool:
        name = require_str(raw, "name", where)
        description = optional(raw, "description", where, str, "a string") or ""
        listed = raw.get("tools")
        if not isinstance(listed, list) or not listed:
            raise InvalidRequest(f"Invalid value for '{where}.tools': expected a non-empty array of function or "
                                 "custom tools.", param=f"{where}.tools", code="invalid_value")
        tools: list[Tool] = []
        for i, inner in enumerate(listed):
            at = f"{where}.tools[{i}]"
            kind = inner.get("type") if isinstance(inner, dict) else None
            tool_cls = INNER_KINDS.get(kind) if isinstance(kind, str) else None
            if tool_cls is None:
                raise InvalidRequest(f"Invalid value for '{at}.type': a namespace holds 'function' and 'custom' "
                                     "tools.", param=f"{at}.type", code="invalid_value")
            tools.append(tool_cls.parse(inner, at, env))
        names = [t.name for t in tools]  # type: ignore[attr-defined]
        if len(names) != len(set(names)):
            raise InvalidRequest(f"Tool names must be unique within namespace '{name}'.", param=f"{where}.tools",
                                 code="duplicate_tool_name")
        return cls(name, description, tools)

    def echo(self) -> dict[str, Any]:
        return {"type": "namespace", "name": self.name, "description": self.description,
                "tools": [t.echo() for t in self.tools]}

    def functions(self) -> list[dict[str, Any]]:
        out = []
        for tool in self.tools:
            for fn in tool.functions():
                own = fn["function"]["name"]
                described = fn["function"].get("description")
                prefix = f"[{self.name}] {self.description}".strip() if self.description else f"[{self.name}]"
                out.append({**fn, "function": {**fn["function"], "name": chat_function_name(self.name, own),
                                               "description": f"{prefix}\n{described}" if described else prefix}})
        return out

    def label(self) -> str:
        return self.name

    def matches_choice(self, choice: dict[str, Any]) -> bool:
        """`{"type": "function" | "custom", "name": <inner name>}` (optionally with `"namespace"`), or the
        name the model sees (`<namespace>__<name>`)."""
        return bool(self.chosen_functions(choice))

    def chosen_functions(self, choice: dict[str, Any]) -> list[str]:
        if choice.get("namespace") not in (None, self.name):
            return []
        chosen = []
        for chat, (tool, own) in self._by_chat.items():
            inner_choice = {**choice, "name": own} if choice.get("name") == chat else choice
            if tool.matches_choice(inner_choice):
                chosen.append(chat)
        return chosen

    def start_call(self, name: str, call_id: str, output_index: int) -> ToolCall:
        tool, own = self._by_chat[name]
        call = tool.start_call(own, call_id, output_index)
        call.item["namespace"] = self.name
        return call
