"""In-flight responses per tenant and readers per response, through the service (embedded)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from domain.errors import InvalidRequest, TooManyRequests
from service.runtime import Runtime
from service.settings import Settings

SLOW = " ".join(f"w{i}" for i in range(400))  # 20 s at 20 tokens/s: it runs all test long


@pytest.fixture
async def runtime(tmp_path) -> AsyncIterator[Runtime]:  # type: ignore[no-untyped-def]
    rt = await Runtime.start(Settings(
        data_dir=str(tmp_path), builtin_rate=20.0, max_inflight_per_tenant=2,
        max_subscribers_per_response=2, purge_interval_s=0,
    ))
    yield rt
    await rt.close()


async def _background(rt: Runtime, owner: str) -> str:
    created = await rt.responses.create({"model": "m", "input": SLOW, "background": True}, owner)
    return created.response["id"]


async def _admitted(rt: Runtime, owner: str) -> str:
    """A run's task ends just after its terminal event: its slot is free a moment later."""
    for _ in range(200):
        try:
            return await _background(rt, owner)
        except TooManyRequests:
            await asyncio.sleep(0.01)
    pytest.fail("a finished response's slot was never released")


async def test_a_tenant_gets_429_beyond_its_in_flight_limit(runtime: Runtime):
    first = await _background(runtime, "a")
    await _background(runtime, "a")
    for body in ({"model": "m", "input": "x", "background": True},
                 {"model": "m", "input": "x", "stream": True},
                 {"model": "m", "input": "x", "store": False}):
        with pytest.raises(TooManyRequests) as caught:
            await runtime.responses.create(body, "a")
        assert caught.value.headers == {"Retry-After": "1"}
        assert caught.value.code == "too_many_in_flight"
    await _background(runtime, "b")  # another tenant has its own allowance
    await runtime.responses.cancel(first, "a")  # a finished run frees its slot
    await _admitted(runtime, "a")
    with pytest.raises(TooManyRequests):
        await _background(runtime, "a")


async def test_refused_and_finished_creates_hold_no_slot(runtime: Runtime):
    for body in ({"model": "m", "input": 5}, {"model": "m", "previous_response_id": "resp_x"}):
        with pytest.raises(InvalidRequest):
            await runtime.responses.create(body, "a")
    for store in (True, False):
        created = await runtime.responses.create({"model": "m", "input": "hi", "store": store},
                                                 "a")
        await runtime.responses.final_response(created.events)
    await _admitted(runtime, "a")
    await _admitted(runtime, "a")
    with pytest.raises(TooManyRequests):
        await _background(runtime, "a")


async def test_readers_per_response_are_limited(runtime: Runtime):
    response_id = await _background(runtime, "a")
    first = await runtime.responses.stream(response_id, "a", -1)
    second = await runtime.responses.stream(response_id, "a", -1)
    assert await anext(first) and await anext(second)  # both are reading now
    with pytest.raises(TooManyRequests) as caught:
        await runtime.responses.stream(response_id, "a", -1)
    assert caught.value.code == "too_many_subscribers"
    await first.aclose()
    third = await runtime.responses.stream(response_id, "a", -1)
    assert await anext(third)
    await second.aclose()
    await third.aclose()
