"""Per-tenant and per-response limits that free up by themselves (429 with Retry-After).

In-flight responses per tenant (queued + in progress):
- embedded mode counts them in this process, from the create until the run ends;
- distributed mode counts the tenant's running rows in the database, which every API process
  shares, plus what this process admitted but has not committed yet and the store:false runs
  it generates itself. While a tenant is below half its limit, a count is reused for
  `recount_s` (0.1 s), adding what this process committed since, and concurrent admissions
  share one count: a count per request cost the API a pooled connection and three round trips,
  a third of its time at 64 new streams a second. From half the limit on, every admission
  counts afresh, and a refusal always rests on a count started after the request arrived.
  So only far from the limit can other API processes' admissions of the last 0.1 s be missed.
SSE readers per response are counted per API process.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from domain.errors import TooManyRequests

RETRY_AFTER_S = 1
_MAX_COUNTS = 4096  # tenants whose last count is kept


class Slot:
    """One admitted response; released exactly once, however often release() is called."""

    __slots__ = ("_limiter", "_owner")

    def __init__(self, limiter: InflightLimiter | None, owner: str) -> None:
        self._limiter = limiter
        self._owner = owner

    def release(self) -> None:
        if self._limiter is not None:
            self._limiter._release(self._owner)
            self._limiter = None

    def committed(self) -> None:
        """Its row is committed: from now on the store's running rows count it (distributed
        mode), so the slot is free here."""
        if self._limiter is not None:
            self._limiter._release(self._owner, committed=True)
            self._limiter = None


@dataclass(slots=True)
class _Count:
    stored: int  # the tenant's running rows when counted
    at: float  # when the count started (monotonic)
    number: int  # counts started by this limiter before and including this one
    committed: int = 0  # committed here since: in neither `stored` nor this process's slots


class InflightLimiter:
    def __init__(
        self,
        limit: int,
        count_stored: Callable[[str], Awaitable[int]] | None = None,
        *,
        recount_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._count_stored = count_stored
        self._recount_s = recount_s
        self._clock = clock
        self._local: Counter[str] = Counter()
        self._counts: dict[str, _Count] = {}
        self._counting: dict[str, tuple[asyncio.Task[_Count], int]] = {}
        self._counts_started = 0

    @property
    def counts_stored(self) -> bool:
        """True when committed responses are counted in the store (distributed mode): a stored
        response's slot can then be released as soon as its row is committed."""
        return self._count_stored is not None

    async def acquire(self, owner: str) -> Slot:
        if self._limit <= 0:
            return Slot(None, owner)
        if self._count_stored is not None:
            seen = self._counts_started
            count = self._counts.get(owner)
            if count is None or self._clock() - count.at >= self._recount_s:
                count = await self._recount(owner)
            # Counted since: may hold responses the count saw already. Fine for admitting,
            # not for refusing: that takes a count started after this request came (the client
            # may have seen its previous response end just before sending this one), plus
            # what this process admitted and has not committed yet.
            # The reused count is only trusted far from the limit: near it, another process's
            # admissions of the last moment matter.
            if 2 * (count.stored + count.committed + self._local[owner]) >= self._limit:
                if count.number <= seen:
                    count = await self._recount(owner, newer_than=seen)
                if count.stored + self._local[owner] >= self._limit:
                    raise self._refusal()
        elif self._local[owner] >= self._limit:
            raise self._refusal()
        self._local[owner] += 1
        return Slot(self, owner)

    def _refusal(self) -> TooManyRequests:
        return TooManyRequests(
            f"Too many responses in progress: at most {self._limit} may be queued or in "
            "progress at once. Try again when one has finished.",
            retry_after=RETRY_AFTER_S,
            code="too_many_in_flight",
        )

    async def _recount(self, owner: str, newer_than: int = -1) -> _Count:
        """Count the tenant's running rows; requests arriving meanwhile share the count (one
        started after `newer_than` counts were). It runs in its own task, so a client that
        goes away does not cancel it for the others."""
        task, number = self._counting.get(owner, (None, -1))
        if task is None or number <= newer_than:
            self._counts_started += 1
            number = self._counts_started
            task = asyncio.create_task(self._count(owner, number))
            self._counting[owner] = (task, number)

            def done(finished: asyncio.Task[_Count]) -> None:
                if self._counting.get(owner, (None,))[0] is finished:
                    del self._counting[owner]
                if not finished.cancelled():
                    finished.exception()  # retrieved: the waiters got it, if any

            task.add_done_callback(done)
        return await asyncio.shield(task)

    async def _count(self, owner: str, number: int) -> _Count:
        assert self._count_stored is not None
        started = self._clock()
        count = _Count(await self._count_stored(owner), started, number)
        if len(self._counts) >= _MAX_COUNTS:  # many tenants: keep only the fresh counts
            now = self._clock()
            for stale in [o for o, c in self._counts.items() if now - c.at >= self._recount_s]:
                del self._counts[stale]
        latest = self._counts.get(owner)
        if latest is None or latest.number < number:  # an older count finishing late loses
            self._counts[owner] = count
        return count

    def _release(self, owner: str, committed: bool = False) -> None:
        count = self._counts.get(owner)
        if committed and count is not None:
            # Committed after the count started: maybe counted by it already (errs towards
            # refusing, which recounts first), maybe not.
            count.committed += 1
        self._local[owner] -= 1
        if self._local[owner] <= 0:
            del self._local[owner]

    def in_flight(self, owner: str) -> int:
        return self._local[owner]


class SubscriberLimit:
    """SSE readers per response in this process.

    A reader is counted from its stream's first step to its end (`enter`/`leave` in the stream's
    own generator, so a stream that is never started holds nothing); `check` refuses a new one
    while the response has `limit` readers.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._readers: Counter[str] = Counter()

    def check(self, response_id: str) -> None:
        if 0 < self._limit <= self._readers[response_id]:
            raise TooManyRequests(
                f"Too many clients are streaming response '{response_id}': at most "
                f"{self._limit} at once.",
                retry_after=RETRY_AFTER_S,
                param="response_id",
                code="too_many_subscribers",
            )

    def enter(self, response_id: str) -> None:
        self._readers[response_id] += 1

    def leave(self, response_id: str) -> None:
        self._readers[response_id] -= 1
        if self._readers[response_id] <= 0:
            del self._readers[response_id]

    def readers(self, response_id: str) -> int:
        return self._readers[response_id]
