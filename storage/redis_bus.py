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

from redis.exceptions import RedisError

from domain.ports import Batch, StoredEvent
from storage.memory_bus import MemorySubscription
from storage.redis_client import redis_client
from storage.redis_pubsub import PubSubChannels

log = logging.getLogger("responsed.bus")

EVENTS_PREFIX = "responsed:events:"
CANCEL_CHANNEL = "responsed:cancel"
_HEAD = struct.Struct("!iHI")  # seq, len(type), len(data)


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
        self._queue_size = queue_size
        self._readers: dict[str, set[RedisSubscription]] = {}
        self._cancel_handlers: list[Callable[[str], object]] = []
        self._channels = PubSubChannels(self._redis.connection_pool, self._mark_all_lagged,
                                        self._dispatch)
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
        asyncio.get_running_loop().create_task(self._channels.subscribe(CANCEL_CHANNEL))

    # -- subscribing ----------------------------------------------------------------------------
    async def subscribe(self, response_id: str, *, bounded: bool = True) -> RedisSubscription:
        subscription = RedisSubscription(self, response_id, self._queue_size if bounded else 0)
        self._readers.setdefault(response_id, set()).add(subscription)
        if not await self._channels.subscribe(EVENTS_PREFIX + response_id):
            subscription.lagged = True  # unconfirmed: the store is the source until it is
        return subscription

    def _remove(self, subscription: RedisSubscription) -> None:
        readers = self._readers.get(subscription.response_id)
        if readers is None:
            return
        readers.discard(subscription)
        if not readers:
            del self._readers[subscription.response_id]
            self._channels.unsubscribe(EVENTS_PREFIX + subscription.response_id)

    def _dispatch(self, channel: str, data: bytes) -> None:
        if channel == CANCEL_CHANNEL:
            for handler in self._cancel_handlers:
                handler(data.decode())
            return
        response_id = channel.removeprefix(EVENTS_PREFIX)
        readers = self._readers.get(response_id)
        if readers:
            batch = decode_batch(response_id, data)
            for reader in readers:
                reader._offer(batch)

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
        await self._channels.close()
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()
