"""MCP tools: a remote MCP server's tools offered to the model and run by Respond.

Request tool: `{"type": "mcp", "server_label", "server_url" | "connector_id" (or a label the operator
declared), "headers", "authorization", "allowed_tools", "require_approval", "server_description"}`.

- Setup lists the server's tools once per chain: an `mcp_list_tools` item (events
  `response.mcp_list_tools.in_progress` -> `completed` | `failed`), reused from earlier responses of the
  chain instead of listing again. A server that cannot be listed gives a failed listing (item `error`) and
  the model answers without its tools.
- A call streams as an `mcp_call` item (`response.mcp_call_arguments.delta` / `.done`), then runs:
  `response.mcp_call.in_progress` -> `completed` | `failed`, `output_item.done` with `output` or `error`.
- A tool that requires approval gives an `mcp_approval_request` item instead and the response ends; the
  client answers with an `mcp_approval_response` input item (previous_response_id): approved, the call runs
  at the start of the next response (an `mcp_call` with `approval_request_id`); denied, the model is told.
- `authorization` and `headers` go to the server only: not echoed, stored, logged or recorded.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from respond.errors import InvalidRequest
from respond.ids import new_id
from respond.responses.events import EventStream
from respond.responses.tools import mcp_client
from respond.responses.tools.base import (
    InvalidArguments,
    Tool,
    ToolCall,
    ToolEnv,
    ToolResult,
    ToolRun,
    optional,
    require_str,
)
from respond.responses.tools.mcp_client import MCPFailure, MCPServer
from respond.responses.tools.registry import item_kind, tool_kind

# connector_id values the Responses API (and its SDK types) know; other ids name operator-declared servers
OPENAI_CONNECTORS = frozenset({"connector_dropbox", "connector_gmail", "connector_googlecalendar",
                               "connector_googledrive", "connector_microsoftteams", "connector_outlookcalendar",
                               "connector_outlookemail", "connector_sharepoint"})


@tool_kind("mcp")
class MCPTool(Tool):
    kind: ClassVar[str] = "mcp"

    def __init__(self, server: MCPServer, *, allowed: frozenset[str] | None, always: frozenset[str] | None,
                 never: frozenset[str] | None, default_approval: bool, echoed: dict[str, Any]) -> None:
        self.server = server
        self.server_label = server.label
        self.allowed = allowed
        self._always, self._never, self._default_approval = always, never, default_approval
        self._echoed = echoed
        self.listed: list[dict[str, Any]] = []  # MCP tool descriptions (name, description, inputSchema)

    # -- request -----------------------------------------------------------------------------------------
    @classmethod
    def parse(cls, raw: dict[str, Any], where: str, env: ToolEnv) -> MCPTool:
        config = env.config.mcp
        label = require_str(raw, "server_label", where)
        url = optional(raw, "server_url", where, str, "a string")
        connector = optional(raw, "connector_id", where, str, "a string")
        headers = optional(raw, "headers", where, dict, "an object of strings") or {}
        if not all(isinstance(v, str) for v in headers.values()):
            raise InvalidRequest(f"Invalid type for '{where}.headers': header values must be strings.",
                                 param=f"{where}.headers", code="invalid_type")
        authorization = optional(raw, "authorization", where, str, "a string")
        description = optional(raw, "server_description", where, str, "a string")
        sent = dict(headers)
        if authorization:
            sent["Authorization"] = f"Bearer {authorization}"
        if url:
            problem = mcp_client.url_problem(url, config)
            if problem is not None:
                raise InvalidRequest(f"Invalid value for '{where}.server_url': {problem}.", param=f"{where}.server_url",
                                     code="invalid_value")
            server = MCPServer(label=label, url=url, headers=sent)
        else:
            declared = next((s for s in config.servers if connector and connector in (s.connector_id, s.label)), None)
            if declared is None and not connector:
                declared = next((s for s in config.servers if s.label == label), None)
            if declared is None:
                if connector:
                    raise InvalidRequest(f"Invalid value for '{where}.connector_id': no MCP server '{connector}' is "
                                         "configured on this server.", param=f"{where}.connector_id",
                                         code="invalid_value")
                raise InvalidRequest(f"Missing required parameter: '{where}.server_url' (or a connector_id, or the "
                                     "server_label of an MCP server configured on this server).",
                                     param=f"{where}.server_url", code="missing_required_parameter")
            server = MCPServer(label=label, url=declared.url, headers={**declared.headers, **sent}, trusted=True)
            description = description or declared.description
        allowed = _tool_names(raw.get("allowed_tools"), f"{where}.allowed_tools", allow_list=True)
        always, never, default = _approval(raw.get("require_approval"), f"{where}.require_approval")
        echoed: dict[str, Any] = {"type": "mcp", "server_label": label, "allowed_tools": raw.get("allowed_tools"),
                                  "headers": None, "require_approval": raw.get("require_approval") or "always",
                                  "server_description": description}
        if url:
            echoed["server_url"] = url
        if connector in OPENAI_CONNECTORS:
            echoed["connector_id"] = connector
        return cls(server, allowed=allowed, always=always, never=never, default_approval=default, echoed=echoed)

    def echo(self) -> dict[str, Any]:
        return dict(self._echoed)  # never authorization, headers, or a declared server's URL

    def label(self) -> str:
        return self.server_label

    def matches_choice(self, choice: dict[str, Any]) -> bool:
        return choice.get("type") == "mcp" and choice.get("server_label") == self.server_label

    def chosen_functions(self, choice: dict[str, Any]) -> list[str]:
        name = choice.get("name")
        return [t["name"] for t in self.listed if name is None or t["name"] == name]

    def needs_approval(self, name: str) -> bool:
        if self._never is not None and name in self._never:
            return False
        if self._always is not None and name in self._always:
            return True
        return self._default_approval

    # -- setup: list (or reuse the chain's listing), then run what the client approved -------------------
    async def setup(self, run: ToolRun) -> None:
        cached = next((i for i in reversed(run.context_items) if i["type"] == "mcp_list_tools"
                       and i.get("server_label") == self.server_label and not i.get("error")), None)
        names = {t["name"] for t in cached["tools"]} if cached is not None else set()
        if cached is not None and (self.allowed is None or self.allowed <= names):
            # reused: a listing the chain already has (narrowed by this request's allowed_tools)
            self.listed = [_from_item_tool(t) for t in cached["tools"]
                           if self.allowed is None or t["name"] in self.allowed]
        else:
            await self._list(run)
        await self._run_approved(run)

    async def _list(self, run: ToolRun) -> None:
        events = run.events
        item: dict[str, Any] = {"type": "mcp_list_tools", "id": new_id("mcp_list_tools"),
                                "server_label": self.server_label, "tools": []}
        index = run.add_output(item)
        events.item_added(index, dict(item))
        events.tool_status("mcp_list_tools", "in_progress", item["id"], index)
        try:
            tools = await mcp_client.list_tools(run.env, self.server)
        except MCPFailure as exc:
            item["error"] = exc.message
            events.tool_status("mcp_list_tools", "failed", item["id"], index)
            events.item_done(index, item)
            return
        self.listed = [{k: v for k, v in t.items() if k != "outputSchema"} for t in tools
                       if self.allowed is None or t["name"] in self.allowed]
        item["tools"] = [_to_item_tool(t) for t in self.listed]
        events.tool_status("mcp_list_tools", "completed", item["id"], index)
        events.item_done(index, item)

    async def _run_approved(self, run: ToolRun) -> None:
        """Approval responses in this request's input answer requests of the chain: run or refuse them."""
        requests = {i["id"]: i for i in run.context_items if i["type"] == "mcp_approval_request"
                    and i.get("server_label") == self.server_label}
        if not requests:
            return
        done = {i.get("approval_request_id") for i in run.context_items if i["type"] == "mcp_call"}
        answered: set[str] = set()
        for answer in run.input_items:
            if answer["type"] != "mcp_approval_response":
                continue
            request = requests.get(answer["approval_request_id"])
            if request is None or request["id"] in done or request["id"] in answered:
                continue
            answered.add(request["id"])
            if not answer["approve"]:
                why = f" Reason: {answer['reason']}" if answer.get("reason") else ""
                run.setup_messages.extend(_exchange(request["id"], request["name"], request["arguments"],
                                                    f"The user denied this tool call.{why}"))
                continue
            call = MCPCall(self, request["name"], request["id"], -1)
            call.item["approval_request_id"] = request["id"]
            call.item["arguments"] = call.arguments = request["arguments"]
            call.output_index = run.add_output(call.item)
            run.events.item_added(call.output_index, dict(call.item))
            result = await call.execute(run)
            run.setup_messages.extend(_exchange(request["id"], request["name"], request["arguments"], result.content))

    # -- calls ---------------------------------------------------------------------------------------------
    def functions(self) -> list[dict[str, Any]]:
        out = []
        for t in self.listed:
            function: dict[str, Any] = {"name": t["name"]}
            if t.get("description"):
                function["description"] = t["description"]
            function["parameters"] = t.get("inputSchema") or {"type": "object", "properties": {}}
            out.append({"type": "function", "function": function})
        return out

    def start_call(self, name: str, call_id: str, output_index: int) -> ToolCall:
        if self.needs_approval(name):
            return ApprovalRequest(self, name, call_id, output_index)
        return MCPCall(self, name, call_id, output_index)


class MCPCall(ToolCall):
    def __init__(self, tool: MCPTool, name: str, call_id: str, output_index: int) -> None:
        super().__init__(tool, name, call_id, output_index)
        self.mcp = tool
        self.item = {"type": "mcp_call", "id": new_id("mcp_call"), "server_label": tool.server_label, "name": name,
                     "arguments": "", "output": None, "error": None, "status": "in_progress",
                     "approval_request_id": None}

    def arguments_delta(self, events: EventStream, delta: str) -> None:
        events.mcp_arguments_delta(self.item["id"], self.output_index, delta)

    def close(self, events: EventStream, arguments: str, incomplete: bool) -> None:
        self.item["arguments"] = arguments
        events.mcp_arguments_done(self.item["id"], self.output_index, arguments)
        super().close(events, arguments, incomplete)

    async def execute(self, run: ToolRun) -> ToolResult:
        events, item = run.events, self.item
        events.tool_status("mcp_call", "in_progress", item["id"], self.output_index)
        try:
            arguments = self.parsed_arguments()
            result = await mcp_client.call_tool(run.env, self.mcp.server, self.name, arguments, self.mcp.listed)
        except InvalidArguments as exc:
            return self._failed(run, {"type": "mcp_protocol_error", "code": -32602, "message": str(exc)}, str(exc))
        except MCPFailure as exc:
            return self._failed(run, exc.error, exc.message)
        parts = _content_parts(result.get("content") or [])
        text = "\n".join(p["text"] for p in parts)
        if result.get("isError"):
            return self._failed(run, {"type": "mcp_tool_execution_error", "content": result.get("content") or []},
                                text or "The tool reported an error.")
        item["output"] = text
        item["status"] = "completed"
        events.tool_status("mcp_call", "completed", item["id"], self.output_index)
        events.item_done(self.output_index, item)
        return ToolResult(parts or "")

    def _failed(self, run: ToolRun, error: dict[str, Any], message: str) -> ToolResult:
        self.item["error"] = error
        self.item["status"] = "failed"
        run.events.tool_status("mcp_call", "failed", self.item["id"], self.output_index)
        run.events.item_done(self.output_index, self.item)
        return ToolResult(f"Error: {message}")


class ApprovalRequest(ToolCall):
    """The model wants a tool that needs the user's approval: an `mcp_approval_request` item ends the response."""

    awaits_client: ClassVar[bool] = True

    def __init__(self, tool: MCPTool, name: str, call_id: str, output_index: int) -> None:
        super().__init__(tool, name, call_id, output_index)
        self.item = {"type": "mcp_approval_request", "id": new_id("mcp_approval_request"),
                     "server_label": tool.server_label, "name": name, "arguments": ""}

    def close(self, events: EventStream, arguments: str, incomplete: bool) -> None:
        self.arguments = arguments
        self.item["arguments"] = arguments
        events.item_done(self.output_index, self.item)


# -- helpers ------------------------------------------------------------------------------------------


def _tool_names(value: Any, where: str, *, allow_list: bool) -> frozenset[str] | None:
    """`allowed_tools` / an approval filter: a list of names or `{"tool_names": [...]}` (None: no filter)."""
    if value is None:
        return None
    names = value.get("tool_names") if isinstance(value, dict) else value if allow_list else None
    if isinstance(value, dict) and names is None:
        return None  # a filter without tool_names (e.g. only read_only): no name filter
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidRequest(f"Invalid value for '{where}': expected a list of tool names or "
                             "{\"tool_names\": [...]}.", param=where, code="invalid_value")
    return frozenset(names)


def _approval(value: Any, where: str) -> tuple[frozenset[str] | None, frozenset[str] | None, bool]:
    """require_approval -> (always, never, default). The API's default is "always"."""
    if value is None or value == "always":
        return None, None, True
    if value == "never":
        return None, None, False
    if isinstance(value, dict) and set(value) <= {"always", "never"}:
        always = _tool_names(value.get("always"), f"{where}.always", allow_list=False)
        never = _tool_names(value.get("never"), f"{where}.never", allow_list=False)
        # tools named in neither list need approval, as with "always"
        return always, never, True
    raise InvalidRequest(f"Invalid value for '{where}': expected 'always', 'never' or an object with 'always' "
                         "and/or 'never' tool filters.", param=where, code="invalid_value")


def _to_item_tool(tool: dict[str, Any]) -> dict[str, Any]:
    return {"name": tool["name"], "description": tool.get("description"),
            "input_schema": tool.get("inputSchema") or {"type": "object", "properties": {}},
            "annotations": tool.get("annotations")}


def _from_item_tool(tool: dict[str, Any]) -> dict[str, Any]:
    out = {"name": tool["name"], "description": tool.get("description"), "inputSchema": tool.get("input_schema")}
    return {k: v for k, v in out.items() if v is not None}


def _content_parts(content: list[Any]) -> list[dict[str, Any]]:
    """MCP content -> chat text parts (images and resources described as text)."""
    parts = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            parts.append({"type": "text", "text": block["text"]})
        elif block.get("type") == "resource" and isinstance(block.get("resource"), dict) \
                and isinstance(block["resource"].get("text"), str):
            parts.append({"type": "text", "text": block["resource"]["text"]})
        else:
            parts.append({"type": "text", "text": json.dumps({k: v for k, v in block.items() if k != "data"})})
    return parts


def _exchange(call_id: str, name: str, arguments: str, content: Any) -> list[dict[str, Any]]:
    """An assistant tool call and its result, as chat messages."""
    return [{"role": "assistant", "content": "", "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}]},
            {"role": "tool", "tool_call_id": call_id, "content": content}]


# -- items as input and in history ------------------------------------------------------------------


def _normalize_list_tools(item: dict[str, Any], where: str) -> dict[str, Any]:
    label = require_str(item, "server_label", where)
    tools = item.get("tools")
    if not isinstance(tools, list) or not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tools):
        raise InvalidRequest(f"Invalid value for '{where}.tools': expected a list of tools with names.",
                             param=f"{where}.tools", code="invalid_value")
    out = {"type": "mcp_list_tools", "id": item.get("id") or new_id("mcp_list_tools"), "server_label": label,
           "tools": tools}
    if item.get("error") is not None:
        out["error"] = item["error"]
    return out


def _normalize_call(item: dict[str, Any], where: str) -> dict[str, Any]:
    out = {"type": "mcp_call", "id": item.get("id") or new_id("mcp_call"),
           "server_label": require_str(item, "server_label", where), "name": require_str(item, "name", where),
           "arguments": item.get("arguments") if isinstance(item.get("arguments"), str) else "{}",
           "output": optional(item, "output", where, str, "a string"), "error": item.get("error"),
           "status": item.get("status") or "completed",
           "approval_request_id": optional(item, "approval_request_id", where, str, "a string")}
    return out


def _normalize_approval_request(item: dict[str, Any], where: str) -> dict[str, Any]:
    return {"type": "mcp_approval_request", "id": require_str(item, "id", where),
            "server_label": require_str(item, "server_label", where), "name": require_str(item, "name", where),
            "arguments": item.get("arguments") if isinstance(item.get("arguments"), str) else "{}"}


def _normalize_approval_response(item: dict[str, Any], where: str) -> dict[str, Any]:
    request_id = require_str(item, "approval_request_id", where)
    approve = item.get("approve")
    if not isinstance(approve, bool):
        raise InvalidRequest(f"Missing required parameter: '{where}.approve' (a boolean).", param=f"{where}.approve",
                             code="missing_required_parameter")
    return {"type": "mcp_approval_response", "id": item.get("id") or new_id("mcp_approval_response"),
            "approval_request_id": request_id, "approve": approve,
            "reason": optional(item, "reason", where, str, "a string")}


def _call_messages(item: dict[str, Any], messages: list[dict[str, Any]]) -> None:
    error = item.get("error")
    if item.get("output") is not None:
        content = item["output"]
    elif isinstance(error, dict):
        content = f"Error: {error.get('message') or json.dumps(error.get('content'))}"
    elif error:
        content = f"Error: {error}"
    else:
        content = "The tool call did not run."
    messages.extend(_exchange(item["id"], item["name"], item["arguments"], content))


def _nothing(item: dict[str, Any], messages: list[dict[str, Any]]) -> None:
    """Listings and approval requests/answers: the model sees the calls that ran (or were refused) instead."""


item_kind("mcp_list_tools", _normalize_list_tools, _nothing)
item_kind("mcp_call", _normalize_call, _call_messages)
item_kind("mcp_approval_request", _normalize_approval_request, _nothing)
item_kind("mcp_approval_response", _normalize_approval_response, _nothing)
