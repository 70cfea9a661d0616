"""The purge: expired responses (with their events, input items and snapshots) and, on their own
longer clock, tool-call audit rows. Bounded batches, one transaction each; running responses are
never touched. `responsed purge` runs it once; serve and worker processes run it periodically.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from domain.ports import RetentionStore
from service import metrics

log = logging.getLogger("responsed.retention")

PURGED = metrics.Counter("responsed_purged_responses_total", "Expired responses purged.")
PURGED_AUDIT = metrics.Counter("responsed_purged_audit_rows_total", "Expired audit rows purged.")
metrics.register(PURGED)
metrics.register(PURGED_AUDIT)
PURGED_CONVERSATIONS = metrics.Counter(
    "responsed_purged_conversations_total", "Idle conversations purged.")
metrics.register(PURGED_CONVERSATIONS)


@dataclass(slots=True)
class Purged:
    responses: int = 0
    audit_rows: int = 0
    conversations: int = 0


async def _pause(started: float) -> None:
    """Rest as long as the last batch took. With SQLite a batch runs on the event loop's thread
    and holds the one writer (about 20 ms for 100 responses of 200 events): a backlog is worked
    off at half speed, never as one long stall of every stream."""
    await asyncio.sleep(min(time.monotonic() - started, 1.0))


class Retention:
    def __init__(
        self,
        store: RetentionStore,
        *,
        response_ttl_s: float,
        audit_ttl_s: float,
        batch: int = 500,
        interval_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        conversation_ttl_s: float = 0.0,
    ) -> None:
        self._store = store
        self._response_ttl_s = response_ttl_s
        self._audit_ttl_s = audit_ttl_s
        self._conversation_ttl_s = conversation_ttl_s
        self._batch = max(1, batch)
        self._interval_s = interval_s
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def purge(self, now: float | None = None) -> Purged:
        """Purge everything expired at `now`, batch after batch."""
        now = self._clock() if now is None else now
        purged = Purged()
        if self._response_ttl_s > 0:
            cutoff = now - self._response_ttl_s
            while True:
                started = time.monotonic()
                count = await self._store.purge_responses(cutoff, self._batch)
                purged.responses += count
                PURGED.inc(count)
                if count < self._batch:
                    break
                await _pause(started)
        if self._conversation_ttl_s > 0:
            purged.conversations = await self._batches(
                self._store.purge_conversations, now - self._conversation_ttl_s)
            PURGED_CONVERSATIONS.inc(purged.conversations)
        if self._audit_ttl_s > 0:
            cutoff = now - self._audit_ttl_s
            while True:
                started = time.monotonic()
                count = await self._store.purge_audit(cutoff, self._batch)
                purged.audit_rows += count
                PURGED_AUDIT.inc(count)
                if count < self._batch:
                    break
                await _pause(started)
        return purged

    async def _batches(self, purge: Callable[[float, int], Awaitable[int]], cutoff: float) -> int:
        total = 0
        while True:
            started = time.monotonic()
            count = await purge(cutoff, self._batch)
            total += count
            if count < self._batch:
                return total
            await _pause(started)

    def start(self) -> None:
        ttls = (self._response_ttl_s, self._audit_ttl_s, self._conversation_ttl_s)
        if self._interval_s > 0 and any(ttl > 0 for ttl in ttls):
            self._task = asyncio.create_task(self._run(), name="retention")

    async def _run(self) -> None:
        while True:
            # Jitter: processes started together do not purge in lockstep.
            await asyncio.sleep(self._interval_s * random.uniform(0.8, 1.2))
            try:
                purged = await self.purge()
            except Exception:
                log.warning("purge failed; trying again later", exc_info=True)
                continue
            if purged.responses or purged.audit_rows or purged.conversations:
                log.info("purged %d responses, %d audit rows, %d conversations",
                         purged.responses, purged.audit_rows, purged.conversations)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
