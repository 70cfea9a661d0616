"""Failed authentication, throttled per client address: a token bucket of `burst` failures
refilled at `rate` per second. An address past it is answered 429 before any key lookup, so a
flood of made-up keys costs a dictionary lookup each, not a database query. Key ids that
authenticated lately are still checked for a throttled address: the valid keys of clients
behind the same address as the flood keep working."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class FailureThrottle:
    def __init__(
        self,
        burst: int,
        rate: float,
        *,
        max_addresses: int = 100_000,
        good_ttl_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst = float(max(1, burst))
        self._rate = rate
        self._max = max_addresses
        self._good_ttl_s = good_ttl_s
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._good: dict[str, float] = {}  # key id -> until when it counts as known good

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def _bucket(self, address: str) -> _Bucket | None:
        bucket = self._buckets.get(address)
        if bucket is not None:
            now = self._clock()
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) * self._rate)
            bucket.at = now
        return bucket

    def retry_after(self, address: str, key_id: str | None) -> int:
        """Seconds this address must wait before its next attempt; 0: let it through."""
        if not self.enabled:
            return 0
        bucket = self._bucket(address)
        if bucket is None or bucket.tokens >= 1:
            return 0
        if key_id is not None and self._good.get(key_id, 0.0) > self._clock():
            return 0
        return max(1, math.ceil((1 - bucket.tokens) / self._rate))

    def failed(self, address: str) -> None:
        if not self.enabled:
            return
        bucket = self._bucket(address)
        if bucket is None:
            if len(self._buckets) >= self._max:
                self._buckets.pop(next(iter(self._buckets)))  # oldest first: bounded memory
            bucket = self._buckets[address] = _Bucket(self._burst, self._clock())
        bucket.tokens = max(0.0, bucket.tokens - 1)

    def succeeded(self, key_id: str) -> None:
        if not self.enabled:
            return
        if key_id not in self._good and len(self._good) >= self._max:
            self._good.pop(next(iter(self._good)))
        self._good[key_id] = self._clock() + self._good_ttl_s
