"""The job queue of distributed mode: a Redis Streams consumer group.

The API adds one entry per response (after its row is committed); workers read with
XREADGROUP, acknowledge after the terminal event is committed, and reclaim the entries of
silent workers with XAUTOCLAIM. Who may actually write a response is decided by the database
(the epoch compare-and-set), not by who holds the entry.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from domain.jobs import Entry
from storage.redis_client import redis_client

log = logging.getLogger("responsed.jobs")

STREAM = "responsed:jobs"
GROUP = "workers"
_MAX_LEN = 100_000  # a backstop: acknowledged entries are deleted as they are acknowledged


class RedisJobQueue:
    """domain.jobs.JobQueue on a Redis stream."""

    def __init__(self, url: str) -> None:
        self._redis = redis_client(url)
        self._group_ready = False
        # Entries queued in the same moment go to Redis in one pipeline (see enqueue).
        self._outbox: list[tuple[dict[FieldT, EncodableT], asyncio.Future[None]]] = []
        self._sending: asyncio.Task[None] | None = None

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self._redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._group_ready = True

    async def enqueue(self, response_id: str, payload: bytes | None = None) -> None:
        """Queue a response; `payload` optionally carries the job itself (see service.jobs)."""
        await self._ensure_group()
        fields: dict[FieldT, EncodableT] = {"id": response_id}
        if payload is not None:
            fields["job"] = payload
        # A wave of new requests enqueues together: one pipelined round trip for all of them
        # instead of one pooled connection and round trip each.
        future = asyncio.get_running_loop().create_future()
        self._outbox.append((fields, future))
        if self._sending is None:
            self._sending = asyncio.create_task(self._send())
        await future

    async def _send(self) -> None:
        await asyncio.sleep(0)  # let the others of this moment join
        outbox, self._outbox = self._outbox, []
        self._sending = None
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for fields, _ in outbox:
                    pipe.xadd(STREAM, fields, maxlen=_MAX_LEN, approximate=True)
                await pipe.execute()
        except Exception as error:
            for _, future in outbox:
                if not future.done():
                    future.set_exception(error)
                    future.exception()  # retrieved: its caller may have gone meanwhile
            return
        except BaseException:  # cancelled (shutting down): so are the callers' waits
            for _, future in outbox:
                future.cancel()
            raise
        for _, future in outbox:
            if not future.done():
                future.set_result(None)

    async def take(self, consumer: str, count: int, block_ms: int) -> list[Entry]:
        """Up to `count` new entries for this consumer."""
        await self._ensure_group()
        try:
            # redis-py types the reply of every protocol; this client speaks RESP2.
            reply = cast(_StreamsReply, await self._redis.xreadgroup(
                GROUP, consumer, {STREAM: ">"}, count=count, block=block_ms
            ))
        except ResponseError as error:
            if "NOGROUP" in str(error):  # Redis came back empty: the group must be made again
                self._group_ready = False
                return []
            raise
        return [
            Entry(_text(entry), _text(fields[b"id"]), fields.get(b"job"))
            for _, entries in reply or []
            for entry, fields in entries
        ]

    async def ack(self, *entry_ids: str) -> None:
        """Acknowledge finished entries and delete them: an acknowledged entry is never read
        again, and deleting it keeps the stream's memory to the responses still running."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(STREAM, GROUP, *entry_ids)
            pipe.xdel(STREAM, *entry_ids)
            await pipe.execute()

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[Entry]:
        """Entries delivered to consumers silent for `min_idle_ms`, now ours."""
        await self._ensure_group()
        try:
            reply = await self._redis.xautoclaim(
                STREAM, GROUP, consumer, min_idle_ms, start_id="0-0", count=count
            )
        except ResponseError as error:
            if "NOGROUP" in str(error):
                self._group_ready = False
                return []
            raise
        entries = reply[1]
        return [Entry(_text(entry), _text(fields[b"id"]), fields.get(b"job"))
                for entry, fields in entries if fields]

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except Exception:
            return False

    async def close(self) -> None:
        await self._redis.aclose()


# XREADGROUP's RESP2 reply: [[stream, [(entry id, {field: value}), ...]], ...]; None on timeout.
_StreamsReply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
