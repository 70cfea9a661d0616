"""The event store on PostgreSQL (asyncpg): one fixed statement text per job, with one array
parameter per column (`unnest`). A flush's size then changes neither the text (asyncpg prepares
each text once per connection) nor the number of round trips, and PostgreSQL runs one insert or
update for the whole flush instead of one per row. Appends of events alone, and of new
responses with their first events, are one autocommitted statement each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.ports import AppendBatch, Claim, Final
from domain.response import RUNNING
from storage.projections import Heads, chain
from storage.sql_store import SqlEventStore, input_item_rows
from storage.statements import Statements, creates_only, events_only

# Every statement that updates several response rows first locks them in one order, by id:
# two such statements (a flush and a heartbeat, a claim and a release) then never wait on each
# other crosswise. An UPDATE alone locks rows in whatever order its plan visits them (the
# array's order through unnest, the index's through an IN list, the heap's through a scan).
# Rows come out of a SELECT's ORDER BY before its locking clause locks them, and MATERIALIZED
# keeps that SELECT whole; FOR NO KEY UPDATE is the lock the UPDATE itself takes.
_PG_LOCK_IDS = (
    "locked AS MATERIALIZED (SELECT id FROM responses WHERE id = ANY($1::varchar[]) "
    "ORDER BY id FOR NO KEY UPDATE)"
)
_PG_FENCE = (
    "WITH " + _PG_LOCK_IDS + " "
    "UPDATE responses SET last_seq = v.new_seq, updated_at = $5 "
    "FROM unnest($1::varchar[], $2::integer[], $3::integer[], $4::integer[]) "
    "AS v(id, epoch, expected, new_seq) "
    "WHERE responses.id = v.id AND responses.id IN (SELECT id FROM locked) "
    "AND responses.epoch = v.epoch AND responses.last_seq = v.expected RETURNING responses.id"
)
_PG_FENCE_AND_INSERT = (
    "WITH " + _PG_LOCK_IDS + ", "
    "v AS (SELECT * FROM unnest($1::varchar[], $2::integer[], $3::integer[], "
    "$4::integer[]) AS v(id, epoch, expected, new_seq)), "
    "moved AS (UPDATE responses SET last_seq = v.new_seq, updated_at = $5 FROM v "
    "WHERE responses.id = v.id AND responses.id IN (SELECT id FROM locked) "
    "AND responses.epoch = v.epoch AND responses.last_seq = v.expected "
    "RETURNING responses.id), "
    "inserted AS (INSERT INTO response_events (response_id, seq, type, data, created_at, hash) "
    "SELECT e.* FROM unnest($6::varchar[], $7::integer[], $8::varchar[], $9::bytea[], "
    "$10::float8[], $11::bytea[]) AS e(response_id, seq, type, data, created_at, hash) "
    "WHERE e.response_id IN (SELECT id FROM moved)) "
    "SELECT id FROM moved"
)
_PG_CREATE = (
    "WITH r AS (INSERT INTO responses (id, owner, status, model, background, request, "
    "last_seq, epoch, cancel_requested, created_at, updated_at, conversation_id, history_count) "
    "SELECT id, owner, status, model, background, request, last_seq, 0, false, created_at, $11, "
    "conversation_id, history_count FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], "
    "$4::varchar[], $5::boolean[], $6::bytea[], $7::integer[], $8::bigint[], $9::varchar[], "
    "$10::integer[]) AS t(id, owner, status, model, background, request, last_seq, created_at, "
    "conversation_id, history_count)), "
    "i AS (INSERT INTO response_input_items (response_id, position, item_id, data) "
    "SELECT * FROM unnest($12::varchar[], $13::integer[], $14::varchar[], $15::bytea[])), "
    "e AS (INSERT INTO response_events (response_id, seq, type, data, created_at, hash) "
    "SELECT * FROM unnest($16::varchar[], $17::integer[], $18::varchar[], $19::bytea[], "
    "$20::float8[], $21::bytea[])) "
    "SELECT 1"
)
_PG_EVENTS = (
    "INSERT INTO response_events (response_id, seq, type, data, created_at, hash) "
    "SELECT * FROM unnest($1::varchar[], $2::integer[], $3::varchar[], $4::bytea[], "
    "$5::float8[], $6::bytea[])"
)
_PG_HEADS = (
    "SELECT e.response_id, e.seq, e.hash FROM response_events e "
    "JOIN unnest($1::varchar[], $2::integer[]) AS h(id, seq) "
    "ON e.response_id = h.id AND e.seq = h.seq"
)
_PG_FINISH = (
    "WITH " + _PG_LOCK_IDS + " "
    "UPDATE responses SET status = f.status, snapshot = f.snapshot, "
    "completed_at = f.completed_at, worker = NULL, lease_until = NULL "
    "FROM unnest($1::varchar[], $2::varchar[], $3::bytea[], $4::bigint[]) "
    "AS f(id, status, snapshot, completed_at) "
    "WHERE responses.id = f.id AND responses.id IN (SELECT id FROM locked)"
)
_PG_CLAIM = (
    "WITH " + _PG_LOCK_IDS + " "
    "UPDATE responses SET epoch = epoch + 1, worker = $2, lease_until = $3, updated_at = $4 "
    "WHERE id IN (SELECT id FROM locked) "
    "AND status IN (" + ", ".join(f"'{s}'" for s in RUNNING) + ") "
    "AND (lease_until IS NULL OR lease_until < $4) "
    "RETURNING id, epoch, cancel_requested, last_seq"
)


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> tuple[list[Any], ...]:
    if not rows:
        return tuple([] for _ in range(width))
    return tuple(list(column) for column in zip(*rows, strict=True))


class PostgresStatements(Statements):
    def fence(self, conn: Connection, batches: Sequence[AppendBatch], now: float) -> set[str]:
        if not batches:
            return set()
        rows = [(b.response_id, b.epoch, b.expected_last_seq, b.last_seq) for b in batches]
        result = conn.exec_driver_sql(_PG_FENCE, (*_columns(rows, 4), now))
        return {row[0] for row in result}

    def insert_events(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        if rows:
            conn.exec_driver_sql(_PG_EVENTS, _columns(rows, 6))

    def read_heads(
        self, conn: Connection, wanted: Sequence[tuple[str, int]]
    ) -> dict[str, tuple[int, bytes]]:
        if not wanted:
            return {}
        result = conn.exec_driver_sql(_PG_HEADS, _columns(wanted, 2))
        return {row[0]: (row[1], bytes(row[2] or b"")) for row in result}

    def finish(self, conn: Connection, finals: Sequence[tuple[str, Final]]) -> None:
        if finals:
            rows = [(rid, f.status, f.snapshot, f.completed_at) for rid, f in finals]
            conn.exec_driver_sql(_PG_FINISH, _columns(rows, 4))

    def claim(
        self, conn: Connection, ids: list[str], worker: str, lease_until: float, now: float
    ) -> dict[str, Claim]:
        rows = conn.exec_driver_sql(_PG_CLAIM, (ids, worker, lease_until, now))
        return {row[0]: Claim(row[1], bool(row[2]), row[3]) for row in rows}

    def create_with_events(
        self,
        conn: Connection,
        batches: Sequence[AppendBatch],
        input_items: Sequence[tuple[str, int, str, bytes]],
        rows: Sequence[tuple[Any, ...]],
        now: float,
    ) -> None:
        """The new rows, their input items and their first events in one statement."""
        created = []
        for b in batches:
            c = b.create
            assert c is not None
            created.append(
                (c.id, c.owner, c.status, c.model, c.background, c.request, b.last_seq,
                 c.created_at, c.conversation_id, c.history_count)
            )
        conn.exec_driver_sql(
            _PG_CREATE,
            (*_columns(created, 10), now, *_columns(input_items, 4), *_columns(rows, 6)),
        )

    def fence_and_insert(
        self,
        conn: Connection,
        batches: Sequence[AppendBatch],
        rows: Sequence[tuple[Any, ...]],
        now: float,
    ) -> set[str]:
        """`fence`, then `insert_events` for the batches that moved, in one statement.
        Returns the ids that moved."""
        fences = [(b.response_id, b.epoch, b.expected_last_seq, b.last_seq) for b in batches]
        result = conn.exec_driver_sql(
            _PG_FENCE_AND_INSERT, (*_columns(fences, 4), now, *_columns(rows, 6))
        )
        return {row[0] for row in result}


_STATEMENTS = PostgresStatements()


def _append_events(
    conn: Connection, batches: Sequence[AppendBatch], now: float, heads: Heads, key: bytes
) -> tuple[set[str], Heads]:
    """An append of events alone (autocommit): fence and insert in one statement. A head read
    first, if any, needs no transaction: stored events never change."""
    rows, new_heads = chain(conn, _STATEMENTS.read_heads, batches, heads, now, key)
    moved = _STATEMENTS.fence_and_insert(conn, batches, rows, now)
    return {b.response_id for b in batches} - moved, {
        rid: head for rid, head in new_heads.items() if rid in moved
    }


def _append_creates(
    conn: Connection, batches: Sequence[AppendBatch], now: float, key: bytes
) -> tuple[set[str], Heads]:
    """An append of new responses with their first events alone (autocommit): one statement,
    the round trip an API process's create waits for."""
    rows, heads = chain(conn, _STATEMENTS.read_heads, batches, {}, now, key)
    _STATEMENTS.create_with_events(conn, batches, input_item_rows(batches), rows, now)
    return set(), heads


class PostgresEventStore(SqlEventStore):
    """domain.ports.EventStore on PostgreSQL: writes through an asyncpg pool."""

    statements = _STATEMENTS

    def __init__(self, writer: AsyncEngine, reader: AsyncEngine, audit_key: bytes = b"") -> None:
        super().__init__(writer, reader, audit_key)
        # Appends of events alone are one statement: no BEGIN and COMMIT round trips around it.
        self._autocommit = writer.execution_options(isolation_level="AUTOCOMMIT")

    async def _append(
        self, batches: Sequence[AppendBatch], now: float
    ) -> tuple[set[str], Heads]:
        if events_only(batches):
            async with self._autocommit.connect() as conn:
                return await conn.run_sync(
                    _append_events, batches, now, self._heads, self.audit_key
                )
        if creates_only(batches):
            async with self._autocommit.connect() as conn:
                return await conn.run_sync(_append_creates, batches, now, self.audit_key)
        return await super()._append(batches, now)
