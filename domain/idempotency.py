"""The port of idempotency keys: where the first request with a key records its response."""

from __future__ import annotations

from typing import NamedTuple, Protocol


class KeyRecord(NamedTuple):
    digest: str  # of the first request's body
    response_id: str
    created_at: float
    inserted: bool  # True: this call made the row (the caller generates)


class IdempotencyKeys(Protocol):
    async def claim(
        self, owner: str, key: str, digest: str, response_id: str, now: float, ttl: float
    ) -> KeyRecord:
        """Make the key point at `response_id`, or answer the row it already has (expired
        rows are gone first)."""
        ...

    async def take_over(
        self, owner: str, key: str, old_id: str, new_id: str, now: float, ttl: float
    ) -> bool:
        """Point an abandoned key (its response never got stored) at a new response."""
        ...

    async def release(self, owner: str, key: str, response_id: str) -> None:
        """Forget a key whose create failed before anything was stored."""
        ...
