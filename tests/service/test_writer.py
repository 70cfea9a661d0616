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


class GatedStore:
    """A store whose appends touching `held` wait for `gate`: a transaction kept in flight."""

    def __init__(self, store: SqlEventStore, held: str) -> None:
        self._store = store
        self._held = held
        self.gate = asyncio.Event()
        self.holding = asyncio.Event()
        self.appended: list[list[str]] = []

    async def append(self, batches):
        if any(b.response_id == self._held for b in batches) and not self.gate.is_set():
            self.holding.set()
            await self.gate.wait()
        self.appended.append([b.response_id for b in batches])
        return await self._store.append(batches)


async def _seqs(store: SqlEventStore, response_id: str) -> list[int]:
    return [e.seq for e in await store.read_events(response_id, -1, 1000)]


async def test_urgent_events_overtake_a_transaction_in_flight(store: SqlEventStore):
    gated = GatedStore(store, held="resp_slow")
    writer = EventWriter(gated, MemoryBus())  # type: ignore[arg-type]
    writer.start()
    writer.add("resp_slow", _events(0, 99), create=_create("resp_slow"))
    await gated.holding.wait()  # its transaction is in flight, and stays there
    writer.add("resp_new", _events(0, 3), create=_create("resp_new"), urgent=True)
    waiting = asyncio.create_task(writer.flushed())
    for _ in range(100):
        if await _seqs(store, "resp_new"):
            break
        await asyncio.sleep(0.01)
    assert await _seqs(store, "resp_new") == [0, 1, 2, 3]
    assert await _seqs(store, "resp_slow") == []
    await asyncio.sleep(0.05)
    assert not waiting.done()  # flushed() waits for the transaction still in flight too
    gated.gate.set()
    await waiting
    assert await _seqs(store, "resp_slow") == list(range(100))
    await writer.close()


async def test_a_response_is_in_one_transaction_at_a_time(store: SqlEventStore):
    gated = GatedStore(store, held="resp_a")
    bus = MemoryBus()
    writer = EventWriter(gated, bus)  # type: ignore[arg-type]
    writer.start()
    subscription = await bus.subscribe("resp_a")
    writer.add("resp_a", _events(0, 9), create=_create("resp_a"))
    await gated.holding.wait()
    writer.add("resp_a", _events(10, 19), urgent=True)  # must wait for 0-9, in either lane
    await asyncio.sleep(0.05)
    assert gated.appended == []
    gated.gate.set()
    await writer.flushed()
    assert await _seqs(store, "resp_a") == list(range(20))
    published = []
    while (batch := await subscription.get(0.01)) is not None:
        published += [e.seq for e in batch.events]
    assert published == list(range(20))
    assert [ids for ids in gated.appended if "resp_a" in ids] == [["resp_a"], ["resp_a"]]
    await subscription.close()
    await writer.close()


async def test_flushed_is_not_held_up_by_a_response_that_keeps_streaming(store: SqlEventStore):
    writer = EventWriter(store, MemoryBus())
    writer.start()
    writer.add("resp_long", _events(0, 0), create=_create("resp_long"))
    writer.add("resp_short", _events(0, 0), create=_create("resp_short"))
    streaming = True

    async def stream() -> None:
        seq = 1
        while streaming:
            writer.add("resp_long", _events(seq, seq))
            seq += 1
            await asyncio.sleep(0)

    producer = asyncio.create_task(stream())
    await asyncio.wait_for(writer.flushed(), 5)
    assert await _seqs(store, "resp_short") == [0]
    streaming = False
    await producer
    await writer.close()


async def test_landed_waits_for_that_response_only(store: SqlEventStore):
    gated = GatedStore(store, held="resp_slow")
    writer = EventWriter(gated, MemoryBus())  # type: ignore[arg-type]
    writer.start()
    writer.add("resp_slow", _events(0, 9), create=_create("resp_slow"))
    await gated.holding.wait()
    writer.add("resp_new", _events(0, 1), create=_create("resp_new"), urgent=True)
    await asyncio.wait_for(writer.landed("resp_new"), 5)  # not held up by resp_slow
    assert await _seqs(store, "resp_new") == [0, 1]
    landing = asyncio.create_task(writer.landed("resp_slow"))
    await asyncio.sleep(0.05)
    assert not landing.done()
    gated.gate.set()
    await asyncio.wait_for(landing, 5)
    assert await _seqs(store, "resp_slow") == list(range(10))
    await writer.landed("resp_unknown")  # nothing of it: at once
    await writer.close()


async def test_with_overlapping_writes_urgent_batches_go_alone(store: SqlEventStore):
    gated = GatedStore(store, held="resp_none")
    writer = EventWriter(gated, MemoryBus(), concurrent_writes=True)  # type: ignore[arg-type]
    writer.start()
    gated.gate.set()
    writer.add("resp_a", _events(0, 4), create=_create("resp_a"))
    writer.add("resp_b", _events(0, 4), create=_create("resp_b"), urgent=True)
    await writer.flushed()
    assert sorted(gated.appended) == [["resp_a"], ["resp_b"]]
    await writer.close()


async def test_a_run_waits_for_its_first_delta_only_where_lanes_overlap(store: SqlEventStore):
    for concurrent in (True, False):
        gated = GatedStore(store, held=f"resp_{concurrent}")
        writer = EventWriter(gated, MemoryBus(), concurrent_writes=concurrent)  # type: ignore[arg-type]
        writer.start()
        rid = f"resp_{concurrent}"
        writer.add(rid, _events(0, 1), create=_create(rid), urgent=True)
        await gated.holding.wait()
        waiting = asyncio.create_task(writer.first_delta_sent(rid))
        await asyncio.sleep(0.05)
        assert waiting.done() is not concurrent
        gated.gate.set()
        await asyncio.wait_for(waiting, 5)
        await writer.close()


async def test_on_commit_runs_when_the_transaction_has_ended(store: SqlEventStore):
    gated = GatedStore(store, held="resp_a")
    writer = EventWriter(gated, MemoryBus())  # type: ignore[arg-type]
    writer.start()
    called = []
    writer.add("resp_a", _events(0, 1), create=_create("resp_a"),
               on_commit=lambda: called.append("a"))
    await gated.holding.wait()
    writer.add("resp_a", _events(2, 3), on_commit=lambda: called.append("later"))
    assert called == []
    gated.gate.set()
    await writer.flushed()
    assert called == ["a", "later"]  # each with the transaction that carried its events
    await writer.close()


class AwayStore:
    """A store that is away for its first `away` appends. With `commit_then_fail` each failing
    append commits first and then loses its answer (the connection dropped after COMMIT)."""

    def __init__(self, store: SqlEventStore, away: int, *, commit_then_fail: bool = False) -> None:
        self._store = store
        self.away = away
        self._commit_then_fail = commit_then_fail
        self.attempts = 0

    async def append(self, batches):
        self.attempts += 1
        if self.away > 0:
            if self._commit_then_fail:
                await self._store.append(batches)
            self._fail()
        return await self._store.append(batches)

    async def get(self, response_id):
        if self.away > 0:
            self._fail()
        return await self._store.get(response_id)

    def _fail(self) -> None:
        self.away -= 1
        raise ConnectionResetError("the database went away")


def _outage(error: BaseException) -> bool:
    return isinstance(error, ConnectionResetError)


async def test_batches_are_held_through_an_outage_and_published_once(store: SqlEventStore):
    writer = EventWriter(store, MemoryBus())
    writer.start()
    writer.add("resp_a", _events(0, 1), create=_create("resp_a"))
    await writer.flushed()
    await writer.close()
    away = AwayStore(store, away=12)  # longer than the retries of an error that is no outage
    bus = MemoryBus()
    subscription = await bus.subscribe("resp_a")
    writer = EventWriter(away, bus, is_outage=_outage, outage_s=60)  # type: ignore[arg-type]
    writer.start()
    writer.add("resp_a", _events(2, 5))
    await writer.flushed()
    writer.add("resp_a", _events(6, 7))
    await writer.flushed()
    assert not writer.is_fenced("resp_a")
    assert await _seqs(store, "resp_a") == list(range(8))
    published = []
    while (batch := await subscription.get(0.01)) is not None:
        published += [e.seq for e in batch.events]
    assert published == list(range(2, 8))  # in order, each once
    await subscription.close()
    await writer.close()


async def test_a_commit_that_landed_before_its_answer_was_lost_is_not_fenced(
    store: SqlEventStore,
):
    writer = EventWriter(store, MemoryBus())
    writer.start()
    writer.add("resp_a", _events(0, 1), create=_create("resp_a"))
    await writer.flushed()
    await writer.close()
    away = AwayStore(store, away=1, commit_then_fail=True)
    bus = MemoryBus()
    subscription = await bus.subscribe("resp_a")
    writer = EventWriter(away, bus, is_outage=_outage, outage_s=60)  # type: ignore[arg-type]
    writer.start()
    writer.add("resp_a", _events(2, 4))
    await writer.flushed()
    # The retry found the batch already stored: neither fenced (the run would stop) nor
    # appended twice, and published once.
    assert not writer.is_fenced("resp_a")
    writer.add("resp_a", _events(5, 5))
    await writer.flushed()
    assert await _seqs(store, "resp_a") == list(range(6))
    published = []
    while (batch := await subscription.get(0.01)) is not None:
        published += [e.seq for e in batch.events]
    assert published == [2, 3, 4, 5]
    await subscription.close()
    await writer.close()


async def test_a_create_whose_commit_landed_is_not_created_twice(store: SqlEventStore):
    away = AwayStore(store, away=1, commit_then_fail=True)
    writer = EventWriter(away, MemoryBus(), is_outage=_outage, outage_s=60)  # type: ignore[arg-type]
    writer.start()
    writer.add("resp_c", _events(0, 2), create=_create("resp_c"), urgent=True)
    await writer.flushed()
    assert not writer.is_fenced("resp_c")
    assert await _seqs(store, "resp_c") == [0, 1, 2]
    await writer.close()


async def test_past_the_outage_limit_the_batches_are_given_up(store: SqlEventStore):
    writer = EventWriter(store, MemoryBus())
    writer.start()
    writer.add("resp_a", _events(0, 1), create=_create("resp_a"))
    await writer.flushed()
    await writer.close()
    away = AwayStore(store, away=10**6)
    writer = EventWriter(away, MemoryBus(), is_outage=_outage, outage_s=0.01)  # type: ignore[arg-type]
    writer.start()
    writer.add("resp_a", _events(2, 3))
    await writer.flushed()
    assert writer.is_fenced("resp_a")  # its run stops; its readers end with an error event
    await writer.close()
