"""Conversations and their items (domain.ports.ConversationStore in SQL). Writes share the
event store's writer (one SQLite writer connection); the lock that keeps one
response at a time on a conversation lives here."""

from __future__ import annotations

import time

from sqlalchemy import ColumnElement, Connection, and_, delete, exists, insert, or_, select, update

from domain.ports import ConversationRecord, Items
from domain.response import RUNNING
from storage.item_pages import page_items
from storage.projections import append_items
from storage.sql_store import SqlEventStore
from storage.tables import conversation_items, conversations, responses


def _create(conn: Connection, record: ConversationRecord, items: Items, now: float) -> None:
    conn.execute(
        insert(conversations).values(
            id=record.id,
            owner=record.owner,
            metadata=record.metadata,
            created_at=record.created_at,
            next_position=0,
        )
    )
    if items:
        append_items(conn, record.id, items, now)


def _owned(conversation_id: str, owner: str) -> ColumnElement[bool]:
    return and_(conversations.c.id == conversation_id, conversations.c.owner == owner)


def _add(conn: Connection, conversation_id: str, owner: str, items: Items, now: float) -> bool:
    found = conn.execute(select(conversations.c.id).where(_owned(conversation_id, owner))).first()
    return found is not None and append_items(conn, conversation_id, items, now)


def _delete(conn: Connection, conversation_id: str, owner: str) -> bool:
    if conn.execute(delete(conversations).where(_owned(conversation_id, owner))).rowcount == 0:
        return False
    conn.execute(
        delete(conversation_items).where(conversation_items.c.conversation_id == conversation_id)
    )
    return True


def _lock(
    conn: Connection, conversation_id: str, owner: str, response_id: str, now: float, stale: float
) -> str:
    running = (
        select(responses.c.id)
        .where(
            responses.c.id == conversations.c.active_response_id,
            responses.c.status.in_(RUNNING),
        )
        .correlate(conversations)
    )
    taken = conn.execute(
        update(conversations)
        .where(
            _owned(conversation_id, owner),
            or_(
                conversations.c.active_response_id.is_(None),
                # A holder that never started or already ended (a crash between the lock and
                # the response's first commit) does not keep it forever.
                and_(conversations.c.locked_at < now - stale, ~exists(running)),
            ),
        )
        .values(active_response_id=response_id, locked_at=now)
    ).rowcount
    if taken:
        return "locked"
    found = conn.execute(select(conversations.c.id).where(_owned(conversation_id, owner))).first()
    return "busy" if found else "missing"


def _unlock(conn: Connection, conversation_id: str, response_id: str) -> None:
    conn.execute(
        update(conversations)
        .where(
            conversations.c.id == conversation_id,
            conversations.c.active_response_id == response_id,
        )
        .values(active_response_id=None, locked_at=None)
    )


class SqlConversationStore:
    def __init__(self, events: SqlEventStore, *, stale_lock_s: float = 30.0) -> None:
        self._events = events
        self._reader = events.reader
        self._stale = stale_lock_s

    async def create(self, record: ConversationRecord, items: Items) -> None:
        await self._events.write(_create, record, items, time.time())

    async def get(self, conversation_id: str, owner: str) -> ConversationRecord | None:
        query = select(
            conversations.c.id,
            conversations.c.owner,
            conversations.c.metadata,
            conversations.c.created_at,
            conversations.c.active_response_id,
        ).where(_owned(conversation_id, owner))
        async with self._reader.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return ConversationRecord(row[0], row[1], bytes(row[2]), row[3], row[4])

    async def update_metadata(self, conversation_id: str, owner: str, metadata: bytes) -> bool:
        def run(conn: Connection) -> bool:
            statement = (
                update(conversations)
                .where(_owned(conversation_id, owner))
                .values(metadata=metadata)
            )
            return conn.execute(statement).rowcount > 0

        return await self._events.write(run)

    async def delete(self, conversation_id: str, owner: str) -> bool:
        return await self._events.write(_delete, conversation_id, owner)

    async def add_items(self, conversation_id: str, owner: str, items: Items) -> bool:
        return await self._events.write(_add, conversation_id, owner, items, time.time())

    async def items(
        self, conversation_id: str, *, after: str | None, limit: int, descending: bool
    ) -> tuple[list[bytes], bool]:
        return await page_items(
            self._reader,
            conversation_items,
            conversation_items.c.conversation_id,
            conversation_id,
            after=after,
            limit=limit,
            descending=descending,
        )

    async def all_items(self, conversation_id: str) -> list[bytes]:
        query = (
            select(conversation_items.c.data)
            .where(conversation_items.c.conversation_id == conversation_id)
            .order_by(conversation_items.c.position)
        )
        async with self._reader.connect() as conn:
            return [bytes(row[0]) for row in await conn.execute(query)]

    async def item(self, conversation_id: str, item_id: str) -> bytes | None:
        query = (
            select(conversation_items.c.data)
            .where(
                conversation_items.c.conversation_id == conversation_id,
                conversation_items.c.item_id == item_id,
            )
            .order_by(conversation_items.c.position.desc())
            .limit(1)
        )
        async with self._reader.connect() as conn:
            row = (await conn.execute(query)).first()
        return bytes(row[0]) if row is not None else None

    async def delete_item(self, conversation_id: str, item_id: str) -> bool:
        def run(conn: Connection) -> bool:
            statement = delete(conversation_items).where(
                conversation_items.c.conversation_id == conversation_id,
                conversation_items.c.item_id == item_id,
            )
            return conn.execute(statement).rowcount > 0

        return await self._events.write(run)

    async def lock(self, conversation_id: str, owner: str, response_id: str) -> str:
        """'locked' (now held by response_id), 'busy' (another response holds it), 'missing'."""
        return await self._events.write(
            _lock, conversation_id, owner, response_id, time.time(), self._stale
        )

    async def unlock(self, conversation_id: str, response_id: str) -> None:
        await self._events.write(_unlock, conversation_id, response_id)
