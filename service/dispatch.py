"""Where new jobs go. Embedded mode runs them in this process (LocalDispatcher); distributed
mode hands them to workers through the job queue (QueueDispatcher)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Protocol

from domain.jobs import Job, JobQueue
from domain.ports import Bus, EventStore
from service.jobs import encode_job, load_job
from service.runner import Runner
from service.sealing import Sealer
from service.writer import EventWriter

log = logging.getLogger("responsed.dispatch")


class Dispatcher(Protocol):
    async def submit(self, job: Job) -> None: ...

    async def cancel(self, response_id: str) -> bool:
        """Stop a run on a client's request; True if this process ended it itself."""
        ...

    @property
    def running(self) -> int: ...

    async def close(self) -> None: ...


def process_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class LocalDispatcher:
    """Embedded mode's job queue: runs jobs as tasks in this process, `concurrency` at a time."""

    def __init__(self, runner: Runner, concurrency: int) -> None:
        self._runner = runner
        self._gate = asyncio.Semaphore(concurrency)
        self._jobs: dict[str, tuple[Job, asyncio.Task[None]]] = {}

    async def submit(self, job: Job) -> None:
        task = asyncio.create_task(self._runner.run(job, self._gate), name=job.response_id)
        self._jobs[job.response_id] = (job, task)
        task.add_done_callback(lambda _: self._done(job))

    def _done(self, job: Job) -> None:
        self._jobs.pop(job.response_id, None)
        if job.on_done is not None:
            job.on_done()

    async def cancel(self, response_id: str) -> bool:
        """Cancel a run of this process on a client's request; False if it runs elsewhere."""
        entry = self._jobs.get(response_id)
        if entry is None:
            return False
        job, task = entry
        job.cancelled = True
        task.cancel()
        return True

    @property
    def running(self) -> int:
        return len(self._jobs)

    async def close(self) -> None:
        tasks = [task for _, task in self._jobs.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class QueueDispatcher:
    """The API side of distributed mode: this process never generates stored responses.

    Responses with store:false have no log another process could pick up (and pub/sub alone is
    at-most-once), so they are generated here, by a local dispatcher.
    """

    def __init__(
        self,
        store: EventStore,
        writer: EventWriter,
        bus: Bus,
        jobs: JobQueue,
        runner: Runner,
        local: LocalDispatcher,
        *,
        sealer: Sealer | None = None,
    ) -> None:
        self._store = store
        self._writer = writer
        self._bus = bus
        self._jobs = jobs
        self._runner = runner
        self._local = local
        self._name = "api-" + process_name()
        self._sealer = sealer

    async def submit(self, job: Job) -> None:
        if not job.persist:
            await self._local.submit(job)
            return
        await self._writer.flushed()  # a worker can only claim a committed row
        try:
            await self._jobs.enqueue(job.response_id, encode_job(job))
        except Exception as error:  # Redis away: the workers' janitor queues it again
            log.warning("could not enqueue %s: %s", job.response_id, error)

    async def cancel(self, response_id: str) -> bool:
        if await self._local.cancel(response_id):
            return True
        await self._bus.signal_cancel(response_id)
        # If no live worker holds it (still queued, or its worker died), end it from here.
        try:
            claim = await self._store.claim(response_id, self._name, lease_s=30.0)
        except Exception as error:  # e.g. its writer holds the row locked: it is alive
            log.info("could not claim %s to cancel it: %s", response_id, error)
            return False
        if claim is None:
            return False
        job = await load_job(self._store, response_id, claim.epoch, self._sealer)
        if job is not None:
            await self._runner.end_cancelled(job)
            await self._writer.flushed()
        return True

    @property
    def running(self) -> int:
        return self._local.running

    async def close(self) -> None:
        await self._local.close()
        await self._jobs.close()
