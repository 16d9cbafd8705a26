"""The run lifecycle: background responses (queue, workers, leases), stream resumption, cancel, and the
in-progress rows of stored foreground responses. One `Runs` per server process.

- **Foreground, stored**: when a stored response starts, its row is written `in_progress` naming this
  process (`responses.instance`; one statement); the final save clears it. Each process renews its own
  lease in `instances`. So a response id a client has seen in `response.created` is always in the
  database, GET from any process finds it, and if its process dies it is ended `failed` by the sweep.
- **Background** (`background: true`, needs `store: true`): `enqueue` stores the response `queued`, a run row
  holding the create request and owner (everything a worker needs to rebuild the run: no closures), and
  the first two events (`response.created`, `response.queued`), in one transaction. A worker loop in every
  process claims queued runs (at most `background.workers` at a time per process), rebuilds them with
  `ResponseService.prepare` from the stored request, and runs them with the same loop as foreground ones
  (`service.stream` -> `loop.run_response`, server tools included); every batch of events is appended to
  `response_events` (one row per batch) and wakes local followers.
- **Leases**: every `poll_interval` the worker renews the leases of this process's runs (one UPDATE) and
  reads their cancel flags. A run whose lease expired (its process died: kill -9, power loss) is ended
  `failed` ("The server process running this response stopped ...") by whichever process sees it first,
  at start-up and then every few polls; nothing queued is lost (queued rows wait for any worker).
- **Resumption** (`follow`): the events after `starting_after`, then new ones as they are written (local
  runs wake the follower at once; runs elsewhere are polled every `poll_interval`), until the terminal
  event, from any process.
- **Cancel**: a queued run is ended `cancelled` at once; a running one gets its cancel flag set (and, when
  it runs in this process, its task cancelled right away; otherwise its process sees the flag within
  `poll_interval`): the loop stops its upstream call and tool calls and the response is stored `cancelled`
  with what was produced. Cancelling a cancelled response returns it again.
- **Retention**: events are deleted `background.event_retention` seconds after they were written (default
  one day), or with their response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from respond.config import BackgroundConfig
from respond.errors import APIError, InvalidRequest, not_found
from respond.responses import objects
from respond.responses.events import Event
from respond.responses.request import parse_create_request
from respond.responses.sealing import ReasoningSealer
from respond.storage.runs_repo import TERMINAL, RunStore

if TYPE_CHECKING:
    from respond.responses.service import Prepared, ResponseService

log = logging.getLogger("respond.runs")

DEAD = "The server process running this response stopped before it finished; the response was not completed."
STOPPED = "The server shut down while running this response."
SWEEP_EVERY = 10  # polls between looks for expired leases and old events
TERMINAL_EVENTS = frozenset(("response.completed", "response.failed", "response.incomplete"))


class Runs:
    def __init__(self, service: ResponseService, store: RunStore, config: BackgroundConfig) -> None:
        self.service = service
        self.store = store
        self.config = config
        self.instance = uuid.uuid4().hex  # this process
        self.tasks: dict[str, asyncio.Task[None]] = {}  # background runs in this process
        self._changed: dict[str, asyncio.Event] = {}  # response id -> set when it has new events here
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        service.runs = self

    # -- process lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.store.register(self.instance, self.lease())
        await self.sweep()
        self._loop_task = asyncio.create_task(self._work(), name="respond-background")

    async def close(self) -> None:
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        for task in list(self.tasks.values()):
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    def lease(self) -> float:
        return time.time() + self.config.lease_seconds

    async def _work(self) -> None:
        polls = 0
        while True:
            try:
                cancels = await self.store.renew(self.instance, self.lease())
                for response_id in cancels:
                    task = self.tasks.get(response_id)
                    if task is not None:
                        task.cancel()
                free = self.config.workers - len(self.tasks)
                if free > 0:
                    for response_id, owner, request in await self.store.claim(self.instance, free, self.lease()):
                        self.tasks[response_id] = asyncio.create_task(self._run(response_id, owner, request))
                polls += 1
                if polls % SWEEP_EVERY == 0:
                    await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background worker loop")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.poll_interval)
            self._wake.clear()

    async def sweep(self) -> None:
        """End the runs of dead processes `failed`; delete events past their retention."""
        now = time.time()
        for response_id, owner, instance in await self.store.dead_foreground(now):
            stored = await self.service.store.get(response_id, owner=owner)
            if stored is not None:
                _fail(stored.response, DEAD)
                if await self.store.end_foreground(response_id, owner, instance, stored.response):
                    log.warning("response %s: its process died; ended failed", response_id)
        for response_id, owner in await self.store.expired(now):
            stored = await self.service.store.get(response_id, owner=owner)
            if stored is None:
                await self.store.finish(response_id)
                continue
            response = stored.response
            _fail(response, DEAD)
            if await self.store.end(response_id, owner, response, only_if="expired", event="failed", now=now):
                log.warning("response %s: its process died; ended failed", response_id)
                self._notify(response_id)
        await self.store.prune_events(now - self.config.event_retention)

    # -- foreground hooks (called by ResponseService.stream) -------------------------------------------------
    async def started(self, prepared: Prepared) -> None:
        """A stored response starts: its row goes in `in_progress` with this process's lease."""
        response = prepared.run.response
        if response.get("background"):
            await self.service.store.save(objects.snapshot(response), prepared.input_items, owner=prepared.owner)
            return
        await self.store.start_foreground(self.service.store.row(prepared.owner, objects.snapshot(response),
                                                                 prepared.input_items, instance=self.instance))

    # -- background ----------------------------------------------------------------------------------------
    async def enqueue(self, prepared: Prepared) -> dict[str, Any]:
        """Store a prepared background response `queued`; a worker runs it. Returns the queued response."""
        response = prepared.run.response
        response["status"] = "queued"
        snapshot = objects.snapshot(response)
        events = [{"type": "response.created", "response": snapshot, "sequence_number": 0},
                  {"type": "response.queued", "response": snapshot, "sequence_number": 1}]
        request = seal_credentials(prepared.request.model_dump(mode="json", exclude_unset=True),
                                   self.service.sealer)
        await self.store.start(
            self.service.store.row(prepared.owner, snapshot, prepared.input_items),
            self.store.run_row(response["id"], prepared.owner, background=True, state="queued", instance=None,
                               lease_until=None, request=request),
            events)
        self._wake.set()
        return snapshot

    async def _run(self, response_id: str, owner: str, request: dict[str, Any]) -> None:
        queued = None
        try:
            try:
                queued = await self.service.store.get(response_id, owner=owner)
                if queued is None:  # deleted while queued
                    await self.store.finish(response_id)
                    return
                req = parse_create_request(open_credentials(request, self.service.sealer), strict=False)
                prepared = await self.service.prepare(req, stream=True, owner=owner, queued=queued.response)
            except APIError as exc:  # e.g. its previous response was deleted meanwhile
                response = queued.response if queued is not None else None
                if response is not None:
                    _fail(response, exc.message)
                    await self._end_now(response_id, owner, response)
                return
            batches = self.service.stream(prepared)
            try:
                async for batch in batches:
                    await self.store.append_events(response_id, owner, batch)
                    self._notify(response_id)
            finally:
                await batches.aclose()
        except asyncio.CancelledError:
            if self._stopping:  # stored `cancelled` by the service; the truth is that the server stopped
                await asyncio.shield(self._stopped(response_id, owner))
        except Exception:
            log.exception("background response %s", response_id)
        finally:
            self.tasks.pop(response_id, None)
            self._notify(response_id)
            self._wake.set()  # a worker slot is free

    async def _end_now(self, response_id: str, owner: str, response: dict[str, Any]) -> None:
        """End a claimed run that could not start: stored with its terminal event, run row deleted."""
        stored = await self.service.store.get(response_id, owner=owner)
        await self.service.store.save(response, stored.input_items if stored is not None else [], owner=owner)
        await self._append_terminal(response_id, owner, response)
        await self.store.finish(response_id)

    async def _append_terminal(self, response_id: str, owner: str, response: dict[str, Any]) -> None:
        events = await self.store.events_after(response_id, owner, -1)
        sequence = events[-1]["sequence_number"] + 1 if events else 0
        await self.store.append_events(response_id, owner, [
            {"type": f"response.{response['status']}", "response": response, "sequence_number": sequence}])

    async def _stopped(self, response_id: str, owner: str) -> None:
        stored = await self.service.store.get(response_id, owner=owner)
        if stored is None:
            return
        _fail(stored.response, STOPPED)
        await self.service.store.save(stored.response, stored.input_items, owner=owner)
        await self._append_terminal(response_id, owner, stored.response)

    def _notify(self, response_id: str) -> None:
        changed = self._changed.pop(response_id, None)
        if changed is not None:
            changed.set()

    # -- resume ----------------------------------------------------------------------------------------------
    async def follow(self, response_id: str, owner: str, starting_after: int | None) -> AsyncIterator[list[Event]]:
        """The stored events after `starting_after`, then the new ones as they come, until the end."""
        try:
            async with contextlib.aclosing(self._follow(response_id, owner, starting_after)) as batches:
                async for batch in batches:
                    yield batch
        finally:
            self._changed.pop(response_id, None)  # another follower of it makes a new one (or polls once)

    async def _follow(self, response_id: str, owner: str, starting_after: int | None) -> AsyncIterator[list[Event]]:
        last = -1 if starting_after is None else starting_after
        while True:
            changed = self._changed.setdefault(response_id, asyncio.Event())
            events = await self.store.events_after(response_id, owner, last)
            if events:
                last = events[-1]["sequence_number"]
                yield events
                if events[-1]["type"] in TERMINAL_EVENTS:
                    return
                continue
            status = await self.store.status(response_id, owner=owner)
            if status is None:  # deleted
                return
            if status in TERMINAL:
                events = await self.store.events_after(response_id, owner, last)  # written meanwhile?
                if events:
                    last = events[-1]["sequence_number"]
                    yield events
                    if events[-1]["type"] in TERMINAL_EVENTS:
                        return
                if status != "cancelled" and not await self._ended_at(response_id, owner, last):
                    # its terminal event is not (yet, or any more) stored: send the stored final state
                    stored = await self.service.store.get(response_id, owner=owner)
                    if stored is not None:
                        yield [{"type": f"response.{status}", "response": stored.response,
                                "sequence_number": last + 1}]
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), self.config.poll_interval)

    async def _ended_at(self, response_id: str, owner: str, sequence_number: int) -> bool:
        """Whether the event numbered `sequence_number` is stored and terminal (resuming after the end)."""
        if sequence_number < 0:
            return False
        tail = await self.store.events_after(response_id, owner, sequence_number - 1)
        return bool(tail) and tail[0]["type"] in TERMINAL_EVENTS

    async def check_resumable(self, response_id: str, owner: str) -> None:
        """404 for an unknown response; 400 for one that is not a background response."""
        stored = await self.service.store.get(response_id, owner=owner)
        if stored is None:
            raise not_found("Response", response_id, param="response_id")
        if not stored.response.get("background"):
            raise InvalidRequest("Streaming a stored response is only available for responses created with "
                                 "'background': true.", param="stream", code="unsupported_parameter")

    # -- cancel ----------------------------------------------------------------------------------------------
    async def cancel(self, response_id: str, owner: str) -> dict[str, Any]:
        run = await self.store.get(response_id, owner=owner)
        stored = await self.service.store.get(response_id, owner=owner)
        if stored is None:
            raise not_found("Response", response_id, param="response_id")
        response = stored.response
        if not response.get("background"):
            raise InvalidRequest("Only responses created with 'background': true can be cancelled.",
                                 param="response_id")
        if run is None:
            if response["status"] == "cancelled":
                return response
            if response["status"] in TERMINAL:
                raise InvalidRequest(f"Cannot cancel a response with status '{response['status']}': it has "
                                     "already finished.", param="response_id")
            return response
        if run.state == "queued":
            response["status"] = "cancelled"
            if await self.store.end(response_id, owner, response, only_if="queued"):
                self._notify(response_id)
                return response
        await self.store.request_cancel(response_id, owner=owner)
        task = self.tasks.get(response_id)
        if task is not None:
            task.cancel()
        deadline = time.monotonic() + max(10.0, 4 * self.config.poll_interval)
        while time.monotonic() < deadline:  # the owning process notices within poll_interval
            if await self.store.get(response_id, owner=owner) is None:
                break
            await asyncio.sleep(min(0.05, self.config.poll_interval))
        return await self.service.get(response_id, owner=owner)


def _fail(response: dict[str, Any], message: str) -> None:
    response["status"] = "failed"
    response["error"] = {"code": "server_error", "message": message}


# Request fields that carry credentials (MCP tools' `authorization` and `headers`): a queued request is stored
# with them sealed (AES-GCM, the server key of sealing.py), never in clear; the worker that runs it opens them.
CREDENTIAL_FIELDS = ("authorization", "headers")
_SEALED = "_respond_sealed_credentials"
_PURPOSE = b"respond-queued-credentials-v1"


def seal_credentials(request: dict[str, Any], sealer: ReasoningSealer) -> dict[str, Any]:
    """The request to store: credential fields of its tools moved into one sealed blob."""
    tools = request.get("tools")
    if not isinstance(tools, list):
        return request
    secrets: dict[str, Any] = {}
    clean = []
    for i, tool in enumerate(tools):
        if isinstance(tool, dict) and any(f in tool for f in CREDENTIAL_FIELDS):
            tool = dict(tool)
            for field in CREDENTIAL_FIELDS:
                if field in tool:
                    secrets[f"{i}.{field}"] = tool.pop(field)
        clean.append(tool)
    if not secrets:
        return request
    return {**request, "tools": clean, _SEALED: sealer.seal_value(secrets, _PURPOSE)}


def open_credentials(request: dict[str, Any], sealer: ReasoningSealer) -> dict[str, Any]:
    """The stored request with its tools' credentials back in place (a process whose key differs cannot open
    them: the tools then run without credentials and their calls fail cleanly)."""
    blob = request.get(_SEALED)
    if blob is None:
        return request
    request = {k: v for k, v in request.items() if k != _SEALED}
    try:
        secrets = sealer.open_value(blob, _PURPOSE)
    except ValueError:
        log.warning("a queued request's credentials could not be opened (another server key?)")
        return request
    tools = [dict(t) if isinstance(t, dict) else t for t in request.get("tools") or []]
    for key, value in secrets.items():
        index, _, field = key.partition(".")
        if index.isdigit() and int(index) < len(tools) and isinstance(tools[int(index)], dict):
            tools[int(index)][field] = value
    return {**request, "tools": tools}
