"""The in-process bus of embedded mode: the same contract as the Redis bus, no network.

Each subscriber has a bounded queue. A subscriber that falls behind is not allowed to hold the
publisher up: its queue is dropped and it is marked lagged, and it catches up from the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from domain.ports import Batch


class MemorySubscription:
    def __init__(self, bus: Any, response_id: str, maxsize: int) -> None:
        self._bus = bus
        self.response_id = response_id
        self.lagged = False
        self._queue: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize)

    def _offer(self, batch: Batch) -> None:
        if self.lagged:
            return
        try:
            self._queue.put_nowait(batch)
        except asyncio.QueueFull:
            self.lagged = True
            self._drop_queue()

    def _drop_queue(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)  # wake the reader so it notices the lag at once

    async def get(self, timeout: float) -> Batch | None:
        if not self._queue.empty():  # the common case under load: no timer, no task switch
            return self._queue.get_nowait()
        try:
            async with asyncio.timeout(timeout):
                return await self._queue.get()
        except TimeoutError:
            return None

    def get_nowait(self) -> Batch | None:
        """The next batch if one is already queued."""
        return None if self._queue.empty() else self._queue.get_nowait()

    def reset_lag(self) -> None:
        """Called after the reader caught up from the store: deliver live batches again."""
        self.lagged = False

    async def close(self) -> None:
        self._bus._remove(self)


class MemoryBus:
    def __init__(self, queue_size: int = 1024) -> None:
        self._queue_size = queue_size
        self._subscribers: dict[str, set[MemorySubscription]] = {}
        self._cancel_handlers: list[Callable[[str], None]] = []

    async def subscribe(self, response_id: str, *, bounded: bool = True) -> MemorySubscription:
        subscription = MemorySubscription(self, response_id, self._queue_size if bounded else 0)
        self._subscribers.setdefault(response_id, set()).add(subscription)
        return subscription

    async def publish(self, batch: Batch) -> None:
        for subscription in self._subscribers.get(batch.response_id, ()):
            subscription._offer(batch)

    async def publish_many(self, batches: list[Batch]) -> None:
        for batch in batches:
            await self.publish(batch)

    async def signal_cancel(self, response_id: str) -> None:
        for handler in self._cancel_handlers:
            handler(response_id)

    def on_cancel(self, handler: Callable[[str], None]) -> None:
        self._cancel_handlers.append(handler)

    def subscriber_count(self, response_id: str) -> int:
        return len(self._subscribers.get(response_id, ()))

    @property
    def subscribers(self) -> int:
        return sum(map(len, self._subscribers.values()))

    def _remove(self, subscription: MemorySubscription) -> None:
        subscribers = self._subscribers.get(subscription.response_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[subscription.response_id]

    async def close(self) -> None:
        self._subscribers.clear()
