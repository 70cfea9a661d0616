"""The job queue against a real Redis server: entries, batching of enqueues, acknowledgements."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from storage import redis_jobs
from storage.redis_jobs import GROUP, RedisJobQueue


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
