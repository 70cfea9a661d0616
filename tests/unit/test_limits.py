"""Request limits: nesting depth, input items, output tokens; in-flight and reader slots."""

from __future__ import annotations

import asyncio

import pytest

from domain.errors import InvalidRequest, TooManyRequests
from domain.limits import MAX_JSON_DEPTH, RequestLimits, check_depth, check_request
from domain.request import parse_create_request
from service.limits import InflightLimiter, SubscriberLimit


def _nested(depth: int) -> object:
    value: object = 1
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def test_depth_at_the_limit_passes_and_one_more_level_fails():
    check_depth(_nested(MAX_JSON_DEPTH))
    with pytest.raises(InvalidRequest):
        check_depth(_nested(MAX_JSON_DEPTH + 1))
    check_depth({"a": [1, 2, {"b": "c"}], "d": None})


def test_input_items_and_output_tokens_have_ceilings():
    limits = RequestLimits(max_input_items=3, max_output_tokens=100)
    check_request(parse_create_request({"model": "m", "input": ["x"] * 3}), limits)
    check_request(parse_create_request({"model": "m", "max_output_tokens": 100}), limits)
    with pytest.raises(InvalidRequest) as caught:
        check_request(parse_create_request({"model": "m", "input": ["x"] * 4}), limits)
    assert (caught.value.param, caught.value.code) == ("input", "array_above_max_length")
    with pytest.raises(InvalidRequest) as caught:
        check_request(parse_create_request({"model": "m", "max_output_tokens": 101}), limits)
    assert (caught.value.param, caught.value.code) == (
        "max_output_tokens", "integer_above_max_value")


async def test_inflight_slots_per_tenant_are_released_once():
    limiter = InflightLimiter(2)
    first = await limiter.acquire("a")
    await limiter.acquire("a")
    await limiter.acquire("b")
    with pytest.raises(TooManyRequests) as caught:
        await limiter.acquire("a")
    assert caught.value.status == 429 and caught.value.headers == {"Retry-After": "1"}
    first.release()
    first.release()  # a second release must not free a second slot
    assert limiter.in_flight("a") == 1
    await limiter.acquire("a")
    with pytest.raises(TooManyRequests):
        await limiter.acquire("a")


async def test_distributed_counting_adds_the_stored_running_rows():
    stored = {"a": 1}

    async def running(owner: str) -> int:
        return stored.get(owner, 0)

    limiter = InflightLimiter(2, running)
    assert limiter.counts_stored
    slot = await limiter.acquire("a")  # 1 stored + 0 local
    with pytest.raises(TooManyRequests):
        await limiter.acquire("a")  # 1 stored + 1 local
    slot.committed()
    stored["a"] = 2  # the first one is committed now, another process admitted one more
    with pytest.raises(TooManyRequests):
        await limiter.acquire("a")


async def test_a_count_is_reused_briefly_far_from_the_limit():
    now = [0.0]
    counted = []
    stored = {"a": 5}

    async def running(owner: str) -> int:
        counted.append(owner)
        return stored[owner]

    limiter = InflightLimiter(20, running, recount_s=0.1, clock=lambda: now[0])
    for _ in range(5):
        (await limiter.acquire("a")).committed()  # in neither local slots nor the count
    assert counted == ["a"]  # 5 counted + up to 4 committed since: below half the limit
    stored["a"] = 20  # those five, and this test stands for other processes admitting too
    with pytest.raises(TooManyRequests):  # 5 + 5 is half the limit: counted afresh, refused
        await limiter.acquire("a")
    assert counted == ["a", "a"]
    stored["a"] = 2  # most have finished meanwhile
    await limiter.acquire("a")  # the last count is at the limit: counted afresh, admitted
    await limiter.acquire("a")  # 2 counted + 1 local: admitted on that count
    assert counted == ["a", "a", "a"]
    now[0] = 0.1
    await limiter.acquire("a")  # the count is too old: counted afresh
    assert counted == ["a", "a", "a", "a"]


async def test_concurrent_admissions_share_one_count_and_survive_a_cancelled_client():
    gate = asyncio.Event()
    counted = []

    async def running(owner: str) -> int:
        counted.append(owner)
        await gate.wait()
        return 0

    limiter = InflightLimiter(6, running)
    first = asyncio.create_task(limiter.acquire("a"))
    others = [asyncio.create_task(limiter.acquire("a")) for _ in range(3)]
    await asyncio.sleep(0)
    first.cancel()  # the client that started the count goes away
    gate.set()
    results = await asyncio.gather(*others, return_exceptions=True)
    assert counted == ["a"]  # below half the limit: one count for all
    assert sum(isinstance(r, TooManyRequests) for r in results) == 0
    assert limiter.in_flight("a") == 3


async def test_a_refusal_never_rests_on_a_count_older_than_the_request():
    stored = {"a": 1}
    gate = asyncio.Event()
    counting = asyncio.Event()
    seen = []

    async def running(owner: str) -> int:
        value = stored[owner]  # the snapshot is taken when the count starts
        seen.append(value)
        counting.set()
        await gate.wait()
        return value

    limiter = InflightLimiter(1, running)
    first = asyncio.create_task(limiter.acquire("a"))
    await counting.wait()  # its count is under way, seeing the one running response
    stored["a"] = 0  # which ends; its client sends a new request at once
    second = asyncio.create_task(limiter.acquire("a"))
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert isinstance(results[0], TooManyRequests)  # came while it was running: refused
    assert not isinstance(results[1], BaseException)  # counted afresh: admitted
    assert seen == [1, 0]


async def test_no_limit_means_no_limit():
    limiter = InflightLimiter(0)
    for _ in range(1000):
        await limiter.acquire("a")


def test_readers_per_response():
    readers = SubscriberLimit(2)
    readers.check("r1")
    readers.enter("r1")
    readers.enter("r1")
    readers.enter("r2")
    with pytest.raises(TooManyRequests) as caught:
        readers.check("r1")
    assert caught.value.param == "response_id"
    readers.check("r2")
    readers.leave("r1")
    readers.check("r1")
    assert readers.readers("r1") == 1
