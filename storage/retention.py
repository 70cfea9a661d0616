"""Retention in SQL (domain.ports.RetentionStore): delete expired rows in bounded batches, one
transaction per batch.

Every statement here runs inside SqlEventStore.write, so with SQLite the purge shares the
one writer with the event writer and a batch holds the write lock only briefly; on PostgreSQL
`FOR UPDATE SKIP LOCKED` lets several processes purge at once without waiting on each other.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Column, Connection, Table, delete, select

from domain.response import RUNNING
from storage import ledger
from storage.sql_store import SqlEventStore
from storage.tables import (
    RESPONSE_CHILDREN,
    conversation_items,
    conversations,
    responses,
    tool_calls,
)


def purge_responses(conn: Connection, cutoff: float, limit: int, key: bytes) -> int:
    """Delete up to `limit` responses created before `cutoff` that are no longer running,
    with everything they own. Returns how many responses went."""
    candidates = (
        select(responses.c.id)
        .where(responses.c.created_at < cutoff, responses.c.status.not_in(RUNNING))
        .order_by(responses.c.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = [row[0] for row in conn.execute(candidates)]
    if not ids:
        return 0
    for table in RESPONSE_CHILDREN:
        conn.execute(delete(table).where(table.c.response_id.in_(ids)))
    # A response never runs again once ended; the status test only restates the rule.
    result = conn.execute(
        delete(responses).where(responses.c.id.in_(ids), responses.c.status.not_in(RUNNING))
    )
    ledger.record(conn, key, [ledger.Entry(i, ledger.PURGED) for i in ids], time.time())
    return int(result.rowcount)


def purge_conversations(conn: Connection, cutoff: float, limit: int) -> int:
    """Delete up to `limit` conversations idle since before `cutoff` (created then, no item
    added since), with their items. One with a response running on it stays."""
    recent = (
        select(conversation_items.c.conversation_id)
        .where(conversation_items.c.conversation_id == conversations.c.id,
               conversation_items.c.created_at >= cutoff)
        .exists()
    )
    candidates = (
        select(conversations.c.id)
        .where(conversations.c.created_at < cutoff, conversations.c.active_response_id.is_(None),
               ~recent)
        .order_by(conversations.c.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = [row[0] for row in conn.execute(candidates)]
    if not ids:
        return 0
    conn.execute(delete(conversation_items).where(conversation_items.c.conversation_id.in_(ids)))
    result = conn.execute(
        delete(conversations).where(conversations.c.id.in_(ids),
                                    conversations.c.active_response_id.is_(None))
    )
    return int(result.rowcount)


def purge_by_age(conn: Connection, table: Table, column: str, cutoff: float, limit: int) -> int:
    """Delete up to `limit` rows of a single-key table whose `column` is before `cutoff`."""
    (key,) = table.primary_key.columns
    age: Column[Any] = table.c[column]
    ids = [
        row[0]
        for row in conn.execute(
            select(key).where(age < cutoff).order_by(age).limit(limit)
            .with_for_update(skip_locked=True)
        )
    ]
    if not ids:
        return 0
    return int(conn.execute(delete(table).where(key.in_(ids))).rowcount)


class SqlRetentionStore:
    def __init__(self, store: SqlEventStore) -> None:
        self._store = store

    async def purge_responses(self, cutoff: float, limit: int) -> int:
        return await self._store.write(purge_responses, cutoff, limit, self._store.audit_key)

    async def purge_conversations(self, cutoff: float, limit: int) -> int:
        return await self._store.write(purge_conversations, cutoff, limit)

    async def purge_audit(self, cutoff: float, limit: int) -> int:
        return await self._store.write(purge_by_age, tool_calls, "created_at", cutoff, limit)
