"""The event store on SQLAlchemy Core: what SQLite and PostgreSQL share. Each backend is a
small subclass (storage.sqlite, storage.postgres) with its own Statements for the write path;
both run one contract suite (tests/contract/test_event_store.py)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.ports import AppendBatch, Claim, Final, ResponseRecord, StoredEvent
from domain.response import RUNNING
from storage import ledger
from storage.item_pages import page_items
from storage.projections import Heads, chain, write_finals, write_tool_calls
from storage.statements import Statements
from storage.tables import (
    RESPONSE_CHILDREN,
    conversation_items,
    conversations,
    response_events,
    response_input_items,
    response_output_items,
    responses,
)

T = TypeVar("T")
_MAX_HEADS = 100_000

_RECORD_COLUMNS = (
    responses.c.id,
    responses.c.owner,
    responses.c.status,
    responses.c.background,
    responses.c.last_seq,
    responses.c.epoch,
    responses.c.snapshot,
    responses.c.request,
)
def input_item_rows(batches: Sequence[AppendBatch]) -> list[tuple[str, int, str, bytes]]:
    return [
        (c.id, position, item["id"], orjson.dumps(item))
        for b in batches
        if (c := b.create) is not None
        for position, item in enumerate(c.input_items)
    ]


def _create_rows(conn: Connection, batches: Sequence[AppendBatch], now: float) -> None:
    creates = [(b, b.create) for b in batches if b.create is not None]
    if not creates:
        return
    conn.execute(
        insert(responses),
        [
            {
                "id": c.id,
                "owner": c.owner,
                "status": c.status,
                "model": c.model,
                "background": c.background,
                "request": c.request,
                # Set here, not by the fence: the row is new in this very transaction.
                "last_seq": b.last_seq,
                "epoch": 0,
                "cancel_requested": False,
                "created_at": c.created_at,
                "updated_at": now,
                "conversation_id": c.conversation_id,
                "history_count": c.history_count,
            }
            for b, c in creates
        ],
    )
    items = [
        {"response_id": rid, "position": position, "item_id": item_id, "data": data}
        for rid, position, item_id, data in input_item_rows(batches)
    ]
    if items:
        conn.execute(insert(response_input_items), items)


def append_batches(
    conn: Connection,
    statements: Statements,
    batches: Sequence[AppendBatch],
    now: float,
    heads: Heads,
    key: bytes,
) -> tuple[set[str], Heads]:
    """Returns the fenced-out response ids and the chain heads of the ones that moved."""
    audit = [b for b in batches if b.audit_only]
    batches = [b for b in batches if not b.audit_only]
    moved: set[str] = set()
    new_heads: Heads = {}
    if batches:
        _create_rows(conn, batches, now)
        moved = {b.response_id for b in batches if b.create is not None}
        moved |= statements.fence(conn, [b for b in batches if b.create is None], now)
        rows, new_heads = chain(
            conn,
            statements.read_heads,
            [b for b in batches if b.response_id in moved],
            heads,
            now,
            key,
        )
        statements.insert_events(conn, rows)
    finals = [
        (b.response_id, b.final) for b in batches if b.final is not None and b.response_id in moved
    ]
    statements.finish(conn, finals)
    write_tool_calls(conn, [*batches, *audit], moved)
    if finals:
        write_finals(conn, finals, now)
        ledger.record(conn, key, _ended(conn, finals, new_heads), now)  # last: see ledger._LOCK
    return {b.response_id for b in batches} - moved, new_heads


def _ended(conn: Connection, finals: list[tuple[str, Final]], heads: Heads) -> list[ledger.Entry]:
    missing = [rid for rid, _ in finals if rid not in heads]
    if missing:  # a final without events of its own: its head is the last stored event's
        rows = conn.execute(
            select(responses.c.id, response_events.c.seq, response_events.c.hash)
            .join(response_events, and_(response_events.c.response_id == responses.c.id,
                                        response_events.c.seq == responses.c.last_seq))
            .where(responses.c.id.in_(missing))
        )
        heads = {**heads, **{row[0]: (row[1], bytes(row[2])) for row in rows}}
    return [
        ledger.Entry(rid, ledger.ENDED, final.status, *heads.get(rid, (None, None)))
        for rid, final in finals
    ]


def _delete(conn: Connection, response_id: str, key: bytes) -> bool:
    for table in RESPONSE_CHILDREN:
        conn.execute(delete(table).where(table.c.response_id == response_id))
    # The tool-call audit keeps its rows: it records what happened, whatever is deleted later.
    if conn.execute(delete(responses).where(responses.c.id == response_id)).rowcount == 0:
        return False
    ledger.record(conn, key, [ledger.Entry(response_id, ledger.DELETED)], time.time())
    return True


def _locked(*where: ColumnElement[bool]) -> ColumnElement[bool]:
    """`responses.id IN` the rows that match `where`, on PostgreSQL locked by id first: every
    update of several response rows locks them in that one order, so two never deadlock (see
    storage.postgres). SQLite has one writer at a time and no row locks."""
    locked = (
        select(responses.c.id)
        .where(*where)
        .order_by(responses.c.id)
        .with_for_update(key_share=True)  # FOR NO KEY UPDATE: the lock the UPDATE itself takes
        .cte("locked")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    return responses.c.id.in_(select(locked.c.id))


def _heartbeat(
    conn: Connection, worker: str, ids: list[str], lease_until: float
) -> dict[str, bool]:
    rows = conn.execute(
        update(responses)
        .where(
            _locked(responses.c.id.in_(ids)),
            responses.c.worker == worker,
            responses.c.status.in_(RUNNING),
        )
        .values(lease_until=lease_until)
        .returning(responses.c.id, responses.c.cancel_requested)
    )
    return {row[0]: bool(row[1]) for row in rows}


def _request_cancel(conn: Connection, response_id: str) -> bool:
    result = conn.execute(
        update(responses)
        .where(responses.c.id == response_id, responses.c.status.in_(RUNNING))
        .values(cancel_requested=True)
    )
    return result.rowcount > 0


def _stalled(conn: Connection, now: float, enqueue_grace: float, limit: int) -> list[str]:
    """Running responses nobody holds: never claimed within the grace, or with a dead lease.
    Their `updated_at` moves on so the next sweep waits another grace period."""
    condition = and_(
        responses.c.status.in_(RUNNING),
        or_(
            and_(responses.c.lease_until.is_(None), responses.c.updated_at < now - enqueue_grace),
            responses.c.lease_until < now - enqueue_grace,
        ),
    )
    ids = [row[0] for row in conn.execute(select(responses.c.id).where(condition).limit(limit))]
    if ids:
        conn.execute(
            update(responses).where(_locked(responses.c.id.in_(ids))).values(updated_at=now)
        )
    return ids


def _expired_leases(conn: Connection, now: float, limit: int) -> tuple[list[str], float | None]:
    """Running responses whose lease has run out, and when the next live lease runs out."""
    held = and_(responses.c.status.in_(RUNNING), responses.c.lease_until.is_not(None))
    expired = [
        row[0]
        for row in conn.execute(
            select(responses.c.id).where(held, responses.c.lease_until < now).limit(limit)
        )
    ]
    next_expiry = conn.execute(
        select(func.min(responses.c.lease_until)).where(held, responses.c.lease_until >= now)
    ).scalar()
    return expired, next_expiry


def _release(conn: Connection, worker: str) -> int:
    # Counted from RETURNING: SQLite gives no rowcount for a statement that starts with WITH.
    released = conn.execute(
        update(responses)
        .where(
            _locked(responses.c.worker == worker, responses.c.status.in_(RUNNING)),
            responses.c.worker == worker,
            responses.c.status.in_(RUNNING),
        )
        .values(lease_until=0.0, worker=None)
        .returning(responses.c.id)
    )
    return len(released.all())


class SqlEventStore:
    """Writes go through one writer engine, reads through an async pool. Subclasses give the
    backend's `statements` and, where the backend needs it, their own way to write."""

    statements: ClassVar[Statements]

    def __init__(
        self, writer: AsyncEngine | Engine, reader: AsyncEngine, audit_key: bytes = b""
    ) -> None:
        self._writer = writer
        self.audit_key = audit_key  # keys the event chains and the audit ledger
        self._reader = reader
        self._heads: Heads = {}  # chain heads of responses still being written

    @property
    def reader(self) -> AsyncEngine:
        return self._reader

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(connection, *args) in one write transaction of this store's single writer:
        other stores share it (with SQLite a second writer connection in this process would
        deadlock against it)."""
        return await self._write(fn, *args)

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        assert isinstance(self._writer, AsyncEngine)
        async with self._writer.begin() as conn:
            return await conn.run_sync(fn, *args)

    async def _append(
        self, batches: Sequence[AppendBatch], now: float
    ) -> tuple[set[str], Heads]:
        """Returns the fenced-out ids and the new chain heads."""
        return await self._write(
            append_batches, self.statements, batches, now, self._heads, self.audit_key
        )

    async def append(self, batches: Sequence[AppendBatch]) -> set[str]:
        if not batches:
            return set()
        fenced, heads = await self._append(batches, time.time())
        self._heads.update(heads)
        for b in batches:
            if b.final is not None or b.response_id in fenced:
                self._heads.pop(b.response_id, None)
        if len(self._heads) > _MAX_HEADS:
            # A cache: responses whose last writer is elsewhere (an API process writes only a
            # response's first events) would pile up. A dropped head is read back when needed.
            for response_id in list(itertools.islice(self._heads, len(self._heads) // 2)):
                del self._heads[response_id]
        return fenced

    async def delete(self, response_id: str) -> bool:
        return await self._write(_delete, response_id, self.audit_key)

    async def claim(self, response_id: str, worker: str, lease_s: float) -> Claim | None:
        """Take a running response over: bumps the epoch, which fences out any old writer.
        Refused while another worker's lease is alive or when the response has ended."""
        return (await self.claim_many([response_id], worker, lease_s)).get(response_id)

    async def claim_many(self, ids: list[str], worker: str, lease_s: float) -> dict[str, Claim]:
        """`claim` for several responses in one statement (a burst of new jobs)."""
        if not ids:
            return {}
        now = time.time()
        return await self._write(self.statements.claim, ids, worker, now + lease_s, now)

    async def heartbeat(self, worker: str, ids: list[str], lease_s: float) -> dict[str, bool]:
        """Extend this worker's leases; returns {id: cancel requested} for those still held."""
        if not ids:
            return {}
        return await self._write(_heartbeat, worker, ids, time.time() + lease_s)

    async def release(self, worker: str) -> int:
        """A stopping worker lets go of its responses: their leases expire at once."""
        return await self._write(_release, worker)

    async def request_cancel(self, response_id: str) -> bool:
        return await self._write(_request_cancel, response_id)

    async def stalled(self, enqueue_grace: float, limit: int = 100) -> list[str]:
        return await self._write(_stalled, time.time(), enqueue_grace, limit)

    async def expired_leases(self, limit: int = 100) -> tuple[list[str], float | None]:
        """(ids of running responses with a run-out lease, the next lease's end or None)."""
        async with self._reader.connect() as conn:
            return await conn.run_sync(_expired_leases, time.time(), limit)

    async def count_running(self, owner: str) -> int:
        query = (
            select(func.count())
            .select_from(responses)
            .where(responses.c.owner == owner, responses.c.status.in_(RUNNING))
        )
        async with self._reader.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def ping(self) -> bool:
        try:
            async with self._reader.connect() as conn:
                await conn.execute(select(1))
            return True
        except Exception:
            return False

    async def read_events(self, response_id: str, after: int, limit: int) -> list[StoredEvent]:
        query = (
            select(response_events.c.seq, response_events.c.type, response_events.c.data)
            .where(response_events.c.response_id == response_id, response_events.c.seq > after)
            .order_by(response_events.c.seq)
            .limit(limit)
        )
        async with self._reader.connect() as conn:
            result = await conn.execute(query)
            return [StoredEvent(row[0], row[1], bytes(row[2])) for row in result]

    async def get(self, response_id: str) -> ResponseRecord | None:
        async with self._reader.connect() as conn:
            row = (
                await conn.execute(select(*_RECORD_COLUMNS).where(responses.c.id == response_id))
            ).first()
        return _record(row) if row is not None else None

    async def input_items(
        self, response_id: str, *, after: str | None, limit: int, descending: bool
    ) -> tuple[list[bytes], bool]:
        return await page_items(
            self._reader,
            response_input_items,
            response_input_items.c.response_id,
            response_id,
            after=after,
            limit=limit,
            descending=descending,
        )

    async def find_item(self, owner: str, item_id: str) -> bytes | None:
        """A stored item by id, for item_reference: conversation items first, then the output
        and the input of stored responses, all of this owner only."""
        queries = [
            select(conversation_items.c.data)
            .join(conversations, conversations.c.id == conversation_items.c.conversation_id)
            .where(conversation_items.c.item_id == item_id, conversations.c.owner == owner)
            .order_by(conversation_items.c.position.desc()),
            select(response_output_items.c.data)
            .join(responses, responses.c.id == response_output_items.c.response_id)
            .where(response_output_items.c.item_id == item_id, responses.c.owner == owner)
            .order_by(responses.c.created_at.desc()),
            select(response_input_items.c.data)
            .join(responses, responses.c.id == response_input_items.c.response_id)
            .where(response_input_items.c.item_id == item_id, responses.c.owner == owner)
            .order_by(responses.c.created_at.desc()),
        ]
        async with self._reader.connect() as conn:
            for query in queries:
                row = (await conn.execute(query.limit(1))).first()
                if row is not None:
                    return bytes(row[0])
        return None

    async def unfinished(self) -> list[ResponseRecord]:
        async with self._reader.connect() as conn:
            result = await conn.execute(
                select(*_RECORD_COLUMNS).where(responses.c.status.in_(RUNNING))
            )
            return [_record(row) for row in result]

    async def close(self) -> None:
        assert isinstance(self._writer, AsyncEngine)
        await self._writer.dispose()
        await self._reader.dispose()


def _record(row: Any) -> ResponseRecord:
    return ResponseRecord(
        id=row[0],
        owner=row[1],
        status=row[2],
        background=bool(row[3]),
        last_seq=row[4],
        epoch=row[5],
        snapshot=bytes(row[6]) if row[6] is not None else None,
        request=bytes(row[7]),
    )
