"""The Responses service: create (streamed or not), retrieve, list, delete, input items, compact, count.

The HTTP and WebSocket layers call only this. `prepare` does every check that can fail with a client
error *before* anything is streamed, so bad input always gets a plain HTTP error envelope.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from respond.errors import InvalidRequest, not_found, shorten
from respond.files.resolve import has_file_refs, resolve_file_parts
from respond.ids import new_id
from respond.inference.router import Router
from respond.responses import context, objects, tokens
from respond.responses.compact import compact_items
from respond.responses.events import Event, EventStream
from respond.responses.history import History, TurnHistory, conversation_param
from respond.responses.items import normalize_input
from respond.responses.loop import ResponseRun, run_response
from respond.responses.request import CreateResponseRequest
from respond.responses.sealing import ReasoningSealer, open_reasoning
from respond.responses.tools import ToolEnv, ToolRun, ToolSet
from respond.storage.conversations_repo import ConversationStore
from respond.storage.responses_repo import ResponseStore, StoredResponse
from respond.storage.runs_repo import RunStore

if TYPE_CHECKING:
    from respond.responses.runs import Runs

log = logging.getLogger("respond.responses")


@dataclass
class LocalResponses:
    """Responses kept by one WebSocket connection: store=false ones are continuable only there.

    Only the most recent `limit` are kept (stored ones are in the database anyway).
    """

    items: dict[str, StoredResponse] = field(default_factory=dict)
    limit: int = 64

    def keep(self, stored: StoredResponse) -> None:
        self.items[stored.response["id"]] = stored
        while len(self.items) > self.limit:
            self.items.pop(next(iter(self.items)))


@dataclass
class Prepared:
    run: ResponseRun
    request: CreateResponseRequest
    input_items: list[dict[str, Any]]
    context_items: list[dict[str, Any]]
    local: LocalResponses | None
    owner: str
    history: TurnHistory
    streamed: bool = True
    finished: bool = False


class ResponseService:
    def __init__(self, router: Router, store: ResponseStore, history: History | None = None,
                 tool_env: ToolEnv | None = None, sealer: ReasoningSealer | None = None) -> None:
        self.router = router
        self.store = store
        self.history = history or History(store, ConversationStore(store.db))
        self.tool_env = tool_env or ToolEnv.default()
        self._sealer = sealer
        # Responses running right now (stored ones become retrievable before they finish, as with OpenAI;
        # kept in memory rather than written twice: the one write happens before the terminal event).
        self._running: dict[str, dict[str, Any]] = {}
        self._running_owner: dict[str, str] = {}
        self.runs: Runs | None = None  # the run lifecycle (responses/runs.py), set when the app has one

    @property
    def sealer(self) -> ReasoningSealer:
        """Seals reasoning items' encrypted_content (made on first use when not given)."""
        if self._sealer is None:
            config = self.tool_env.config
            self._sealer = ReasoningSealer.from_config(config.reasoning_key, config.data_path)
        return self._sealer

    def _input(self, req: CreateResponseRequest) -> list[dict[str, Any]]:
        """The request's input items, canonical; reasoning items sent back by store=false clients opened."""
        items = normalize_input(req.input)
        if any(i["type"] == "reasoning" and i.get("encrypted_content") is not None for i in items):
            open_reasoning(self.sealer, items)
        return items

    # -- create ----------------------------------------------------------------------------------------
    async def prepare(self, req: CreateResponseRequest, *, stream: bool, owner: str,
                      local: LocalResponses | None = None, queued: dict[str, Any] | None = None) -> Prepared:
        """`queued`: the stored queued response a background worker is about to run (its id, its events)."""
        if req.background and (req.store is False or self.runs is None or local is not None):
            raise InvalidRequest("Background mode requires 'store': true." if req.store is False else
                                 "Background responses are not available here.", param="background",
                                 code="invalid_value" if req.store is False else "unsupported_parameter")
        if req.prompt is not None:
            raise InvalidRequest("Stored prompt templates are not supported by this server; send 'instructions' "
                                 "and 'input' instead.", param="prompt", code="unsupported_parameter")
        conversation_id = conversation_param(req)
        provider, upstream_model = await self.router.aresolve(req.model)
        model_id = f"{provider.id}/{upstream_model}"
        if self.router.is_embedding_model(model_id):
            raise InvalidRequest(f"The model '{model_id}' is an embedding model and cannot create responses.",
                                 param="model", code="model_not_supported")
        response_format = context.response_format(req)  # validated before anything runs
        tools = ToolSet.build(req.tools, req.tool_choice, self.tool_env)
        await tools.check_access(self.tool_env, owner)
        input_items = self._input(req)
        if not input_items and not req.previous_response_id and not conversation_id:
            raise InvalidRequest("Missing required parameter: 'input'.", param="input",
                                 code="missing_required_parameter")
        history = await self._history(req, local, owner)
        context_items = history.items + input_items
        check_tool_pairs(context_items)
        message_items = context_items
        files = self.tool_env.state.get("files")
        if files is not None and has_file_refs(context_items):  # input_file parts naming an uploaded file
            message_items = await resolve_file_parts(context_items, files, owner)
        messages = context.items_to_messages(message_items, req.instructions,
                                              reasoning=provider.config.replay_reasoning)
        response = objects.new_response(req, response_id=queued["id"] if queued else new_id("response"),
                                        model=model_id, tools=tools.echo())
        if queued is not None:
            response["created_at"] = queued["created_at"]
        if conversation_id is not None:
            response["conversation"] = {"id": conversation_id}

        max_tokens_field = provider.config.max_tokens_field

        def make_body(msgs: list[dict[str, Any]], first_turn: bool) -> dict[str, Any]:
            return context.chat_request(req, upstream_model, msgs, tools.chat_tools(first_turn),
                                        tools.chat_tool_choice(first_turn), response_format, max_tokens_field)

        events = EventStream(enabled=stream)
        run = ResponseRun(response=response, provider=provider, messages=messages, make_body=make_body,
                          events=events, truncation_auto=req.truncation == "auto",
                          replay_reasoning=provider.config.replay_reasoning)
        if req.include and "reasoning.encrypted_content" in req.include:
            run.seal_reasoning = self.sealer.seal
        if queued is not None:  # response.created and response.queued went out when it was queued
            run.announce = False
            events.start_at(2)
        if not tools.empty:
            settings = self.tool_env.config.tools
            run.tools = tools
            run.tool_run = ToolRun(env=self.tool_env, events=events, response=response, context_items=context_items,
                                   input_items=input_items, include=frozenset(req.include or ()), owner=owner)
            run.max_tool_calls = req.max_tool_calls
            run.parallel_tool_calls = req.parallel_tool_calls is not False
            run.max_rounds = settings.max_rounds
            run.concurrency = settings.concurrency
        prepared = Prepared(run=run, request=req, input_items=input_items, context_items=context_items,
                            local=local, owner=owner, history=history, streamed=stream)
        run.persist = lambda: self._finish(prepared)  # the loop stores the response before its terminal event
        return prepared

    async def _history(self, req: CreateResponseRequest, local: LocalResponses | None, owner: str) -> TurnHistory:
        return await self.history.load(owner, previous_id=req.previous_response_id,
                                       conversation_id=conversation_param(req), local=local,
                                       running=self._running_owner)

    async def stream(self, prepared: Prepared) -> AsyncIterator[list[Event]]:
        """Run a prepared response, yielding its events in batches; it is stored however the run ends.

        While it runs, a stored response can be retrieved (`in_progress`, output so far).
        """
        response = prepared.run.response
        if response["store"]:
            self._running[response["id"]] = response
            self._running_owner[response["id"]] = prepared.owner
        try:
            # A streamed (or background) response's id is seen in response.created before it ends: its row
            # goes in now so that the id is never lost (GET from any process finds it, a crash ends it failed).
            # A non-streamed client learns the id only from the finished response: no extra write for it.
            if response["store"] and self.runs is not None and (prepared.streamed or response.get("background")):
                await self.runs.started(prepared)
            async with contextlib.aclosing(run_response(prepared.run)) as batches:
                async for batch in batches:
                    if batch:
                        yield batch
        finally:
            if not prepared.finished:  # cancelled before the loop could store it
                if response["status"] == "in_progress":
                    response["status"] = "cancelled"
                await asyncio.shield(self._finish(prepared))
            self._running.pop(response["id"], None)
            self._running_owner.pop(response["id"], None)

    async def create(self, prepared: Prepared) -> dict[str, Any]:
        """Run a prepared response to its end and return the final response object.

        When the upstream rejected the request before any output (a 4xx: invalid image, bad parameter), that
        error is raised instead (the client gets its status and an OpenAI envelope, and, as with OpenAI, no
        response is created: none is stored).
        """
        async for _ in self.stream(prepared):
            pass
        if prepared.run.rejected():
            assert prepared.run.failure is not None
            raise prepared.run.failure
        return prepared.run.response

    async def _finish(self, prepared: Prepared) -> None:
        prepared.finished = True
        response = prepared.run.response
        if prepared.local is not None:
            if response["status"] == "failed" and prepared.request.previous_response_id:
                prepared.local.items.pop(prepared.request.previous_response_id, None)
            elif not response["store"]:
                prepared.local.keep(StoredResponse(response=response, input_items=prepared.input_items,
                                                   context_items=prepared.context_items))
        if (response["store"] or prepared.history.conversation_id is not None) and (
                prepared.streamed or not prepared.run.rejected()):
            await self._save(prepared)
        elif response["store"] and self.runs is not None:  # rejected: as with OpenAI, nothing is kept
            await self.store.delete(response["id"], owner=prepared.owner)
        if log.isEnabledFor(logging.INFO):
            usage = response["usage"] or {}
            error = response["error"] or {}
            log.info("response %s %s model=%s items=%d input_tokens=%s output_tokens=%s%s", response["id"],
                     response["status"], response["model"], len(response["output"]), usage.get("input_tokens"),
                     usage.get("output_tokens"), f" error={error.get('message')!r}" if error else "")

    async def _save(self, prepared: Prepared) -> None:
        response = prepared.run.response
        try:
            finish_run = None
            if response["background"] and self.runs is not None:  # its run row goes with the final save
                def finish_run(conn: Any) -> None:
                    RunStore.finish_in(conn, response["id"])
            await self.history.record(prepared.owner, response, prepared.input_items, prepared.context_items,
                                      prepared.history, also=finish_run)
        except Exception:
            log.exception("could not store response %s", response["id"])

    # -- read / delete ------------------------------------------------------------------------------------
    async def get(self, response_id: str, *, owner: str) -> dict[str, Any]:
        running = self._running.get(response_id)
        if running is not None and self._running_owner.get(response_id) == owner:
            return objects.snapshot(running)
        stored = await self.store.get(response_id, owner=owner)
        if stored is None:
            raise not_found("Response", response_id, param="response_id")
        return stored.response

    async def delete(self, response_id: str, *, owner: str) -> dict[str, Any]:
        if not await self.store.delete(response_id, owner=owner):
            raise not_found("Response", response_id, param="response_id")
        if self.runs is not None:
            await self.runs.store.delete_events(response_id, owner=owner)
        return {"id": response_id, "object": "response.deleted", "deleted": True}

    async def list(self, *, owner: str, after: str | None, limit: int, order: str,
                   model: str | None) -> dict[str, Any]:
        return (await self.store.list(owner=owner, after=after, limit=limit, order=order, model=model)).to_dict()

    async def input_items(self, response_id: str, *, owner: str, after: str | None, before: str | None,
                          limit: int, order: str) -> dict[str, Any]:
        return (await self.store.list_input_items(response_id, owner=owner, after=after, before=before,
                                                  limit=limit, order=order)).to_dict()

    # -- compact and count ----------------------------------------------------------------------------------
    async def _items_for(self, req: CreateResponseRequest, owner: str) -> list[dict[str, Any]]:
        items = (await self._history(req, None, owner)).items + self._input(req)
        if not items:
            raise InvalidRequest("Nothing to work on: give 'input' or 'previous_response_id'.", param="input",
                                 code="missing_required_parameter")
        return items

    async def count_input_tokens(self, req: CreateResponseRequest, *, owner: str) -> dict[str, Any]:
        await self.router.aresolve(req.model)
        items = await self._items_for(req, owner)
        tools = ToolSet.build(req.tools, req.tool_choice, self.tool_env).echo()
        messages = context.items_to_messages(items, req.instructions)
        count = await asyncio.to_thread(tokens.count_messages, messages, tools)
        return {"object": "response.input_tokens", "input_tokens": count}

    async def compact(self, req: CreateResponseRequest, *, owner: str) -> dict[str, Any]:
        """Summarize the chain into one opaque `compaction` item (see `compact.py`). `model` is required."""
        if not req.model:
            raise InvalidRequest("Missing required parameter: 'model'.", param="model",
                                 code="missing_required_parameter")
        provider, upstream_model = await self.router.aresolve(req.model)
        return await compact_items(provider, upstream_model, await self._items_for(req, owner), req.instructions,
                                   req.prompt_cache_key)


def check_tool_pairs(items: list[dict[str, Any]]) -> None:
    """Every function call needs its output and every output its call, as OpenAI requires (400 otherwise)."""
    calls = {i["call_id"] for i in items if i["type"] in ("function_call", "custom_tool_call")}
    outputs = {i["call_id"] for i in items if i["type"] in ("function_call_output", "custom_tool_call_output")}
    for call_id in outputs - calls:
        raise InvalidRequest(f"No tool call found for function call output with call_id {shorten(call_id)}.",
                             param="input", code="invalid_value")
    for call_id in calls - outputs:
        raise InvalidRequest(f"No tool output found for function call {shorten(call_id)}.", param="input",
                             code="invalid_value")
