"""The tool interface: what one tool kind implements, and what the loop gives it.

A tool kind is one module in this package. It defines a `Tool` subclass (one per entry of the request's
`tools`), registered for its `type` strings with `@tool_kind(...)`, a `ToolCall` subclass (one per call the
model makes) and, for the item types it owns, `ItemKind`s registered with `item_kind(...)`. See
docs/tools.md ("Adding a tool kind") and /work/coord/SEAM.md.

Lifecycle of one response:

1. `prepare` builds a `ToolSet` (toolset.py): `Tool.parse(raw, where, env)` validates each request tool
   (InvalidRequest naming `tools[i].field`) -- before anything streams.
2. Before the first model turn the loop awaits `Tool.setup(run)` for every tool: e.g. MCP lists the
   server's tools (an `mcp_list_tools` item) or reuses the chain's listing.
3. Each model turn is offered `Tool.functions()` (chat-completions function definitions). When the model
   starts a call, the assembler asks the ToolSet for the owning tool and calls `Tool.start_call(...)`,
   then drives the returned `ToolCall`: `announce` (output_item.added), `arguments_delta`, `close`.
4. After the turn the loop runs every server-side call (`await call.execute(run)`), concurrently when
   `parallel_tool_calls` allows, each returning a `ToolResult` (the chat messages telling the model what
   happened). Calls beyond `max_tool_calls` get `call.skip(message)` instead.
5. The loop feeds the results back and runs another model turn, until the model answers, a call awaits
   the client (`ToolCall.awaits_client`: function calls, MCP approval requests), or a bound is hit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from respond.errors import APIError, InvalidRequest
from respond.storage.tables import DEFAULT_OWNER

if TYPE_CHECKING:
    from respond.config import Config
    from respond.inference.router import Router
    from respond.recording.recorder import Recorder
    from respond.responses.events import EventStream
    from respond.storage.engine import Database

Annotator = Callable[[str], list[dict[str, Any]]]


@dataclass
class ToolEnv:
    """What tools get from the app (one per app): the configuration, the Recorder every outbound call goes
    through, the model router (e.g. embeddings), the database. `state` is for a tool kind's per-app objects
    (clients, caches), keyed by kind. `router`/`db` are None only in unit tests that build a bare env."""

    config: Config
    recorder: Recorder
    router: Router | None = None
    db: Database | None = None
    state: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def default(cls) -> ToolEnv:
        from respond.config import Config
        from respond.recording.recorder import Recorder
        return cls(config=Config(), recorder=Recorder("live", None))


@dataclass
class ToolRun:
    """One response as tools see it, while it runs."""

    env: ToolEnv
    events: EventStream
    response: dict[str, Any]
    # The chain's items before this response (history + this request's input), canonical form.
    context_items: list[dict[str, Any]]
    # This request's own input items (the tail of context_items).
    input_items: list[dict[str, Any]] = field(default_factory=list)
    # Who the response acts for: every stored object a tool reads (vector stores, files) is filtered by it.
    owner: str = DEFAULT_OWNER
    # The request's `include` values (e.g. "file_search_call.results", "web_search_call.action.sources").
    include: frozenset[str] = frozenset()
    # Annotators: called with the full text of every output_text part the model produces after they are
    # added; they return annotations (file_citation, url_citation...) to attach to that part.
    annotators: list[Annotator] = field(default_factory=list)
    # Chat messages to append after the history before the first model turn (setup may add some).
    setup_messages: list[dict[str, Any]] = field(default_factory=list)

    def add_output(self, item: dict[str, Any]) -> int:
        """Append an item to the response's output (e.g. an `mcp_list_tools` made during setup) and return
        its output_index. The caller emits its events."""
        self.response["output"].append(item)
        return len(self.response["output"]) - 1

    def add_annotator(self, annotator: Annotator) -> None:
        self.annotators.append(annotator)


@dataclass
class ToolResult:
    """What running a call produced for the model: the `tool` message content (str, or chat content parts)."""

    content: str | list[dict[str, Any]]


class ToolCall:
    """One call the model made to a tool, from its first streamed chunk to its final output item.

    `item` is the output item (mutated in place: the response's output holds the same dict). The default
    methods make a call whose arguments stream as `response.<kind>_arguments.delta` is not assumed: a kind
    overrides what it needs. `call_id` is the upstream's tool-call id, used in the chat messages fed back.
    """

    awaits_client: ClassVar[bool] = False  # the response ends with this item; the client answers it
    # Set by `close` when the call must not go on (e.g. input that breaks a custom tool's grammar): after
    # the turn, the response ends `failed` with this error (the call's item stays in the output).
    error: APIError | None = None

    def __init__(self, tool: Tool | None, name: str, call_id: str, output_index: int) -> None:
        self.tool = tool
        self.name = name  # the tool's own name for it (not the chat function name, which may be mangled)
        self.call_id = call_id
        self.output_index = output_index
        self.arguments = ""
        self.item: dict[str, Any] = {}

    # -- streaming (called by the TurnAssembler) -------------------------------------------------------
    def announce(self, events: EventStream) -> None:
        """The model started this call: emit `response.output_item.added` with the in-progress item."""
        events.item_added(self.output_index, dict(self.item))

    def arguments_delta(self, events: EventStream, delta: str) -> None:
        """A piece of the call's JSON arguments (default: no event; the arguments are kept in `close`)."""

    def close(self, events: EventStream, arguments: str, incomplete: bool) -> None:
        """The model finished this call (or the turn ended early: `incomplete`). Server calls stay
        in progress until `execute`; when `incomplete`, they are never executed and must end here
        (`output_item.done`)."""
        self.arguments = arguments
        if incomplete:
            self.item["status"] = "incomplete"
            events.item_done(self.output_index, self.item)

    # -- running (called by the loop, server-side calls only) -------------------------------------------
    async def execute(self, run: ToolRun) -> ToolResult:
        """Run the call: emit progress events, finish `item` (and `output_item.done`), return the result."""
        raise NotImplementedError

    def skip(self, run: ToolRun, message: str) -> ToolResult:
        """Not run (a bound was hit): end the item `incomplete` and tell the model `message`."""
        self.item["status"] = "incomplete"
        run.events.item_done(self.output_index, self.item)
        return ToolResult(message)

    # -- chat messages ---------------------------------------------------------------------------------
    def chat_call(self, chat_name: str) -> dict[str, Any]:
        """The assistant message's `tool_calls` entry for this call."""
        return {"id": self.call_id, "type": "function", "function": {"name": chat_name, "arguments": self.arguments}}

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as an object; InvalidArguments when the model produced something else."""
        try:
            value = json.loads(self.arguments) if self.arguments.strip() else {}
        except ValueError:
            raise InvalidArguments(f"The arguments are not valid JSON: {self.arguments[:200]!r}") from None
        if not isinstance(value, dict):
            raise InvalidArguments("The arguments must be a JSON object.")
        return value


class InvalidArguments(ValueError):
    """The model's arguments for a call cannot be used."""


class Tool:
    """One entry of the request's `tools`, validated. Subclasses set `kind` and implement the hooks."""

    kind: ClassVar[str] = ""  # the canonical `type` (the registry may map several type strings to a class)

    @classmethod
    def parse(cls, raw: dict[str, Any], where: str, env: ToolEnv) -> Tool:
        """Validate the request's tool object (`where` is e.g. "tools[2]"), raising InvalidRequest."""
        raise NotImplementedError

    def echo(self) -> dict[str, Any]:
        """The tool as the response's `tools` shows it (never with secrets)."""
        raise NotImplementedError

    async def check_access(self, env: ToolEnv, owner: str) -> None:
        """In prepare, before anything streams: every stored object this tool names (e.g. file_search's
        vector stores) must belong to `owner`; raise the very NotFound an unknown id gets otherwise (another
        owner's object behaves exactly like an absent one). Default: nothing to check."""

    async def setup(self, run: ToolRun) -> None:
        """Before the first model turn (e.g. list an MCP server's tools). Default: nothing."""

    def functions(self) -> list[dict[str, Any]]:
        """The chat-completions tool definitions offered to the model, by this tool's own names:
        `[{"type": "function", "function": {"name", "description", "parameters", ...}}]`. The ToolSet renames
        (`<label>__<name>`) when two tools offer the same name."""
        return []

    def label(self) -> str:
        """A prefix that tells this tool's functions apart from another tool's (name clashes)."""
        return self.kind

    def matches_choice(self, choice: dict[str, Any]) -> bool:
        """Whether a `tool_choice` object of this tool's type designates this tool (validated in prepare)."""
        return choice.get("type") == self.kind

    def chosen_functions(self, choice: dict[str, Any]) -> list[str]:
        """After setup: which of this tool's function names a matching `tool_choice` forces."""
        return [f["function"]["name"] for f in self.functions()]

    def start_call(self, name: str, call_id: str, output_index: int) -> ToolCall:
        """The model started calling `name` (one of this tool's own function names)."""
        raise NotImplementedError


# -- helpers for parse() ------------------------------------------------------------------------------

def require_str(raw: dict[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if value is None:
        raise InvalidRequest(f"Missing required parameter: '{where}.{key}'.", param=f"{where}.{key}",
                             code="missing_required_parameter")
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"Invalid value for '{where}.{key}': expected a non-empty string.",
                             param=f"{where}.{key}", code="invalid_value")
    return value


def optional(raw: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = raw.get(key)
    if value is not None and not isinstance(value, kind):
        raise InvalidRequest(f"Invalid type for '{where}.{key}': expected {what}.", param=f"{where}.{key}",
                             code="invalid_type")
    return value
