"""API keys in the database (domain.ports.KeyStore): created and revoked from the command line,
looked up by id."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from domain import keys
from domain.keys import KeyRecord
from storage.sql_store import SqlEventStore
from storage.tables import api_keys

_COLUMNS = (
    api_keys.c.id,
    api_keys.c.tenant,
    api_keys.c.name,
    api_keys.c.digest,
    api_keys.c.admin,
    api_keys.c.created_at,
    api_keys.c.revoked_at,
)


def _record(row: tuple[Any, ...]) -> KeyRecord:
    return KeyRecord(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6])


class SqlKeyStore:
    def __init__(self, store: SqlEventStore) -> None:
        self._store = store

    async def create(self, tenant: str, name: str, *, admin: bool = False) -> tuple[str, KeyRecord]:
        """Returns (the key, its record). The key itself is not kept anywhere."""
        key, record = keys.new_record(tenant, name, admin=admin)

        def write(conn: Connection) -> None:
            conn.execute(
                insert(api_keys).values(
                    id=record.id, tenant=record.tenant, name=record.name, digest=record.digest,
                    admin=record.admin, created_at=record.created_at, revoked_at=None,
                )
            )

        await self._store.write(write)
        return key, record

    async def revoke(self, key_id: str) -> bool:
        def write(conn: Connection) -> bool:
            result = conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
            return result.rowcount > 0

        return await self._store.write(write)

    async def get(self, key_id: str) -> KeyRecord | None:
        async with self._store.reader.connect() as conn:
            row = (await conn.execute(select(*_COLUMNS).where(api_keys.c.id == key_id))).first()
        return _record(tuple(row)) if row is not None else None

    async def list(self, tenant: str | None = None) -> list[KeyRecord]:
        query = select(*_COLUMNS).order_by(api_keys.c.created_at)
        if tenant is not None:
            query = query.where(api_keys.c.tenant == tenant)
        async with self._store.reader.connect() as conn:
            return [_record(tuple(row)) for row in await conn.execute(query)]

    async def active_count(self) -> int:
        query = select(func.count()).select_from(api_keys).where(api_keys.c.revoked_at.is_(None))
        async with self._store.reader.connect() as conn:
            return int((await conn.execute(query)).scalar_one())
