"""API key -> principal, with a short in-process cache so the hot path skips the database.

A lookup is cached for `cache_s` seconds, found or not, so a revoked key stops working within
that time in every process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from domain import keys
from domain.keys import KeyRecord, Principal
from service import metrics

log = logging.getLogger("responsed.auth")
_NO_DIGEST = "0" * 64

AUTH_FAILURES = metrics.Counter(
    "responsed_auth_failures_total", "Requests refused for a missing, unknown or revoked key."
)
metrics.register(AUTH_FAILURES)


@dataclass(slots=True)
class _Entry:
    record: KeyRecord | None
    expires: float


class Authenticator:
    def __init__(
        self,
        lookup: Callable[[str], Awaitable[KeyRecord | None]],
        *,
        cache_s: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._cache_s = cache_s
        self._max_entries = max_entries
        self._clock = clock
        self._cache: dict[str, _Entry] = {}

    async def principal(self, key: str | None) -> Principal | None:
        """The principal of a valid, unrevoked key; None for anything else."""
        key_id = keys.key_id_of(key) if key else None
        if key is None or key_id is None:
            return self._refuse(None)
        record = await self._record(key_id)
        # Compared even for an unknown id, so that a miss costs what a wrong secret costs.
        if not keys.matches(key, record.digest if record else _NO_DIGEST) or record is None:
            return self._refuse(key_id)
        if record.revoked:
            return self._refuse(key_id)
        return Principal(record.tenant, record.admin, record.id)

    @staticmethod
    def _refuse(key_id: str | None) -> None:
        AUTH_FAILURES.inc()
        # The key id is public; the key itself is never logged.
        log.debug("refused a request with key id %s", key_id or "(none or malformed)")
        return None

    async def _record(self, key_id: str) -> KeyRecord | None:
        entry = self._cache.get(key_id)
        if entry is not None and entry.expires > self._clock():
            return entry.record
        record = await self._lookup(key_id)
        if entry is None and len(self._cache) >= self._max_entries:
            # Oldest first (dicts keep insertion order): made-up key ids cannot grow it unbounded.
            self._cache.pop(next(iter(self._cache)))
        self._cache[key_id] = _Entry(record, self._clock() + self._cache_s)
        return record
