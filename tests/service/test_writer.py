"""The group-commit writer: batches grow with load, order holds, stale writers are fenced."""

from __future__ import annotations

import asyncio

import orjson

from domain.ports import NewResponse, StoredEvent
from service.writer import EventWriter
from storage.memory_bus import MemoryBus
from storage.sql_store import SqlEventStore


def _events(first: int, last: int) -> list[StoredEvent]:
    return [StoredEvent(s, "t", orjson.dumps(s)) for s in range(first, last + 1)]


def _create(response_id: str) -> NewResponse:
    return NewResponse(response_id, "o", "m", "in_progress", False, b"{}", 1, [])


async def test_concurrent_producers_share_transactions(store: SqlEventStore):
    bus = MemoryBus()
    writer = EventWriter(store, bus)
    writer.start()
    subscription = await bus.subscribe("resp_0")

    async def producer(n: int) -> None:
        rid = f"resp_{n}"
        writer.add(rid, _events(0, 0), create=_create(rid))
        for seq in range(1, 100):
            writer.add(rid, _events(seq, seq))
            if seq % 10 == 0:
                await asyncio.sleep(0)

    await asyncio.gather(*(producer(n) for n in range(32)))
    await writer.flushed()
    assert writer.events_written == 3200
    assert writer.flushes < 3200 / 10  # batching happened
    for n in range(32):
        assert [e.seq for e in await store.read_events(f"resp_{n}", -1, 500)] == list(range(100))
    published = []
    while (batch := await subscription.get(0.01)) is not None:
        published += [e.seq for e in batch.events]
    assert published == list(range(100))  # published after commit, in order
    await subscription.close()
    await writer.close()


async def test_a_fenced_writer_is_told(store: SqlEventStore):
    writer = EventWriter(store, MemoryBus())
    writer.start()
    writer.add("resp_a", _events(0, 1), create=_create("resp_a"))
    await writer.flushed()
    writer.add("resp_a", _events(2, 3), epoch=5)  # someone else owns epoch 0's successor
    await writer.flushed()
    assert writer.is_fenced("resp_a")
    assert [e.seq for e in await store.read_events("resp_a", -1, 10)] == [0, 1]
    await writer.close()


async def test_close_commits_what_is_queued(store: SqlEventStore):
    writer = EventWriter(store, MemoryBus())
    writer.start()
    writer.add("resp_a", _events(0, 49), create=_create("resp_a"))
    await writer.close()
    assert len(await store.read_events("resp_a", -1, 100)) == 50
