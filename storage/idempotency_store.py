"""Idempotency keys in the database, so that every API process sees the same ones."""

from __future__ import annotations

from sqlalchemy import Connection, and_, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from domain.idempotency import KeyRecord
from storage.sql_store import SqlEventStore
from storage.tables import idempotency_keys as keys


def _claim(
    conn: Connection, owner: str, key: str, digest: str, response_id: str, now: float, ttl: float
) -> KeyRecord:
    conn.execute(delete(keys).where(keys.c.expires_at < now))  # what expired since the last one
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    made = conn.execute(
        insert(keys)
        .values(owner=owner, key=key, digest=digest, response_id=response_id, created_at=now,
                expires_at=now + ttl)
        .on_conflict_do_nothing()
    ).rowcount
    if made:
        return KeyRecord(digest, response_id, now, True)
    row = conn.execute(
        select(keys.c.digest, keys.c.response_id, keys.c.created_at).where(
            keys.c.owner == owner, keys.c.key == key
        )
    ).one()
    return KeyRecord(row[0], row[1], row[2], False)


def _take_over(
    conn: Connection, owner: str, key: str, old_id: str, new_id: str, now: float, ttl: float
) -> bool:
    result = conn.execute(
        update(keys)
        .where(keys.c.owner == owner, keys.c.key == key, keys.c.response_id == old_id)
        .values(response_id=new_id, created_at=now, expires_at=now + ttl)
    )
    return result.rowcount > 0


def _release(conn: Connection, owner: str, key: str, response_id: str) -> None:
    conn.execute(
        delete(keys).where(
            and_(keys.c.owner == owner, keys.c.key == key, keys.c.response_id == response_id)
        )
    )


class IdempotencyStore:
    def __init__(self, store: SqlEventStore) -> None:
        self._store = store

    async def claim(
        self, owner: str, key: str, digest: str, response_id: str, now: float, ttl: float
    ) -> KeyRecord:
        """Make the key point at `response_id`, or answer the row it already has."""
        return await self._store.write(_claim, owner, key, digest, response_id, now, ttl)

    async def take_over(
        self, owner: str, key: str, old_id: str, new_id: str, now: float, ttl: float
    ) -> bool:
        """Point an abandoned key (its response never got stored) at a new response."""
        return await self._store.write(_take_over, owner, key, old_id, new_id, now, ttl)

    async def release(self, owner: str, key: str, response_id: str) -> None:
        """Forget a key whose create failed before anything was stored."""
        await self._store.write(_release, owner, key, response_id)
