"""Group commit: events of every running response are committed together, then published.

Whatever arrives while a transaction is in flight goes into the next one, so batches grow with
load by themselves: one event per transaction when idle (lowest latency), hundreds per
transaction under load (highest throughput). Publishing happens only after the commit, so a
subscriber never sees an event the store does not have.

Two lanes, each with one transaction in flight at most: the urgent lane commits the responses
with events marked urgent (a new response's first events, which decide its time to first
token), the main lane everything else (and, with SQLite, urgent ones too when it gets there
first). Urgent events so neither wait for the main lane's transaction nor ride in its large
ones. A response is in one transaction at a time, so its events still commit, and publish, in
order.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from domain.ports import (
    AppendBatch,
    Batch,
    Bus,
    EventStore,
    Final,
    NewResponse,
    ResponseRecord,
    StoredEvent,
    ToolCallRecord,
    ToolOutput,
)
from domain.response import RUNNING
from service import metrics

log = logging.getLogger("responsed.writer")

_RETRIES = 5  # for errors that are not an outage (a bug, a refused row): they do not heal
_MAX_DELAY_S = 1.0  # the backoff's ceiling while the store is away


def _never(error: BaseException) -> bool:
    return False


class EventWriter:
    def __init__(
        self,
        store: EventStore,
        bus: Bus,
        *,
        local_bus: Bus | None = None,
        max_pending_events: int = 2048,
        concurrent_writes: bool = False,
        is_outage: Callable[[BaseException], bool] = _never,
        outage_s: float = 60.0,
    ) -> None:
        self._store = store
        # A store that is away (is_outage) is waited for, up to outage_s, holding the batches:
        # generation pauses on room() meanwhile, and nothing is lost, reordered or repeated.
        self._is_outage = is_outage
        self._outage_s = outage_s
        self._bus = bus
        # Responses that are not stored are generated and read in this process only.
        self._local_bus = local_bus or bus
        # How far generation may run ahead of the store. Small: a run that waits for room
        # leaves the event loop to new runs and to the flush itself. Distributed, C = 64:
        # 50,000 -> 2,048 took TTFT p50 311 -> 174 ms for 35k -> 32k deltas/s; embedded neutral.
        self._max_pending = max_pending_events
        # Whether the two lanes' transactions really overlap (PostgreSQL: two connections).
        # SQLite's writes run one at a time on this thread: there, urgent batches may ride in
        # the main lane, and a run does not wait for its first delta (measured: both cost the
        # embedded server TTFT and throughput, as they help distributed mode).
        self._concurrent = concurrent_writes
        self._pending: dict[str, AppendBatch] = {}
        self._pending_events = 0
        # flushed(): every add takes a ticket; a waiter is done once no batch holding an older
        # ticket is pending or in flight, whichever lane takes it.
        self._ticket = 0
        self._pending_ticket: dict[str, int] = {}  # pending key -> the ticket of its first add
        self._flight_ticket: dict[str, int] = {}  # the same, for the batches in flight
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._in_flight: set[str] = set()
        self._urgent: set[str] = set()  # pending keys holding urgent events
        self._landing: dict[str, asyncio.Future[None]] = {}  # see landed()
        self._on_commit: dict[str, list[Callable[[], None]]] = {}  # pending key -> callbacks
        self._fenced: set[str] = set()
        self._wakeup = asyncio.Event()
        self._urgent_wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self.flushes = 0
        self.events_written = 0

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run_main(), name="event-writer"),
            asyncio.create_task(self._run_urgent(), name="event-writer-urgent"),
        ]

    # -- producers ------------------------------------------------------------------------------
    def add(
        self,
        response_id: str,
        events: list[StoredEvent],
        *,
        epoch: int = 0,
        final: Final | None = None,
        create: NewResponse | None = None,
        tool_calls: list[ToolCallRecord] | None = None,
        tool_outputs: list[ToolOutput] | None = None,
        urgent: bool = False,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        """Queue events for the next commit. Never blocks; see `room()` for backpressure.

        Audit rows (tool calls, tool outputs) commit in the same transaction as the events.
        `urgent` events may go ahead of a transaction in flight (see the module's docstring).
        `on_commit` is called as soon as the transaction holding these events has ended.
        """
        if response_id in self._fenced:
            return  # refused already: what follows would be refused too (and held meanwhile)
        self._ticket += 1
        pending = self._pending.get(response_id)
        if pending is None:
            self._pending_ticket[response_id] = self._ticket
            expected = events[0].seq - 1 if events else -1
            self._pending[response_id] = AppendBatch(
                response_id, epoch, expected, list(events), final, create
            )
            pending = self._pending[response_id]
        else:
            pending.events.extend(events)
            if final is not None:
                pending.final = final
        if tool_calls:
            pending.tool_calls.extend(tool_calls)
        if tool_outputs:
            pending.tool_outputs.extend(tool_outputs)
        self._pending_events += len(events)
        if self._pending_events >= self._max_pending:
            self._room.clear()
        if on_commit is not None:
            self._on_commit.setdefault(response_id, []).append(on_commit)
        if urgent:
            self._urgent.add(response_id)
            self._urgent_wakeup.set()
        self._wakeup.set()

    async def room(self) -> None:
        """Wait while the store is behind by more than max_pending_events."""
        if not self._room.is_set():
            await self._room.wait()

    async def landed(self, response_id: str) -> None:
        """Wait until nothing of this response is pending or in flight (its events so far are
        committed, or were refused)."""
        if response_id not in self._pending and response_id not in self._in_flight:
            return
        future = self._landing.get(response_id)
        if future is None:
            future = self._landing[response_id] = asyncio.get_running_loop().create_future()
        await asyncio.shield(future)

    async def first_delta_sent(self, response_id: str) -> None:
        """Called by a run after its first delta (added as urgent). With overlapping lanes, wait
        for it to land: generating on meanwhile would only grow that small transaction, and the
        client sees nothing more before it commits anyway."""
        if self._concurrent:
            await self.landed(response_id)

    async def flushed(self) -> None:
        """Wait until everything queued so far is committed (and published)."""
        if self._oldest_ticket() > self._ticket:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((self._ticket, future))
        self._wakeup.set()
        await future

    def audit(
        self,
        response_id: str,
        *,
        tool_calls: list[ToolCallRecord] | None = None,
        tool_outputs: list[ToolOutput] | None = None,
    ) -> None:
        """Audit rows of a response that is not stored (no row, no log): the next commit."""
        if not tool_calls and not tool_outputs:
            return
        key = "audit:" + response_id
        self._ticket += 1
        pending = self._pending.get(key)
        if pending is None:
            self._pending_ticket[key] = self._ticket
            pending = self._pending[key] = AppendBatch(response_id, 0, -1, [], audit_only=True)
        pending.tool_calls.extend(tool_calls or ())
        pending.tool_outputs.extend(tool_outputs or ())
        self._wakeup.set()

    async def publish_only(
        self, response_id: str, events: list[StoredEvent], terminal: bool
    ) -> None:
        """For responses that are not stored: straight to the bus."""
        await self._local_bus.publish(Batch(response_id, events, terminal))

    def is_fenced(self, response_id: str) -> bool:
        return response_id in self._fenced

    def forget(self, response_id: str) -> None:
        self._fenced.discard(response_id)

    # -- the commit loops -----------------------------------------------------------------------
    async def _run_main(self) -> None:
        while True:
            # Urgent batches are the urgent lane's, so they always go in small transactions.
            keys = [
                k
                for k in self._pending
                if k not in self._in_flight
                and (k not in self._urgent or self._closing or not self._concurrent)
            ]
            if keys:
                await self._flush(keys)
                continue
            if self._closing and not self._pending and not self._in_flight:
                self._settle()
                return
            # Nothing to take, or only the urgent lane's: it wakes this lane when it is done.
            self._wakeup.clear()
            await self._wakeup.wait()

    async def _run_urgent(self) -> None:
        while True:
            keys = [k for k in self._urgent if k in self._pending and k not in self._in_flight]
            if keys:
                await self._flush(keys)
                continue
            if self._closing:
                return  # the main lane commits whatever is left
            self._urgent_wakeup.clear()
            await self._urgent_wakeup.wait()

    async def _flush(self, keys: list[str]) -> None:
        """Commit, then publish, the pending batches under these keys, as one transaction."""
        batches = [self._pending.pop(k) for k in keys]
        for key in keys:
            self._flight_ticket[key] = self._pending_ticket.pop(key)
        self._urgent.difference_update(keys)
        self._in_flight.update(keys)
        count = sum(len(b.events) for b in batches)
        callbacks = [c for key in keys for c in self._on_commit.pop(key, ())]
        try:
            fenced = await self._commit(batches)
        finally:
            self._pending_events -= count
            if self._pending_events < self._max_pending:
                self._room.set()
            for callback in callbacks:
                try:
                    callback()
                except Exception:
                    log.exception("an on_commit callback failed")
        self.flushes += 1
        self.events_written += count
        metrics.EVENTS_APPENDED.inc(count)
        metrics.BATCH_EVENTS.observe(count)
        published = []
        for batch in batches:
            if batch.audit_only:
                continue  # audit rows alone: nothing to publish, no writer to stop
            if batch.response_id in fenced:
                self._fenced.add(batch.response_id)
                self._drop_pending(batch.response_id)
            elif batch.events:
                published.append(Batch(batch.response_id, batch.events, batch.final is not None))
        try:
            await self._bus.publish_many(published)
        finally:
            self._in_flight.difference_update(keys)
            for key in keys:
                del self._flight_ticket[key]
                if key not in self._pending and (landing := self._landing.pop(key, None)):
                    landing.set_result(None)
            self._settle()
            self._wakeup.set()  # what waited for these responses can go now
            if self._urgent:
                self._urgent_wakeup.set()
        # A synchronous store (SQLite) never yielded: let producers and readers run.
        await asyncio.sleep(0)

    async def _commit(self, batches: list[AppendBatch]) -> set[str]:
        deadline = time.monotonic() + self._outage_s
        delay = 0.05
        failures = 0
        todo = batches
        landed: set[str] = set()  # ids whose batch an earlier, failed attempt did commit
        refused: set[str] = set()  # creates given up on while the store is away
        while True:
            try:
                if failures:
                    # The failed attempt may have committed before its connection went: a
                    # retry would then be fenced (or a create refused as a duplicate).
                    landed |= await self._landed(todo)
                    todo = [b for b in todo if b.response_id not in landed or b.audit_only]
                fenced = await self._store.append(todo)
                if failures and fenced:
                    # Still fenced: an attempt landed between the check and the retry?
                    fenced -= await self._landed([b for b in todo if b.response_id in fenced])
                return fenced | refused
            except Exception as error:
                failures += 1
                outage = self._is_outage(error)
                if outage and failures == _RETRIES and any(b.create for b in todo):
                    # New responses no client has seen yet are not held: their creates answer
                    # 503 (the SDKs retry it) while the open streams' batches wait on.
                    refused |= {b.response_id for b in todo if b.create is not None}
                    todo = [b for b in todo if b.create is None]
                    if not todo:
                        return refused
                if outage and time.monotonic() >= deadline:
                    log.error("the store has been away for %.0fs: giving up", self._outage_s)
                    break
                if not outage and failures >= _RETRIES:
                    break
                log.warning(
                    "append failed (%s), retrying in %.2fs",
                    "store away" if outage else "error",
                    delay,
                    exc_info=not outage,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_DELAY_S)
        # Still refused: find the batches the store rejects, so the others are not lost with them.
        fenced = set()
        for batch in todo:
            try:
                fenced |= await self._store.append([batch])
            except Exception:
                log.error(
                    "dropping the events of %s: the store refuses them",
                    batch.response_id,
                    exc_info=True,
                )
                fenced.add(batch.response_id)
        return fenced | refused

    async def _landed(self, batches: list[AppendBatch]) -> set[str]:
        """The ids among these batches whose commit is already in the store. A response's row
        moves only under its writer's epoch, one batch at a time, so a row at this epoch whose
        last_seq is the batch's last event (or that has ended, for the batch that ends it)
        holds exactly this batch."""
        ids: set[str] = set()
        for batch in batches:
            if batch.audit_only or (not batch.events and batch.final is None):
                continue  # nothing to tell it by (audit rows alone): appended again
            record = await self._store.get(batch.response_id)
            if record is not None and _holds(record, batch):
                ids.add(batch.response_id)
        return ids

    def _drop_pending(self, response_id: str) -> None:
        """Events queued behind a refused batch would be refused too: drop them now rather
        than hold them through an outage."""
        batch = self._pending.pop(response_id, None)
        if batch is None:
            return
        del self._pending_ticket[response_id]
        self._urgent.discard(response_id)
        self._pending_events -= len(batch.events)
        if self._pending_events < self._max_pending:
            self._room.set()
        for callback in self._on_commit.pop(response_id, ()):
            try:
                callback()
            except Exception:
                log.exception("an on_commit callback failed")

    def _oldest_ticket(self) -> float:
        return min(
            min(self._pending_ticket.values(), default=math.inf),
            min(self._flight_ticket.values(), default=math.inf),
        )

    def _settle(self) -> None:
        """Release the waiters whose adds are all committed."""
        oldest = self._oldest_ticket()
        waiting = []
        for ticket, future in self._waiters:
            if ticket < oldest:
                if not future.done():
                    future.set_result(None)
            else:
                waiting.append((ticket, future))
        self._waiters = waiting

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        self._closing = True
        self._wakeup.set()
        self._urgent_wakeup.set()
        tasks, self._tasks = self._tasks, []
        await asyncio.gather(*tasks)


def _holds(record: ResponseRecord, batch: AppendBatch) -> bool:
    if record.epoch != batch.epoch:
        return False
    if batch.final is not None:
        return record.status not in RUNNING and record.last_seq == batch.last_seq
    return record.last_seq == batch.last_seq and batch.last_seq > batch.expected_last_seq
