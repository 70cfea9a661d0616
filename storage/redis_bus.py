"""The Redis bus: one pub/sub connection per process, one channel per response.

Committed batches are published once per batch. Each process keeps one Redis subscription per
response channel however many local readers it has, and fans messages out to their bounded
queues. Subscribing waits for the server's confirmation, so a reader that then reads the store
misses nothing in between. When Redis is away, readers are marked lagged and catch up from the
store on their idle interval; when it is back the channels are subscribed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import struct
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from domain.ports import Batch, StoredEvent
from storage.memory_bus import MemorySubscription
from storage.redis_client import redis_client

log = logging.getLogger("responsed.bus")

EVENTS_PREFIX = "responsed:events:"
CANCEL_CHANNEL = "responsed:cancel"
_HEAD = struct.Struct("!iHI")  # seq, len(type), len(data)
_CONFIRM_TIMEOUT_S = 2.0


def encode_batch(batch: Batch) -> bytes:
    parts = [b"\x01" if batch.terminal else b"\x00"]
    for event in batch.events:
        kind = event.type.encode()
        parts += (_HEAD.pack(event.seq, len(kind), len(event.data)), kind, event.data)
    return b"".join(parts)


def decode_batch(response_id: str, payload: bytes) -> Batch:
    terminal = payload[:1] == b"\x01"
    events, offset, size = [], 1, len(payload)
    while offset < size:
        seq, kind_len, data_len = _HEAD.unpack_from(payload, offset)
        offset += _HEAD.size
        kind = payload[offset : offset + kind_len].decode()
        offset += kind_len
        events.append(StoredEvent(seq, kind, payload[offset : offset + data_len]))
        offset += data_len
    return Batch(response_id, events, terminal)


class RedisSubscription(MemorySubscription):
    """A local reader's queue; the shared Redis subscription feeds it."""


class RedisBus:
    def __init__(self, url: str, *, queue_size: int = 1024) -> None:
        self._redis = redis_client(url)
        self._pubsub = self._redis.pubsub()
        self._queue_size = queue_size
        self._readers: dict[str, set[RedisSubscription]] = {}
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._cancel_handlers: list[Callable[[str], object]] = []
        self._task: asyncio.Task[None] | None = None
        self._wanted = asyncio.Event()
        self._healthy = True
        self._publishing = True
        # A test hook: drop this share of publishes, as a lossy network would.
        self._drop = float(os.environ.get("RESPONSED_TEST_DROP_PUBLISH", "0") or 0)
        self.published = 0

    # -- publishing -----------------------------------------------------------------------------
    async def publish(self, batch: Batch) -> None:
        if self._drop and random.random() < self._drop:
            return
        try:
            await self._redis.publish(EVENTS_PREFIX + batch.response_id, encode_batch(batch))
            self.published += 1
            if not self._publishing:
                log.info("publishing to Redis again")
                self._publishing = True
        except (RedisError, OSError) as error:
            # Readers fall back to the store; nothing is lost, only delayed. Logged once per
            # outage: every batch of every response would fail the same way.
            if self._publishing:
                log.warning("publishing to Redis failed: %s", error)
                self._publishing = False

    async def publish_many(self, batches: list[Batch]) -> None:
        """A flush's batches in one round trip (pipelined PUBLISHes, in order)."""
        if self._drop:
            batches = [b for b in batches if random.random() >= self._drop]
        if not batches:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for batch in batches:
                    pipe.publish(EVENTS_PREFIX + batch.response_id, encode_batch(batch))
                await pipe.execute()
            self.published += len(batches)
            if not self._publishing:
                log.info("publishing to Redis again")
                self._publishing = True
        except (RedisError, OSError) as error:
            if self._publishing:
                log.warning("publishing to Redis failed: %s", error)
                self._publishing = False

    async def signal_cancel(self, response_id: str) -> None:
        try:
            await self._redis.publish(CANCEL_CHANNEL, response_id.encode())
        except (RedisError, OSError) as error:
            log.warning("cancel signal failed: %s", error)

    def on_cancel(self, handler: Callable[[str], object]) -> None:
        """Call `handler(response_id)` for every cancel signal (workers use this)."""
        self._cancel_handlers.append(handler)
        self._start()
        asyncio.get_running_loop().create_task(self._subscribe_channel(CANCEL_CHANNEL))

    # -- subscribing ----------------------------------------------------------------------------
    async def subscribe(self, response_id: str, *, bounded: bool = True) -> RedisSubscription:
        self._start()
        subscription = RedisSubscription(self, response_id, self._queue_size if bounded else 0)
        readers = self._readers.setdefault(response_id, set())
        readers.add(subscription)
        channel = EVENTS_PREFIX + response_id
        if not await self._subscribe_channel(channel):
            subscription.lagged = True  # unconfirmed: the store is the source until it is
        return subscription

    async def _subscribe_channel(self, channel: str) -> bool:
        future = self._confirmed.get(channel)
        if future is None:
            future = self._confirmed[channel] = asyncio.get_running_loop().create_future()
            try:
                await self._pubsub.subscribe(channel)
            except (RedisError, OSError) as error:
                log.warning("subscribe failed: %s", error)
                self._confirmed.pop(channel, None)
                return False
            self._wanted.set()
        try:
            await asyncio.wait_for(asyncio.shield(future), _CONFIRM_TIMEOUT_S)
        except TimeoutError:
            return False
        return True

    def _remove(self, subscription: RedisSubscription) -> None:
        readers = self._readers.get(subscription.response_id)
        if readers is None:
            return
        readers.discard(subscription)
        if not readers:
            del self._readers[subscription.response_id]
            channel = EVENTS_PREFIX + subscription.response_id
            self._confirmed.pop(channel, None)
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().create_task(self._unsubscribe(channel))

    async def _unsubscribe(self, channel: str) -> None:
        if channel.removeprefix(EVENTS_PREFIX) in self._readers:
            return  # someone subscribed again meanwhile
        # If the connection is gone, a reconnect will not resubscribe it either.
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.unsubscribe(channel)

    # -- the reader task ------------------------------------------------------------------------
    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._read(), name="redis-bus")

    async def _read(self) -> None:
        delay = 0.1
        while True:
            if not self._pubsub.subscribed:
                self._wanted.clear()
                await self._wanted.wait()
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except (RedisError, OSError) as error:
                if self._healthy:
                    log.warning("lost the Redis subscription connection: %s", error)
                self._healthy = False
                self._mark_all_lagged()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if not self._healthy:
                # Back: redis-py resubscribed on reconnect; what was published meanwhile is
                # in the store, so every reader catches up from there once.
                log.info("Redis subscription connection is back")
                self._healthy = True
                self._mark_all_lagged()
            delay = 0.1
            if message is not None:
                self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        channel = (
            message["channel"].decode()
            if isinstance(message["channel"], bytes)
            else (message["channel"])
        )
        if kind == "message":
            if channel == CANCEL_CHANNEL:
                for handler in self._cancel_handlers:
                    handler(message["data"].decode())
                return
            response_id = channel.removeprefix(EVENTS_PREFIX)
            readers = self._readers.get(response_id)
            if readers:
                batch = decode_batch(response_id, message["data"])
                for reader in readers:
                    reader._offer(batch)
        elif kind == "subscribe":
            future = self._confirmed.get(channel)
            if future is not None and not future.done():
                future.set_result(None)

    def _mark_all_lagged(self) -> None:
        for readers in self._readers.values():
            for reader in readers:
                if not reader.lagged:
                    reader.lagged = True
                    reader._drop_queue()

    @property
    def subscribers(self) -> int:
        return sum(map(len, self._readers.values()))

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]  # unannotated in redis-py
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()
