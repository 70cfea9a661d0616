"""Per-tenant and per-response limits that free up by themselves (429 with Retry-After).

In-flight responses per tenant (queued + in progress):
- embedded mode counts them in this process, from the create until the run ends;
- distributed mode counts the tenant's running rows in the database, which every API process
  shares, plus what this process admitted but has not committed yet and the store:false runs
  it generates itself. Two API processes admitting the same tenant's requests in the same few
  milliseconds can each pass the check: the limit can be overshot by about one response per
  API process, never more.
SSE readers per response are counted per API process.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

from domain.errors import TooManyRequests

RETRY_AFTER_S = 1


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


class InflightLimiter:
    def __init__(
        self, limit: int, count_stored: Callable[[str], Awaitable[int]] | None = None
    ) -> None:
        self._limit = limit
        self._count_stored = count_stored
        self._local: Counter[str] = Counter()

    @property
    def counts_stored(self) -> bool:
        """True when committed responses are counted in the store (distributed mode): a stored
        response's slot can then be released as soon as its row is committed."""
        return self._count_stored is not None

    async def acquire(self, owner: str) -> Slot:
        if self._limit <= 0:
            return Slot(None, owner)
        stored = await self._count_stored(owner) if self._count_stored is not None else 0
        # No await between this check and the increment: admissions in this process are exact.
        if stored + self._local[owner] >= self._limit:
            raise TooManyRequests(
                f"Too many responses in progress: at most {self._limit} may be queued or in "
                "progress at once. Try again when one has finished.",
                retry_after=RETRY_AFTER_S,
                code="too_many_in_flight",
            )
        self._local[owner] += 1
        return Slot(self, owner)

    def _release(self, owner: str) -> None:
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
