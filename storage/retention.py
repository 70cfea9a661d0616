"""Retention in SQL: delete expired rows in bounded batches, one transaction per batch.

Every function here runs inside SqlEventStore.write, so with SQLite the purge shares the
one writer with the event writer and a batch holds the write lock only briefly; on PostgreSQL
`FOR UPDATE SKIP LOCKED` lets several processes purge at once without waiting on each other.
"""

from __future__ import annotations

import time

from sqlalchemy import Column, Connection, Table, delete, func, select

from storage import ledger
from storage.tables import (
    conversation_items,
    conversations,
    response_events,
    response_input_items,
    response_output_items,
    responses,
)

RUNNING = ("queued", "in_progress")

# Tables whose rows belong to one response (by `response_id`) and go with it. A table that
# stores more per response joins this list.
RESPONSE_CHILDREN: list[Table] = [response_events, response_input_items, response_output_items]


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
    age: Column = table.c[column]  # type: ignore[type-arg]
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


def count_running(conn: Connection, owner: str) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(responses)
            .where(responses.c.owner == owner, responses.c.status.in_(RUNNING))
        ).scalar_one()
    )
