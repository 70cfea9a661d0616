"""A worker process of distributed mode: takes jobs from the queue, runs them, keeps leases.

- consume: read as many jobs as free capacity allows; claim each in the database (the epoch
  compare-and-set) before running it; acknowledge after its terminal event is committed;
- heartbeat: extend the leases of running responses, and notice cancel flags;
- janitor: reclaim queue entries of silent workers (XAUTOCLAIM), and queue again the running
  responses nobody holds (a lost enqueue, an expired lease).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from domain.jobs import Entry, Job, JobQueue
from domain.ports import Bus, Claim, EventStore
from domain.response import RUNNING
from service import metrics
from service.jobs import decode_job, load_job
from service.runner import Runner
from service.sealing import Sealer
from service.writer import EventWriter

log = logging.getLogger("responsed.worker")

class WorkerService:
    def __init__(self, store: EventStore, writer: EventWriter, bus: Bus, jobs: JobQueue,
                 runner: Runner, *, name: str, concurrency: int, lease_s: float,
                 janitor_interval_s: float, enqueue_grace_s: float,
                 sealer: Sealer | None = None) -> None:
        self._store = store
        self._writer = writer
        self._bus = bus
        self._jobs = jobs
        self._runner = runner
        self.name = name
        self._concurrency = concurrency
        self._lease_s = lease_s
        self._janitor_interval_s = janitor_interval_s
        self._enqueue_grace_s = enqueue_grace_s
        self._sealer = sealer
        self._running: dict[str, tuple[Job, asyncio.Task[None]]] = {}
        self._handling: set[asyncio.Task[None]] = set()
        self._slot = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._acks: list[str] = []
        self._ack_wanted = asyncio.Event()
        self.reclaimed = 0

    @property
    def running(self) -> int:
        return len(self._running)

    def start(self) -> None:
        self._bus.on_cancel(self._on_cancel)
        self._tasks = [
            asyncio.create_task(self._consume(), name="worker-consume"),
            asyncio.create_task(self._heartbeat(), name="worker-heartbeat"),
            asyncio.create_task(self._janitor(), name="worker-janitor"),
            asyncio.create_task(self._acker(), name="worker-acker"),
        ]

    # -- taking jobs ----------------------------------------------------------------------------
    async def _consume(self) -> None:
        delay = 0.1
        while True:
            free = self._concurrency - len(self._handling)
            if free <= 0:
                self._slot.clear()
                await self._slot.wait()
                continue
            try:
                entries = await self._jobs.take(self.name, min(free, 64), block_ms=1000)
                delay = 0.1
            except Exception as error:
                log.warning("taking jobs failed: %s", error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            await self._start(entries)

    async def _start(self, entries: list[Entry]) -> None:
        """Claim a batch of entries in one statement, then run each in its own task."""
        if not entries:
            return
        ids = [e.response_id for e in entries if e.response_id not in self._running]
        try:
            claims = await self._store.claim_many(ids, self.name, self._lease_s)
        except Exception as error:  # rows locked or the database away: the entries stay
            log.warning("claiming %d responses failed: %s", len(ids), error)  # pending
            return
        for entry in entries:
            if entry.response_id not in self._running:
                self._spawn(entry, claims.get(entry.response_id))

    def _spawn(self, entry: Entry, claim: Claim | None) -> None:
        task = asyncio.create_task(self._handle(entry, claim), name=entry.response_id)
        self._handling.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._handling.discard(finished)
            self._slot.set()

        task.add_done_callback(done)

    async def _handle(self, entry: Entry, claim: Claim | None) -> None:
        entry_id, response_id = entry.entry_id, entry.response_id
        if claim is None:
            record = await self._store.get(response_id)
            if entry_id and (record is None or record.status not in RUNNING):
                self._ack(entry_id)  # finished or gone: nothing to do
            return  # otherwise a live worker holds it and will acknowledge it
        job = None
        if entry.payload is not None:
            job = decode_job(response_id, entry.payload, claim)
        if job is None:
            job = await load_job(self._store, response_id, claim.epoch, self._sealer)
        if job is None:
            if entry_id:
                self._ack(entry_id)
            return
        if claim.cancel_requested:
            await self._runner.end_cancelled(job)
        else:
            task = asyncio.current_task()
            assert task is not None
            self._running[response_id] = (job, task)
            try:
                await self._runner.run(job)
            finally:
                self._running.pop(response_id, None)
        await self._writer.flushed()  # acknowledge only what is committed
        if entry_id:  # taken over from the database, it has no queue entry of its own
            self._ack(entry_id)

    def _ack(self, entry_id: str) -> None:
        """Acknowledge soon: the acknowledgements of one moment go in one XACK (a wave of
        streams ends together, and one round trip each cost the loop their replies)."""
        self._acks.append(entry_id)
        self._ack_wanted.set()

    async def _acker(self) -> None:
        while True:
            await self._ack_wanted.wait()
            self._ack_wanted.clear()
            await self._send_acks()

    async def _send_acks(self) -> None:
        entry_ids, self._acks = self._acks, []
        if not entry_ids:
            return
        try:
            await self._jobs.ack(*entry_ids)
        except Exception as error:  # harmless: a later reclaim finds the responses finished
            log.warning("ack failed: %s", error)

    # -- cancel ---------------------------------------------------------------------------------
    def _on_cancel(self, response_id: str) -> None:
        entry = self._running.get(response_id)
        if entry is not None:
            job, task = entry
            job.cancelled = True
            task.cancel()

    # -- leases ---------------------------------------------------------------------------------
    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._lease_s / 3)
            ids = list(self._running)
            try:
                held = await self._store.heartbeat(self.name, ids, self._lease_s)
            except Exception as error:
                log.warning("heartbeat failed: %s", error)
                continue
            for response_id, cancel_requested in held.items():
                if cancel_requested:  # the signal may have been lost; the flag is not
                    self._on_cancel(response_id)

    async def _janitor(self) -> None:
        min_idle_ms = int(self._lease_s * 1000)
        while True:
            wait = self._janitor_interval_s
            try:
                wait = min(wait, await self._take_over_expired())
                reclaimed = await self._jobs.reclaim(self.name, min_idle_ms, 32)
                self.reclaimed += len(reclaimed)
                metrics.JOBS_RECLAIMED.inc(len(reclaimed))
                await self._start(reclaimed)
                for response_id in await self._store.stalled(self._enqueue_grace_s):
                    if response_id not in self._running:
                        log.info("queueing %s again: nobody holds it", response_id)
                        await self._jobs.enqueue(response_id)
            except Exception as error:
                log.warning("janitor pass failed: %s", error)
            await asyncio.sleep(wait)

    async def _take_over_expired(self) -> float:
        """Claim the responses whose worker's lease ran out, straight from the database, and
        run them here: the queue entry of a dead worker is not reclaimable until it has been
        idle for a lease, which may be long after the lease itself ran out. Returns how long
        until the next lease runs out (so the next pass can be then, not a whole interval on).
        """
        free = self._concurrency - len(self._handling)
        expired, next_expiry = await self._store.expired_leases(max(free, 0) or 1)
        expired = [i for i in expired if i not in self._running]
        if expired and free > 0:
            claims = await self._store.claim_many(expired, self.name, self._lease_s)
            for response_id, claim in claims.items():
                if response_id not in self._running:
                    log.info("taking over %s: its lease ran out", response_id)
                    self.reclaimed += 1
                    metrics.JOBS_RECLAIMED.inc()
                    self._spawn(Entry("", response_id, None), claim)
        if next_expiry is None:
            return self._janitor_interval_s
        return max(0.01, next_expiry - time.time() + 0.01)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for job, _ in self._running.values():
            job.handover = True
        handling = list(self._handling)
        for task in handling:
            task.cancel()
        await asyncio.gather(*handling, return_exceptions=True)
        await self._writer.flushed()
        await self._send_acks()  # what finished before the stop
        with contextlib.suppress(Exception):
            released = await self._store.release(self.name)
            if released:
                log.info("released %d running responses to the other workers", released)
