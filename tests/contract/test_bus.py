"""The bus contract, run against the in-process bus and a real Redis server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from domain.ports import Batch, StoredEvent
from storage.memory_bus import MemoryBus
from storage.redis_bus import RedisBus, decode_batch, encode_batch


@pytest.fixture(params=["memory", "redis"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[MemoryBus | RedisBus]:
    if request.param == "memory":
        instance: MemoryBus | RedisBus = MemoryBus(queue_size=4)
    else:
        server = request.getfixturevalue("redis_server")
        instance = RedisBus(server.url, queue_size=4)
    yield instance
    await instance.close()


def _batch(response_id: str, first: int, last: int, terminal: bool = False) -> Batch:
    events = [StoredEvent(s, "response.output_text.delta", b'{"n":%d}' % s)
              for s in range(first, last + 1)]
    return Batch(response_id, events, terminal)


async def _next(subscription) -> Batch | None:  # type: ignore[no-untyped-def]
    return await subscription.get(5.0)


async def test_a_confirmed_subscription_gets_every_later_batch(bus):  # type: ignore[no-untyped-def]
    subscription = await bus.subscribe("resp_a")
    await bus.publish(_batch("resp_a", 0, 2))
    await bus.publish(_batch("resp_a", 3, 3, terminal=True))
    first, second = await _next(subscription), await _next(subscription)
    assert [e.seq for e in first.events] == [0, 1, 2] and not first.terminal
    assert second.events[0].data == b'{"n":3}' and second.terminal
    await subscription.close()


async def test_channels_are_separate_and_readers_share_one(bus):  # type: ignore[no-untyped-def]
    a1, a2, b = (await bus.subscribe("resp_a"), await bus.subscribe("resp_a"),
                 await bus.subscribe("resp_b"))
    await bus.publish(_batch("resp_a", 0, 0))
    assert (await _next(a1)).events[0].seq == 0
    assert (await _next(a2)).events[0].seq == 0
    assert await b.get(0.2) is None
    await a1.close()
    await bus.publish(_batch("resp_a", 1, 1))
    assert (await _next(a2)).events[0].seq == 1  # the other reader still gets it
    for sub in (a2, b):
        await sub.close()


async def test_a_slow_reader_is_marked_lagged_not_blocking(bus):  # type: ignore[no-untyped-def]
    slow = await bus.subscribe("resp_a")
    fast = await bus.subscribe("resp_a")
    for seq in range(10):
        await bus.publish(_batch("resp_a", seq, seq))
        await _next(fast)
    await asyncio.sleep(0.05)
    assert slow.lagged
    slow.reset_lag()
    await bus.publish(_batch("resp_a", 10, 10))
    got = await _next(slow)
    while got is None or got.events[0].seq != 10:  # the lag marker wakes it first
        got = await _next(slow)
    for sub in (slow, fast):
        await sub.close()


def test_batch_encoding_round_trips():
    batch = _batch("resp_x", 5, 9, terminal=True)
    assert decode_batch("resp_x", encode_batch(batch)) == batch
    empty_data = Batch("r", [StoredEvent(0, "t", b"")], False)
    assert decode_batch("r", encode_batch(empty_data)) == empty_data
