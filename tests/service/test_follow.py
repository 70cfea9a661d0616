"""Gap-free following: exactly the events after the cursor, in order, even over a lossy bus."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import orjson
import pytest

from domain.builder import ResponseBuilder
from domain.ports import Batch, Final, NewResponse
from domain.request import parse_create_request
from domain.response import new_response
from service.follow import follow
from service.runner import encode
from service.writer import EventWriter
from storage.memory_bus import MemoryBus
from storage.sql_store import SqlEventStore


class LossyBus(MemoryBus):
    """Drops a share of publishes, as Redis pub/sub may: the reader must not notice."""

    def __init__(self, drop: float, seed: int = 7, queue_size: int = 1024) -> None:
        super().__init__(queue_size)
        self._drop = drop
        self._random = random.Random(seed)
        self.dropped = 0

    async def publish(self, batch: Batch) -> None:
        if not batch.terminal and self._random.random() < self._drop:
            self.dropped += 1
            return
        await super().publish(batch)


@pytest.fixture
async def writer_on(store: SqlEventStore):
    writers: list[EventWriter] = []

    def make(bus: MemoryBus) -> EventWriter:
        writer = EventWriter(store, bus)
        writer.start()
        writers.append(writer)
        return writer

    yield make
    for writer in writers:
        await writer.close()


async def produce(writer: EventWriter, response_id: str, words: int, pause: float) -> list[bytes]:
    """Generate a response through the real writer; returns every event's bytes, in order."""
    request = parse_create_request({"model": "m"})
    builder = ResponseBuilder(new_response(response_id, request, 1))
    builder.start()
    first = encode(builder.drain())
    writer.add(
        response_id,
        first,
        create=NewResponse(response_id, "o", "m", "in_progress", False, b"{}", 1, []),
    )
    produced = [e.data for e in first]
    for i in range(words):
        builder.text(f" w{i}")
        events = encode(builder.drain())
        produced += [e.data for e in events]
        writer.add(response_id, events)
        if i % 5 == 0:
            await asyncio.sleep(pause)
    builder.complete()
    last = encode(builder.drain())
    produced += [e.data for e in last]
    writer.add(response_id, last, final=Final("completed", orjson.dumps(builder.response), 2))
    return produced


async def read_all(store, bus, response_id: str, cursor: int) -> list[bytes]:  # type: ignore[no-untyped-def]
    subscription = await bus.subscribe(response_id)
    try:
        received: list[bytes] = []
        stream: AsyncIterator = follow(store, subscription, response_id, cursor, idle_s=0.05)
        async for events in stream:
            received += [e.data for e in events or []]
        return received
    finally:
        await subscription.close()


async def test_readers_joining_anywhere_get_exactly_the_rest(store, writer_on):  # type: ignore[no-untyped-def]
    bus = LossyBus(drop=0.2)
    writer = writer_on(bus)
    rng = random.Random(3)
    producer = asyncio.create_task(produce(writer, "resp_live", 300, 0.002))
    readers = []
    for _ in range(40):
        await asyncio.sleep(rng.random() * 0.01)
        cursor = rng.randint(-1, 200)
        readers.append((cursor, asyncio.create_task(read_all(store, bus, "resp_live", cursor))))
    produced = await producer
    assert bus.dropped > 0
    for cursor, reader in readers:
        received = await asyncio.wait_for(reader, 20)
        assert received == produced[cursor + 1 :], f"reader from {cursor}"


async def test_a_lagging_reader_catches_up_from_the_store(store, writer_on):  # type: ignore[no-untyped-def]
    bus = MemoryBus(queue_size=2)
    writer = writer_on(bus)
    subscription = await bus.subscribe("resp_lag")
    produced = await produce(writer, "resp_lag", 200, 0.001)
    await writer.flushed()
    assert subscription.lagged  # the two-batch queue overflowed while nobody read
    received = []
    async for events in follow(
        store, subscription, "resp_lag", -1, replay_first=False, idle_s=0.05
    ):
        received += [e.data for e in events or []]
    await subscription.close()
    assert received == produced


async def test_a_finished_response_replays_and_ends(store, writer_on):  # type: ignore[no-untyped-def]
    bus = MemoryBus()
    writer = writer_on(bus)
    produced = await produce(writer, "resp_done", 10, 0)
    await writer.flushed()
    assert await asyncio.wait_for(read_all(store, bus, "resp_done", -1), 10) == produced
    assert await asyncio.wait_for(read_all(store, bus, "resp_done", len(produced) - 2), 10) == [
        produced[-1]
    ]


async def test_following_a_deleted_response_ends(store, writer_on):  # type: ignore[no-untyped-def]
    bus = MemoryBus()
    writer = writer_on(bus)
    request = parse_create_request({"model": "m"})
    builder = ResponseBuilder(new_response("resp_gone", request, 1))
    builder.start()
    writer.add(
        "resp_gone",
        encode(builder.drain()),
        create=NewResponse("resp_gone", "o", "m", "in_progress", False, b"{}", 1, []),
    )
    await writer.flushed()
    reader = asyncio.create_task(read_all(store, bus, "resp_gone", -1))
    await asyncio.sleep(0.1)
    await store.delete("resp_gone")
    received = await asyncio.wait_for(reader, 10)
    assert len(received) == 2  # created, in_progress; then it ended instead of hanging


async def test_a_cursor_at_or_past_the_end_of_a_finished_log_ends_at_once(store, writer_on):  # type: ignore[no-untyped-def]
    bus = MemoryBus()
    writer = writer_on(bus)
    produced = await produce(writer, "resp_end", 10, 0)
    await writer.flushed()
    last = len(produced) - 1
    for cursor in (last, last + 1, 2**31 - 1):
        assert await asyncio.wait_for(read_all(store, bus, "resp_end", cursor), 5) == []


async def test_a_cursor_past_the_live_end_waits_for_the_terminal_event(store, writer_on):  # type: ignore[no-untyped-def]
    bus = MemoryBus()
    writer = writer_on(bus)
    reader = asyncio.create_task(read_all(store, bus, "resp_ahead", 10_000))
    await asyncio.sleep(0.05)
    await produce(writer, "resp_ahead", 10, 0.01)
    assert await asyncio.wait_for(reader, 10) == []  # ended with the response, nothing sent


class AwayReads:
    """A store whose reads fail (the database is away) until `back` is set."""

    def __init__(self, store: SqlEventStore) -> None:
        self._store = store
        self.back = asyncio.Event()
        self.failed = 0

    async def read_events(self, response_id, after, limit):  # type: ignore[no-untyped-def]
        self._check()
        return await self._store.read_events(response_id, after, limit)

    async def get(self, response_id):  # type: ignore[no-untyped-def]
        self._check()
        return await self._store.get(response_id)

    def _check(self) -> None:
        if not self.back.is_set():
            self.failed += 1
            raise ConnectionRefusedError("the database is away")


def _outage(error: BaseException) -> bool:
    return isinstance(error, ConnectionRefusedError)


async def test_a_follower_keeps_alive_through_an_outage_and_continues(
    store: SqlEventStore, writer_on
):  # type: ignore[no-untyped-def]
    bus = MemoryBus()
    writer = writer_on(bus)
    produced = await produce(writer, "resp_o", 20, 0)
    await writer.flushed()
    away = AwayReads(store)
    subscription = await bus.subscribe("resp_o")
    got: list[bytes] = []
    keepalives = 0
    async for batch in follow(away, subscription, "resp_o", -1, keepalive_s=0.01,  # type: ignore[arg-type]
                              is_outage=_outage, outage_s=60):
        if batch is None:
            keepalives += 1
            if keepalives == 3:
                away.back.set()  # the database is back: the stream goes on where it was
            continue
        got += [e.data for e in batch]
    await subscription.close()
    assert keepalives >= 3 and away.failed > 0
    assert got == produced  # each event once, in order, up to the terminal one


async def test_a_follower_past_the_outage_limit_ends_with_an_error_event(
    store: SqlEventStore, writer_on
):  # type: ignore[no-untyped-def]
    bus = MemoryBus()
    writer = writer_on(bus)
    await produce(writer, "resp_l", 3, 0)
    await writer.flushed()
    away = AwayReads(store)
    subscription = await bus.subscribe("resp_l")
    batches = [
        b
        async for b in follow(away, subscription, "resp_l", 2, keepalive_s=0.01,  # type: ignore[arg-type]
                              is_outage=_outage, outage_s=0.05)
        if b is not None
    ]
    await subscription.close()
    assert len(batches) == 1 and [e.type for e in batches[0]] == ["error"]
    error = orjson.loads(batches[0][0].data)
    assert error["code"] == "service_unavailable" and "starting_after=2" in error["message"]


async def test_a_store_error_that_is_no_outage_is_not_retried(store: SqlEventStore):
    class Broken:
        async def read_events(self, *args):  # type: ignore[no-untyped-def]
            raise ValueError("a bug")

    subscription = await MemoryBus().subscribe("resp_x")
    with pytest.raises(ValueError):
        async for _ in follow(Broken(), subscription, "resp_x", -1,  # type: ignore[arg-type]
                              is_outage=_outage):
            pass
    await subscription.close()
