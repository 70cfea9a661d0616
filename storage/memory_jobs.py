"""The job queue in memory (domain.jobs.JobQueue): a consumer group as storage.redis_jobs has
it in Redis, within one process. For fast tests of the dispatcher and the worker."""

from __future__ import annotations

import asyncio
import itertools
import time

from domain.jobs import Entry


class MemoryJobQueue:
    def __init__(self) -> None:
        self._new: list[Entry] = []
        self._pending: dict[str, tuple[str, float, Entry]] = {}  # id -> (consumer, at, entry)
        self._ids = itertools.count(1)
        self._arrived = asyncio.Condition()

    async def enqueue(self, response_id: str, payload: bytes | None = None) -> None:
        async with self._arrived:
            self._new.append(Entry(f"{next(self._ids)}-0", response_id, payload))
            self._arrived.notify_all()

    async def take(self, consumer: str, count: int, block_ms: int) -> list[Entry]:
        async with self._arrived:
            if not self._new:
                try:
                    await asyncio.wait_for(self._arrived.wait(), block_ms / 1000)
                except TimeoutError:
                    return []
            taken, self._new = self._new[:count], self._new[count:]
        now = time.monotonic()
        for entry in taken:
            self._pending[entry.entry_id] = (consumer, now, entry)
        return taken

    async def ack(self, *entry_ids: str) -> None:
        for entry_id in entry_ids:
            self._pending.pop(entry_id, None)

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[Entry]:
        now = time.monotonic()
        idle = [
            entry for _, at, entry in self._pending.values() if (now - at) * 1000 >= min_idle_ms
        ][:count]
        for entry in idle:
            self._pending[entry.entry_id] = (consumer, now, entry)
        return idle

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
