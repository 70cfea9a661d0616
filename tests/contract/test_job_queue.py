"""The job queue's contract (domain.jobs.JobQueue) in memory and on a real Redis server:
entries, acknowledgements, reclaiming a silent consumer's entries; then Redis's own batching of
enqueues."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from domain.jobs import JobQueue
from storage import redis_jobs
from storage.memory_jobs import MemoryJobQueue
from storage.redis_jobs import GROUP, RedisJobQueue


@pytest.fixture(params=["memory", "redis"])
async def jobs(request: pytest.FixtureRequest, monkeypatch) -> AsyncIterator[JobQueue]:  # type: ignore[no-untyped-def]
    if request.param == "memory":
        yield MemoryJobQueue()
        return
    server = request.getfixturevalue("redis_server")
    monkeypatch.setattr(redis_jobs, "STREAM", f"test:jobs:{uuid.uuid4().hex}")
    queue = RedisJobQueue(server.url)
    yield queue
    await queue.close()


async def test_entries_arrive_in_order_once_and_carry_their_job(jobs: JobQueue):
    assert await jobs.take("w1", 10, block_ms=10) == []  # nothing yet: waits, then empty
    await jobs.enqueue("resp_a", b"job-a")
    await jobs.enqueue("resp_b")
    entries = await jobs.take("w1", 10, block_ms=100)
    assert [(e.response_id, e.payload) for e in entries] == [("resp_a", b"job-a"), ("resp_b", None)]
    assert await jobs.take("w2", 10, block_ms=10) == []  # delivered once to the group
    assert await jobs.ping() is True


async def test_a_waiting_consumer_gets_an_entry_queued_meanwhile(jobs: JobQueue):
    await jobs.take("w1", 1, block_ms=10)  # the group exists
    waiting = asyncio.create_task(jobs.take("w1", 1, block_ms=5000))
    await asyncio.sleep(0.05)
    await jobs.enqueue("resp_a")
    [entry] = await asyncio.wait_for(waiting, 10)
    assert entry.response_id == "resp_a"


async def test_unacknowledged_entries_of_a_silent_consumer_are_reclaimed(jobs: JobQueue):
    await jobs.enqueue("resp_a")
    await jobs.enqueue("resp_b")
    first, second = await jobs.take("w1", 10, block_ms=100)
    await jobs.ack(first.entry_id)
    assert await jobs.reclaim("w2", min_idle_ms=60_000, count=10) == []  # not silent long
    [reclaimed] = await jobs.reclaim("w2", min_idle_ms=0, count=10)
    assert (reclaimed.entry_id, reclaimed.response_id) == (second.entry_id, "resp_b")
    await jobs.ack(reclaimed.entry_id)
    assert await jobs.reclaim("w3", min_idle_ms=0, count=10) == []


@pytest.fixture
async def queue(redis_server, monkeypatch) -> RedisJobQueue:  # type: ignore[no-untyped-def]
    # A stream of its own: other tests share the server.
    monkeypatch.setattr(redis_jobs, "STREAM", f"test:jobs:{uuid.uuid4().hex}")
    jobs = RedisJobQueue(redis_server.url)
    yield jobs  # type: ignore[misc]
    await jobs.close()


async def test_entries_enqueued_together_arrive_in_order_with_their_jobs(queue: RedisJobQueue):
    ids = [f"resp_{n:03d}" for n in range(50)]
    await queue.enqueue("resp_first")  # the group is made once
    await asyncio.gather(*(queue.enqueue(rid, b"job-" + rid.encode()) for rid in ids))
    first, *entries = await queue.take("w1", 100, block_ms=100)
    assert first.response_id == "resp_first" and first.payload is None
    assert [e.response_id for e in entries] == ids
    assert [e.payload for e in entries] == [b"job-" + rid.encode() for rid in ids]
    await queue.ack(first.entry_id, *(e.entry_id for e in entries))
    pending = await queue._redis.xpending(redis_jobs.STREAM, GROUP)
    assert pending["pending"] == 0


async def test_an_enqueue_that_fails_raises_for_every_caller(queue: RedisJobQueue):
    await queue.enqueue("resp_first")  # the group exists
    await queue._redis.delete(redis_jobs.STREAM)
    await queue._redis.set(redis_jobs.STREAM, "not a stream")  # every XADD now fails
    results = await asyncio.gather(
        *(queue.enqueue(f"resp_{n}") for n in range(3)), return_exceptions=True
    )
    assert len(results) == 3
    assert all(isinstance(r, Exception) and "WRONGTYPE" in str(r) for r in results)
