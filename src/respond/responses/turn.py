"""One model turn: chat-completion chunks in, output items and stream events out.

`TurnAssembler.feed(chunk)` is called for every upstream chunk. It opens and closes output items as the
model switches between reasoning, text, refusal and tool calls, emits the matching events through the
`EventStream`, and accumulates the final items. Parallel tool calls whose argument deltas interleave across
chunks are tracked by their chunk `index`, each as its own `function_call` item.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from respond.ids import new_call_id, new_id
from respond.responses.events import EventStream
from respond.responses.items import output_text_part
from respond.responses.tools import ToolCall, ToolSet
from respond.responses.tools.base import Annotator
from respond.responses.tools.function import FunctionCall


class _Message:
    """An assistant message being streamed: its parts are text or refusal, one open at a time."""

    __slots__ = ("item", "output_index", "chunks", "part_kind", "logprobs")

    def __init__(self, output_index: int) -> None:
        self.item: dict[str, Any] = {"type": "message", "id": new_id("message"), "status": "in_progress",
                                     "role": "assistant", "content": []}
        self.output_index = output_index
        self.chunks: list[str] = []
        self.part_kind: str | None = None
        self.logprobs: list[dict[str, Any]] = []


class _Call:
    """A tool call being streamed; `handler` (the owning tool's ToolCall) exists once its name is known."""

    __slots__ = ("output_index", "call_id", "name", "chunks", "handler")

    def __init__(self, output_index: int, call_id: str, name: str) -> None:
        self.output_index = output_index
        self.call_id = call_id
        self.name = name
        self.chunks: list[str] = []
        self.handler: ToolCall | None = None


class _Reasoning:
    __slots__ = ("item", "output_index", "chunks")

    def __init__(self, output_index: int) -> None:
        self.item: dict[str, Any] = {"type": "reasoning", "id": new_id("reasoning"), "summary": [],
                                     "content": [], "status": "in_progress"}
        self.output_index = output_index
        self.chunks: list[str] = []


class TurnAssembler:
    """Accumulates one streamed chat completion into Responses output items, emitting events as it goes."""

    def __init__(self, events: EventStream, first_output_index: int, tools: ToolSet | None = None,
                 annotators: list[Annotator] | None = None,
                 seal: Callable[[dict[str, Any]], str] | None = None) -> None:
        self.events = events
        self.seal = seal  # gives finished reasoning items their encrypted_content
        self.tools = tools
        self.annotators = annotators  # tools' citation hooks, applied to each finished output_text part
        self.calls: list[ToolCall] = []  # this turn's tool calls, in the order the model started them
        self.next_index = first_output_index
        self.items: list[tuple[int, dict[str, Any]]] = []  # (output_index, finished item)
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.service_tier: str | None = None  # the tier the upstream says served the turn
        self._message: _Message | None = None
        self._reasoning: _Reasoning | None = None
        self._calls: list[_Call] = []  # in the order the model started them
        self._by_index: dict[int, _Call] = {}  # the call each upstream tool_calls `index` currently feeds
        self.saw_choice = False

    # -- feeding --------------------------------------------------------------------------------------
    def feed(self, chunk: dict[str, Any]) -> None:
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
            self.service_tier = chunk.get("service_tier") or self.service_tier
        choices = chunk.get("choices")
        if not choices:
            return
        choice = choices[0]
        self.saw_choice = True
        delta = choice.get("delta") or {}
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning:
            self._on_reasoning(reasoning)
        content = delta.get("content")
        if content:
            logprobs = choice.get("logprobs")
            self._on_text("output_text", content, _map_logprobs(logprobs.get("content")) if logprobs else None)
        refusal = delta.get("refusal")
        if refusal:
            self._on_text("refusal", refusal, None)
        tool_calls = delta.get("tool_calls")
        if tool_calls:
            for call in tool_calls:
                self._on_tool_call(call)
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
            # read once per turn (not per chunk): OpenAI repeats it on every chunk
            self.service_tier = chunk.get("service_tier") or self.service_tier

    def _take_index(self) -> int:
        index = self.next_index
        self.next_index += 1
        return index

    def _on_reasoning(self, text: str) -> None:
        r = self._reasoning
        if r is None:
            r = self._reasoning = _Reasoning(self._take_index())
            self.events.item_added(r.output_index, {"type": "reasoning", "id": r.item["id"], "summary": [],
                                                    "content": [], "status": "in_progress"})
            self.events.part_added(r.item["id"], r.output_index, 0, {"type": "reasoning_text", "text": ""})
        r.chunks.append(text)
        self.events.reasoning_delta(r.item["id"], r.output_index, 0, text)

    def _close_reasoning(self) -> None:
        r = self._reasoning
        if r is None:
            return
        self._reasoning = None
        text = "".join(r.chunks)
        part = {"type": "reasoning_text", "text": text}
        self.events.reasoning_done(r.item["id"], r.output_index, 0, text)
        self.events.part_done(r.item["id"], r.output_index, 0, part)
        r.item["content"] = [part]
        r.item["status"] = "completed"
        if self.seal is not None:
            r.item["encrypted_content"] = self.seal(r.item)
        self.events.item_done(r.output_index, r.item)
        self.items.append((r.output_index, r.item))

    def _on_text(self, kind: str, text: str, logprobs: list[dict[str, Any]] | None) -> None:
        self._close_reasoning()
        m = self._message
        if m is None:
            m = self._message = _Message(self._take_index())
            self.events.item_added(m.output_index, {"type": "message", "id": m.item["id"], "status": "in_progress",
                                                    "role": "assistant", "content": []})
        if m.part_kind != kind:
            self._close_part(m)
            m.part_kind = kind
            fresh = output_text_part() if kind == "output_text" else {"type": "refusal", "refusal": ""}
            self.events.part_added(m.item["id"], m.output_index, len(m.item["content"]), fresh)
        m.chunks.append(text)
        content_index = len(m.item["content"])
        if kind == "output_text":
            if logprobs:
                m.logprobs.extend(logprobs)
            self.events.text_delta(m.item["id"], m.output_index, content_index, text, logprobs)
        else:
            self.events.refusal_delta(m.item["id"], m.output_index, content_index, text)

    def _close_part(self, m: _Message) -> None:
        if m.part_kind is None:
            return
        text = "".join(m.chunks)
        content_index = len(m.item["content"])
        if m.part_kind == "output_text":
            part = output_text_part(text, m.logprobs)
            if self.annotators:
                self._annotate(m, content_index, part)
            self.events.text_done(m.item["id"], m.output_index, content_index, text, m.logprobs)
            # logprobs travel on the text deltas, `.done` and the finished item; OpenAI's content_part.done
            # carries the part with `logprobs: []`
            shown = {**part, "logprobs": []} if m.logprobs else part
        else:
            part = shown = {"type": "refusal", "refusal": text}
            self.events.refusal_done(m.item["id"], m.output_index, content_index, text)
        self.events.part_done(m.item["id"], m.output_index, content_index, shown)
        m.item["content"].append(part)
        m.chunks, m.part_kind, m.logprobs = [], None, []

    def _annotate(self, m: _Message, content_index: int, part: dict[str, Any]) -> None:
        for annotator in self.annotators or ():
            for annotation in annotator(part["text"]):
                self.events.annotation_added(m.item["id"], m.output_index, content_index,
                                             len(part["annotations"]), annotation)
                part["annotations"].append(annotation)

    def _close_message(self, status: str) -> None:
        m = self._message
        if m is None:
            return
        self._message = None
        self._close_part(m)
        m.item["status"] = status
        self.events.item_done(m.output_index, m.item)
        self.items.append((m.output_index, m.item))

    def _continued_call(self, index: int | None, call_id: str | None, name: str | None) -> _Call | None:
        """The call a tool_calls delta continues, or None when it starts a new one.

        Backends differ: most number parallel calls with `index`; some reuse index 0 for every call (a new
        `id` then starts a new call); some send no index at all (a new id or name starts a new call).
        """
        call = self._by_index.get(index) if index is not None else (self._calls[-1] if self._calls else None)
        if call is None:
            return None
        if call_id and call.call_id and call_id != call.call_id:
            return None
        if index is None and name and call.name:
            return None
        return call

    def _on_tool_call(self, delta: dict[str, Any]) -> None:
        function = delta.get("function") or {}
        call_id, name, index = delta.get("id"), function.get("name"), delta.get("index")
        call = self._continued_call(index, call_id, name)
        if call is None:
            self._close_reasoning()
            self._close_message("completed")
            call = _Call(self._take_index(), call_id or "", name or "")
            self._calls.append(call)
            if index is not None:
                self._by_index[index] = call
        else:
            if call_id and not call.call_id:
                call.call_id = call_id
            if name and not call.name:
                call.name = name
        if call.handler is None and call.name:
            self._start(call)
            for earlier in call.chunks:
                call.handler.arguments_delta(self.events, earlier)  # type: ignore[union-attr]
        arguments = function.get("arguments")
        if arguments:
            call.chunks.append(arguments)
            if call.handler is not None:
                call.handler.arguments_delta(self.events, arguments)

    def _start(self, call: _Call) -> None:
        """The call's name is known: hand it to the tool that owns the name, which announces its item."""
        call.name = call.name or "unknown_function"
        call.call_id = call.call_id or new_call_id()
        if self.tools is None:
            call.handler = FunctionCall(None, call.name, call.call_id, call.output_index)
        else:
            call.handler = self.tools.start_call(call.name, call.call_id, call.output_index)
        call.handler.announce(self.events)

    # -- finishing ------------------------------------------------------------------------------------
    def finish(self, incomplete: bool = False) -> list[dict[str, Any]]:
        """Close every open item (in output order) and return this turn's items in output order."""
        status = "incomplete" if incomplete else "completed"
        self._close_reasoning()
        self._close_message(status)
        for call in self._calls:
            if call.handler is None:
                self._start(call)
            handler = call.handler
            assert handler is not None
            handler.close(self.events, "".join(call.chunks), incomplete)
            self.items.append((call.output_index, handler.item))
            self.calls.append(handler)
        self._calls, self._by_index = [], {}
        self.items.sort(key=lambda pair: pair[0])
        return [item for _, item in self.items]



def _map_logprobs(entries: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    if not entries:
        return None
    return [{"token": e.get("token", ""), "logprob": e.get("logprob", 0.0), "bytes": e.get("bytes") or [],
             "top_logprobs": [{"token": t.get("token", ""), "logprob": t.get("logprob", 0.0),
                               "bytes": t.get("bytes") or []} for t in e.get("top_logprobs") or []]}
            for e in entries]
