"""The tools of one request: parsed and validated in `prepare`, set up and offered to the model by the loop.

`ToolSet.build(tools, tool_choice, env)` validates everything a client can get wrong (before anything
streams). After `await toolset.setup(run)` (which may add output items, e.g. `mcp_list_tools`),
`toolset.chat_tools(first_turn)` / `toolset.chat_tool_choice(first_turn)` are what each model turn is offered,
and `toolset.start_call(chat_name, ...)` maps a call the model starts back to its tool.

Function names: a function tool keeps its name; a server tool's function whose name is also offered by
another tool is offered as `<label>__<name>` (e.g. `github__search`), and mapped back when called.
A forcing `tool_choice` (required, a function, an mcp server or tool, file_search, web_search...) applies to
the first model turn only: after the tool ran, the model may answer.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from respond.errors import InvalidRequest
from respond.responses.tools.base import Tool, ToolCall, ToolEnv, ToolRun
from respond.responses.tools.function import FunctionCall, FunctionTool
from respond.responses.tools.registry import TOOL_KINDS, supported_tool_types

_NOT_NAME = re.compile(r"[^a-zA-Z0-9_-]")


class ToolSet:
    __slots__ = ("tools", "choice", "allowed", "_by_chat_name", "_offered", "_first_offered", "_forced")

    def __init__(self, tools: list[Tool], choice: Any, allowed: list[Tool]) -> None:
        self.tools = tools
        self.choice = choice  # the validated tool_choice as the client sent it (None: auto)
        self.allowed = allowed  # the tools the model may use (allowed_tools narrows them)
        self._by_chat_name: dict[str, tuple[Tool, str]] = {}
        self._offered: list[dict[str, Any]] = []
        self._first_offered: list[dict[str, Any]] = []
        self._forced: Any = None  # chat tool_choice for the first turn
        self._index()

    # -- building (prepare) -----------------------------------------------------------------------------
    @classmethod
    def build(cls, raw_tools: list[dict[str, Any]] | None, choice: Any, env: ToolEnv) -> ToolSet:
        tools: list[Tool] = []
        for i, raw in enumerate(raw_tools or []):
            where = f"tools[{i}]"
            if not isinstance(raw, dict):
                raise InvalidRequest(f"Invalid value for '{where}': expected an object.", param=where)
            kind = raw.get("type")
            tool_cls = TOOL_KINDS.get(kind) if isinstance(kind, str) else None
            if tool_cls is None:
                raise InvalidRequest(f"Invalid value for '{where}.type': tool type '{kind}' is not supported by "
                                     f"this server (supported: {', '.join(supported_tool_types())}).",
                                     param=f"{where}.type", code="unsupported_tool_type")
            tools.append(tool_cls.parse(raw, where, env))
        names = [t.name for t in tools if isinstance(t, FunctionTool)]
        if len(names) != len(set(names)):
            raise InvalidRequest("Tool names must be unique.", param="tools", code="duplicate_tool_name")
        return cls(tools, choice, _allowed_by_choice(choice, tools))

    @property
    def empty(self) -> bool:
        return not self.tools

    def echo(self) -> list[dict[str, Any]]:
        return [t.echo() for t in self.tools]

    async def check_access(self, env: ToolEnv, owner: str) -> None:
        """Prepare: the stored objects the tools name must be the owner's (404 like an unknown id)."""
        for tool in self.tools:
            await tool.check_access(env, owner)

    # -- setup and offering (loop) ----------------------------------------------------------------------
    async def setup(self, run: ToolRun) -> None:
        """Set every tool up (in request order: their items appear in that order), then index the functions."""
        for tool in self.tools:
            await tool.setup(run)
        self._index()

    def _index(self) -> None:
        offered: list[tuple[Tool, str, dict[str, Any]]] = []
        for tool in self.allowed:
            for fn in tool.functions():
                offered.append((tool, fn["function"]["name"], fn))
        counts = Counter(name for _, name, _ in offered)
        self._by_chat_name, self._offered = {}, []
        for tool, name, fn in offered:
            chat_name = name
            if counts[name] > 1 and not isinstance(tool, FunctionTool):
                chat_name = _NOT_NAME.sub("_", f"{tool.label()}__{name}")[:64]
            if chat_name in self._by_chat_name:
                continue  # the same name twice from one tool: offered once
            self._by_chat_name[chat_name] = (tool, name)
            self._offered.append(fn if chat_name == name else
                                 {**fn, "function": {**fn["function"], "name": chat_name}})
        self._first_offered, self._forced = self._first_turn()

    def _first_turn(self) -> tuple[list[dict[str, Any]], Any]:
        """What the first model turn is offered, and the chat tool_choice that applies to it."""
        choice = self.choice
        if choice is None or choice in ("auto", "none", "required"):
            return self._offered, None if choice == "auto" else choice
        if choice.get("type") == "allowed_tools":
            return self._offered, None if (choice.get("mode") or "auto") == "auto" else "required"
        forced = [chat for chat, (tool, name) in self._by_chat_name.items()
                  if tool.matches_choice(choice) and name in tool.chosen_functions(choice)]
        if len(forced) == 1:
            return self._offered, {"type": "function", "function": {"name": forced[0]}}
        if forced:  # a tool kind or server with several functions: offer only those, one of them required
            return [f for f in self._offered if f["function"]["name"] in forced], "required"
        return self._offered, None  # nothing to force (e.g. the MCP server could not be listed)

    def chat_tools(self, first_turn: bool = True) -> list[dict[str, Any]]:
        """The chat-completions `tools` for a model turn."""
        return self._first_offered if first_turn else self._offered

    def chat_tool_choice(self, first_turn: bool = True) -> Any:
        """The chat-completions `tool_choice` (None: leave it out). Forcing applies to the first turn only;
        `none` always holds."""
        if first_turn or self._forced == "none":
            return self._forced
        return None

    def start_call(self, chat_name: str, call_id: str, output_index: int) -> ToolCall:
        """The model started calling `chat_name`: the owning tool's call object (a function call for a name
        no tool offers: the client sees what the model asked for)."""
        owner = self._by_chat_name.get(chat_name)
        if owner is None:
            return FunctionCall(None, chat_name, call_id, output_index)
        tool, name = owner
        return tool.start_call(name, call_id, output_index)

    def chat_name(self, call: ToolCall) -> str:
        """The name the model used for a call (its own, possibly mangled, function name)."""
        for chat, (tool, name) in self._by_chat_name.items():
            if tool is call.tool and name == call.name:
                return chat
        return call.name


def _allowed_by_choice(choice: Any, tools: list[Tool]) -> list[Tool]:
    """Validate tool_choice against the tools; return the tools the model may use."""
    if choice is None or choice in ("auto", "none"):
        return tools
    if choice == "required":
        if not tools:
            raise InvalidRequest("tool_choice 'required' needs at least one tool.", param="tool_choice")
        return tools
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "allowed_tools":
            listed = choice.get("tools") or []
            if not isinstance(listed, list):
                raise InvalidRequest("Invalid 'tool_choice.tools': expected an array of tools.",
                                     param="tool_choice.tools", code="invalid_type")
            mode = choice.get("mode") or "auto"
            if mode not in ("auto", "required"):
                raise InvalidRequest("tool_choice.mode must be 'auto' or 'required'.", param="tool_choice.mode")
            allowed: list[Tool] = []
            for i, entry in enumerate(listed):
                matching = [t for t in tools if isinstance(entry, dict) and t.matches_choice(entry)]
                if not matching:
                    what = entry.get("name") or entry.get("server_label") or entry.get("type") \
                        if isinstance(entry, dict) else entry
                    raise InvalidRequest(f"allowed_tools names unknown tools: {what}.",
                                         param=f"tool_choice.tools[{i}]")
                allowed.extend(t for t in matching if t not in allowed)
            return [t for t in tools if t in allowed]
        if isinstance(kind, str) and kind in TOOL_KINDS:
            if not any(t.matches_choice(choice) for t in tools):
                if kind == "function":
                    raise InvalidRequest(f"tool_choice names function '{choice.get('name')}', which is not in "
                                         "tools.", param="tool_choice.name")
                raise InvalidRequest(f"tool_choice designates a '{kind}' tool that is not in tools.",
                                     param="tool_choice")
            return tools
    raise InvalidRequest("Invalid value for 'tool_choice': expected 'auto', 'none', 'required', a function "
                         "choice, a hosted tool choice or an allowed_tools choice.", param="tool_choice",
                         code="invalid_value")
