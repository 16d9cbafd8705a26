"""`RunStore`: the `response_runs` queue/lease rows and the `response_events` of background responses.

A run row exists while a background response waits to run (`queued`) or runs (`running`). (A stored
foreground response instead names its process in `responses.instance` while it runs; `instances` holds each
process's lease.) The process running it (`instance`) renews `lease_until`; a row whose
lease expired belongs to a process that is gone. The row is deleted in the transaction that stores the
finished response. Every statement filters by `owner`, except the ones a worker runs over the queue and its
own runs (claim, renew, cancel flags, expired leases): those are about runs, not about a client's data, and
what they return carries the owner the run is then executed for.

Claiming: `UPDATE response_runs SET state='running', instance=.., lease_until=.. WHERE response_id IN (SELECT
.. WHERE state='queued' ORDER BY created_at LIMIT n [FOR UPDATE SKIP LOCKED]) RETURNING ..`. On PostgreSQL
concurrent claimers skip each other's locked rows; on SQLite the statement runs under the database's single
write lock, so two processes never claim the same row either.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from respond.storage.engine import Database
from respond.storage.responses_repo import ResponseStore
from respond.storage.tables import instances, response_events, response_runs, responses

_r = response_runs.c
_e = response_events.c
TERMINAL = ("completed", "failed", "incomplete", "cancelled")


@dataclass
class Run:
    response_id: str
    owner: str
    background: bool
    state: str
    request: dict[str, Any] | None
    instance: str | None
    lease_until: float | None
    cancel_requested: bool


class RunStore:
    def __init__(self, db: Database, responses: ResponseStore) -> None:
        self.db = db
        self.responses = responses

    # -- processes and foreground responses ---------------------------------------------------------------
    async def register(self, instance: str, lease_until: float) -> None:
        """A server process starts: its `instances` row (renewed by `renew`)."""
        await self.db.write_one(_register, instance, lease_until)

    async def start_foreground(self, row: dict[str, Any]) -> None:
        """A stored foreground response starts: its row, `in_progress`, naming this process (`row["instance"]`).
        One statement; the final save clears `instance`."""
        await self.db.write_one(_save_row, self.responses, row)

    async def dead_foreground(self, now: float) -> list[tuple[str, str, str]]:
        """Foreground responses still marked running by a process whose lease expired: (id, owner, instance)."""
        return await self.db.read(_dead_foreground, now)

    async def end_foreground(self, response_id: str, owner: str, instance: str, response: dict[str, Any]) -> bool:
        """Store `response` (ended by the sweep) if the row still belongs to the dead `instance`."""
        return await self.db.write_one(_end_foreground, response_id, owner, instance, response)

    # -- background: starting ------------------------------------------------------------------------------
    def run_row(self, response_id: str, owner: str, *, background: bool, state: str, instance: str | None,
                lease_until: float | None, request: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"response_id": response_id, "owner": owner, "background": background, "state": state,
                "request": request, "instance": instance, "lease_until": lease_until, "cancel_requested": False,
                "created_at": time.time()}

    async def start(self, response_row: dict[str, Any], run_row: dict[str, Any],
                    events: list[dict[str, Any]] | None = None) -> None:
        """Store the response as it starts (queued / in_progress) with its run row (and first events), in one
        transaction."""

        def write(conn: Connection) -> None:
            self.responses.save_in(conn, response_row)
            conn.execute(insert(response_runs), run_row)
            if events:
                _insert_events(conn, run_row["response_id"], run_row["owner"], events)

        await self.db.write(write)

    async def claim(self, instance: str, n: int, lease_until: float) -> list[tuple[str, str, dict[str, Any]]]:
        """Take up to `n` queued runs, oldest first: [(response_id, owner, request)]."""
        return await self.db.write_one(_claim, instance, n, lease_until, not self.db.is_sqlite)

    # -- while running -------------------------------------------------------------------------------------
    async def renew(self, instance: str, lease_until: float) -> list[str]:
        """Extend the leases of this process and of its background runs; returns the ids of those whose
        cancel was asked."""
        return await self.db.write(_renew, instance, lease_until)

    async def append_events(self, response_id: str, owner: str, events: list[dict[str, Any]]) -> None:
        await self.db.write_one(_insert_events, response_id, owner, events)

    async def events_after(self, response_id: str, owner: str, after: int) -> list[dict[str, Any]]:
        """The events with sequence_number > after, in order."""
        return await self.db.read(_events_after, response_id, owner, after)

    async def get(self, response_id: str, *, owner: str) -> Run | None:
        return await self.db.read(_get, response_id, owner)

    async def status(self, response_id: str, *, owner: str) -> str | None:
        return await self.db.read(_status, response_id, owner)

    # -- ending --------------------------------------------------------------------------------------------
    @staticmethod
    def finish_in(conn: Connection, response_id: str) -> None:
        """Delete the run row, in the transaction that stores the finished response."""
        conn.execute(delete(response_runs).where(_r.response_id == response_id))

    async def finish(self, response_id: str) -> None:
        await self.db.write_one(RunStore.finish_in, response_id)

    async def request_cancel(self, response_id: str, *, owner: str) -> None:
        await self.db.write_one(_request_cancel, response_id, owner)

    async def end(self, response_id: str, owner: str, response: dict[str, Any], *, only_if: str,
                  event: str | None = None, now: float | None = None) -> bool:
        """End a run that nobody runs any more (a queued run cancelled, a run whose process died): store
        `response` and delete the run row, provided the row is still `only_if` ("queued", or "expired": its
        lease ran out) -- so two processes never both end it. With `event`, a `response.<event>` terminal
        event is appended. Returns whether this call ended it."""
        return await self.db.write(_end, response_id, owner, response, only_if, event, now or time.time(),
                                   self.responses)

    async def expired(self, now: float) -> list[tuple[str, str]]:
        """Runs whose lease ran out: [(response_id, owner)]."""
        return await self.db.read(_expired, now)

    async def prune_events(self, before: float) -> int:
        """Delete events written before `before`, and the rows of processes gone for as long."""
        return await self.db.write(_prune, before)

    async def delete_events(self, response_id: str, *, owner: str) -> None:
        await self.db.write_one(_delete_events, response_id, owner)


# -- statements ----------------------------------------------------------------------------------------------

def _insert_events(conn: Connection, response_id: str, owner: str, events: list[dict[str, Any]]) -> None:
    conn.execute(insert(response_events), {
        "response_id": response_id, "owner": owner, "first_sequence": events[0]["sequence_number"],
        "last_sequence": events[-1]["sequence_number"], "events": events, "created_at": time.time()})


def _claim(conn: Connection, instance: str, n: int, lease_until: float, skip_locked: bool) -> list[Any]:
    pick = select(_r.response_id).where(_r.state == "queued").order_by(_r.created_at).limit(n)
    if skip_locked:
        pick = pick.with_for_update(skip_locked=True)
    stmt = (update(response_runs).where(_r.response_id.in_(pick.scalar_subquery()), _r.state == "queued")
            .values(state="running", instance=instance, lease_until=lease_until)
            .returning(_r.response_id, _r.owner, _r.request))
    return [(r[0], r[1], r[2]) for r in conn.execute(stmt).all()]


def _register(conn: Connection, instance: str, lease_until: float) -> None:
    conn.execute(insert(instances), {"id": instance, "started_at": time.time(), "lease_until": lease_until})


def _save_row(conn: Connection, store: ResponseStore, row: dict[str, Any]) -> None:
    store.save_in(conn, row)


_rc = responses.c


def _dead_foreground(conn: Connection, now: float) -> list[tuple[str, str, str]]:
    alive = select(instances.c.id).where(instances.c.id == _rc.instance, instances.c.lease_until >= now)
    rows = conn.execute(select(_rc.id, _rc.owner, _rc.instance).where(_rc.instance.is_not(None), ~alive.exists()))
    return [(r[0], r[1], r[2]) for r in rows]


def _end_foreground(conn: Connection, response_id: str, owner: str, instance: str, response: dict[str, Any]) -> bool:
    return conn.execute(update(responses).where(_rc.id == response_id, _rc.owner == owner, _rc.instance == instance)
                        .values(status=response["status"], response=response, instance=None)).rowcount > 0


def _renew(conn: Connection, instance: str, lease_until: float) -> list[str]:
    conn.execute(update(instances).where(instances.c.id == instance).values(lease_until=lease_until))
    conn.execute(update(response_runs).where(_r.instance == instance).values(lease_until=lease_until))
    rows = conn.execute(select(_r.response_id).where(_r.instance == instance, _r.cancel_requested.is_(True)))
    return [r[0] for r in rows]


def _events_after(conn: Connection, response_id: str, owner: str, after: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(_e.events).where(_e.response_id == response_id, _e.owner == owner,
                                                _e.last_sequence > after).order_by(_e.last_sequence)).all()
    return [event for row in rows for event in row[0] if event["sequence_number"] > after]


def _get(conn: Connection, response_id: str, owner: str) -> Run | None:
    row = conn.execute(select(_r.response_id, _r.owner, _r.background, _r.state, _r.request, _r.instance,
                              _r.lease_until, _r.cancel_requested)
                       .where(_r.response_id == response_id, _r.owner == owner)).first()
    return None if row is None else Run(*row)


def _status(conn: Connection, response_id: str, owner: str) -> str | None:
    return conn.execute(select(responses.c.status).where(responses.c.id == response_id,
                                                         responses.c.owner == owner)).scalar()


def _request_cancel(conn: Connection, response_id: str, owner: str) -> None:
    conn.execute(update(response_runs).where(_r.response_id == response_id, _r.owner == owner)
                 .values(cancel_requested=True))


def _end(conn: Connection, response_id: str, owner: str, response: dict[str, Any], only_if: str,
         event: str | None, now: float, store: ResponseStore) -> bool:
    condition = _r.state == "queued" if only_if == "queued" else and_(_r.state == "running", _r.lease_until < now)
    gone = conn.execute(delete(response_runs).where(_r.response_id == response_id, _r.owner == owner, condition))
    if gone.rowcount == 0:
        return False
    input_items = conn.execute(select(responses.c.input_items).where(
        responses.c.id == response_id, responses.c.owner == owner)).scalar() or []
    row = store.row(owner, response, input_items)
    conn.execute(update(responses).where(responses.c.id == response_id, responses.c.owner == owner)
                 .values(status=row["status"], response=response))
    if event is not None:
        last = conn.execute(select(func.max(_e.last_sequence)).where(_e.response_id == response_id,
                                                                      _e.owner == owner)).scalar()
        sequence = -1 if last is None else last
        _insert_events(conn, response_id, owner, [{"type": f"response.{event}", "response": response,
                                                   "sequence_number": sequence + 1}])
    return True


def _expired(conn: Connection, now: float) -> list[tuple[str, str]]:
    rows = conn.execute(select(_r.response_id, _r.owner).where(_r.state == "running", _r.lease_until < now))
    return [(r[0], r[1]) for r in rows]


def _prune(conn: Connection, before: float) -> int:
    conn.execute(delete(instances).where(instances.c.lease_until < before))
    return conn.execute(delete(response_events).where(_e.created_at < before)).rowcount


def _delete_events(conn: Connection, response_id: str, owner: str) -> None:
    conn.execute(delete(response_events).where(_e.response_id == response_id, _e.owner == owner))
