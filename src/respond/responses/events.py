"""The stream event builder: every Responses stream event is made here, as a plain dict.

One `EventStream` per response. It numbers events (`sequence_number`, from 0, strictly increasing) and
knows each event's exact shape. The turn loop calls the methods below in order; whoever consumes the
events (SSE, WebSocket, or nobody for non-streamed requests) serializes them once.
"""

from __future__ import annotations

from typing import Any

Event = dict[str, Any]


class EventStream:
    __slots__ = ("_seq", "enabled", "events")

    def __init__(self, enabled: bool = True) -> None:
        self._seq = 0
        self.enabled = enabled  # non-streamed requests keep no events: nobody reads them
        self.events: list[Event] = []

    def _emit(self, event: Event) -> Event:
        event["sequence_number"] = self._seq
        self._seq += 1
        if self.enabled:
            self.events.append(event)
        return event

    def drain(self) -> list[Event]:
        """Events produced since the last drain (the loop yields them to the client)."""
        out, self.events = self.events, []
        return out

    # -- response lifecycle ------------------------------------------------------------------------------
    def response_event(self, kind: str, response: dict[str, Any]) -> Event:
        """response.created / in_progress / completed / incomplete / failed, carrying a snapshot."""
        return self._emit({"type": f"response.{kind}", "response": response})

    def error(self, message: str, code: str | None, param: str | None = None,
              error_type: str = "server_error") -> Event:
        # OpenAI's SDK reads code/message/param at the top level; the Open Responses schema nests them
        # under "error". Both are present so either kind of client understands the event.
        return self._emit({"type": "error", "code": code, "message": message, "param": param,
                           "error": {"type": error_type, "code": code, "message": message, "param": param}})

    # -- output items ------------------------------------------------------------------------------------
    def item_added(self, output_index: int, item: dict[str, Any]) -> Event:
        return self._emit({"type": "response.output_item.added", "output_index": output_index, "item": item})

    def item_done(self, output_index: int, item: dict[str, Any]) -> Event:
        return self._emit({"type": "response.output_item.done", "output_index": output_index, "item": item})

    # -- content parts (message text / refusal, reasoning text) -------------------------------------------
    def part_added(self, item_id: str, output_index: int, content_index: int, part: dict[str, Any]) -> None:
        self._emit({"type": "response.content_part.added", "item_id": item_id, "output_index": output_index,
                    "content_index": content_index, "part": part})

    def part_done(self, item_id: str, output_index: int, content_index: int, part: dict[str, Any]) -> None:
        self._emit({"type": "response.content_part.done", "item_id": item_id, "output_index": output_index,
                    "content_index": content_index, "part": part})

    def text_delta(self, item_id: str, output_index: int, content_index: int, delta: str,
                   logprobs: list[dict[str, Any]] | None = None) -> None:
        self._emit({"type": "response.output_text.delta", "item_id": item_id, "output_index": output_index,
                    "content_index": content_index, "delta": delta, "logprobs": logprobs or []})

    def text_done(self, item_id: str, output_index: int, content_index: int, text: str,
                  logprobs: list[dict[str, Any]]) -> None:
        self._emit({"type": "response.output_text.done", "item_id": item_id, "output_index": output_index,
                    "content_index": content_index, "text": text, "logprobs": logprobs})

    def annotation_added(self, item_id: str, output_index: int, content_index: int, annotation_index: int,
                         annotation: dict[str, Any]) -> None:
        self._emit({"type": "response.output_text.annotation.added", "item_id": item_id,
                    "output_index": output_index, "content_index": content_index,
                    "annotation_index": annotation_index, "annotation": annotation})

    def refusal_delta(self, item_id: str, output_index: int, content_index: int, delta: str) -> None:
        self._emit({"type": "response.refusal.delta", "item_id": item_id, "output_index": output_index,
                    "content_index": content_index, "delta": delta})

    def refusal_done(self, item_id: str, output_index: int, content_index: int, refusal: str) -> None:
        self._emit({"type": "response.refusal.done", "item_id": item_id, "output_index": output_index,
                    "content_index": content_index, "refusal": refusal})

    def reasoning_delta(self, item_id: str, output_index: int, content_index: int, delta: str) -> None:
        self._emit({"type": "response.reasoning_text.delta", "item_id": item_id, "output_index": output_index,
                    "content_index": content_index, "delta": delta})

    def reasoning_done(self, item_id: str, output_index: int, content_index: int, text: str) -> None:
        self._emit({"type": "response.reasoning_text.done", "item_id": item_id, "output_index": output_index,
                    "content_index": content_index, "text": text})

    # -- function calls --------------------------------------------------------------------------------
    def arguments_delta(self, item_id: str, output_index: int, delta: str) -> None:
        self._emit({"type": "response.function_call_arguments.delta", "item_id": item_id,
                    "output_index": output_index, "delta": delta})

    def arguments_done(self, item_id: str, output_index: int, name: str, arguments: str) -> None:
        self._emit({"type": "response.function_call_arguments.done", "item_id": item_id,
                    "output_index": output_index, "name": name, "arguments": arguments})

    # -- custom tool calls (free-form input) -------------------------------------------------------------
    def custom_input_delta(self, item_id: str, output_index: int, delta: str) -> None:
        self._emit({"type": "response.custom_tool_call_input.delta", "item_id": item_id,
                    "output_index": output_index, "delta": delta})

    def custom_input_done(self, item_id: str, output_index: int, text: str) -> None:
        self._emit({"type": "response.custom_tool_call_input.done", "item_id": item_id,
                    "output_index": output_index, "input": text})

    # -- server-side tools -----------------------------------------------------------------------------
    def tool_status(self, kind: str, phase: str, item_id: str, output_index: int) -> None:
        """`response.<kind>.<phase>`: a server tool's progress, all of one shape. `kind` is the item type
        (mcp_call, mcp_list_tools, file_search_call, web_search_call...), `phase` one of in_progress,
        searching, completed, failed (whatever the kind's events are)."""
        self._emit({"type": f"response.{kind}.{phase}", "item_id": item_id, "output_index": output_index})

    def mcp_arguments_delta(self, item_id: str, output_index: int, delta: str) -> None:
        self._emit({"type": "response.mcp_call_arguments.delta", "item_id": item_id, "output_index": output_index,
                    "delta": delta})

    def mcp_arguments_done(self, item_id: str, output_index: int, arguments: str) -> None:
        self._emit({"type": "response.mcp_call_arguments.done", "item_id": item_id, "output_index": output_index,
                    "arguments": arguments})
