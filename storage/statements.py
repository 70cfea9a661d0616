"""Statements of the write path whose shape depends on the database: an append's, and claims.

PostgreSQL gets one fixed statement text per job, with one array parameter per column
(`unnest`): a flush's size then changes neither the text (asyncpg prepares each text once per
connection) nor the number of round trips, and PostgreSQL runs one insert or update for the
whole flush instead of one per row. SQLite is in-process: VALUES lists and executemany.

Every function takes the open write transaction's connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, or_, select, update

from domain.ports import AppendBatch, Claim, Final
from domain.response import RUNNING
from storage.tables import response_events, responses

_PG = "numeric_dollar"  # asyncpg's parameter style

_PG_FENCE = (
    "UPDATE responses SET last_seq = v.new_seq, updated_at = $5 "
    "FROM unnest($1::varchar[], $2::integer[], $3::integer[], $4::integer[]) "
    "AS v(id, epoch, expected, new_seq) "
    "WHERE responses.id = v.id AND responses.epoch = v.epoch "
    "AND responses.last_seq = v.expected RETURNING responses.id"
)
_PG_FENCE_AND_INSERT = (
    "WITH v AS (SELECT * FROM unnest($1::varchar[], $2::integer[], $3::integer[], "
    "$4::integer[]) AS v(id, epoch, expected, new_seq)), "
    "moved AS (UPDATE responses SET last_seq = v.new_seq, updated_at = $5 FROM v "
    "WHERE responses.id = v.id AND responses.epoch = v.epoch "
    "AND responses.last_seq = v.expected RETURNING responses.id), "
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
    "UPDATE responses SET status = f.status, snapshot = f.snapshot, "
    "completed_at = f.completed_at, worker = NULL, lease_until = NULL "
    "FROM unnest($1::varchar[], $2::varchar[], $3::bytea[], $4::bigint[]) "
    "AS f(id, status, snapshot, completed_at) WHERE responses.id = f.id"
)
_PG_CLAIM = (
    "UPDATE responses SET epoch = epoch + 1, worker = $2, lease_until = $3, updated_at = $4 "
    "WHERE id = ANY($1::varchar[]) AND status IN (" + ", ".join(f"'{s}'" for s in RUNNING) + ") "
    "AND (lease_until IS NULL OR lease_until < $4) "
    "RETURNING id, epoch, cancel_requested, last_seq"
)
_SQLITE_EVENTS = (
    "INSERT INTO response_events (response_id, seq, type, data, created_at, hash) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


def _is_pg(conn: Connection) -> bool:
    return conn.dialect.paramstyle == _PG


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> tuple[list[Any], ...]:
    if not rows:
        return tuple([] for _ in range(width))
    return tuple(list(column) for column in zip(*rows, strict=True))


def fence(conn: Connection, batches: Sequence[AppendBatch], now: float) -> set[str]:
    """One UPDATE for the whole flush: advance last_seq where (epoch, last_seq) still match.

    Returns the ids that moved; a batch not among them was fenced out (another writer owns the
    log now). One statement, because a flush carries many responses and each statement is a
    round trip.
    """
    if not batches:
        return set()
    rows = [(b.response_id, b.epoch, b.expected_last_seq, b.last_seq) for b in batches]
    if _is_pg(conn):
        result = conn.exec_driver_sql(_PG_FENCE, (*_columns(rows, 4), now))
        return {row[0] for row in result}
    # Positional driver parameters: SQLAlchemy's text() would re-parse it on every flush.
    values = ", ".join(
        ["(?, CAST(? AS INTEGER), CAST(? AS INTEGER), CAST(? AS INTEGER))"] * len(rows)
    )
    statement = (
        f"WITH v(id, epoch, expected, new_seq) AS (VALUES {values}) "
        "UPDATE responses SET last_seq = v.new_seq, updated_at = ? FROM v "
        "WHERE responses.id = v.id AND responses.epoch = v.epoch "
        "AND responses.last_seq = v.expected RETURNING responses.id"
    )
    params = (*(value for row in rows for value in row), now)
    return {row[0] for row in conn.exec_driver_sql(statement, params)}


def _events_and_nothing_else(b: AppendBatch) -> bool:
    """No end, no audit rows: what the one-statement appends below can write."""
    return not (b.final is not None or b.audit_only or b.tool_calls or b.tool_outputs)


def events_only(batches: Sequence[AppendBatch]) -> bool:
    """True when the flush writes events and nothing else: no new rows, no ends, no audit."""
    return all(
        b.events and b.create is None and _events_and_nothing_else(b) for b in batches
    )


def creates_only(batches: Sequence[AppendBatch]) -> bool:
    """True when the flush creates responses with their first events, and nothing else."""
    return all(b.create is not None and _events_and_nothing_else(b) for b in batches)


def create_with_events(
    conn: Connection,
    batches: Sequence[AppendBatch],
    input_items: Sequence[tuple[str, int, str, bytes]],
    rows: Sequence[tuple[Any, ...]],
    now: float,
) -> None:
    """PostgreSQL: the new rows, their input items and their first events in one statement
    (its own transaction)."""
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
    conn: Connection, batches: Sequence[AppendBatch], rows: Sequence[tuple[Any, ...]], now: float
) -> set[str]:
    """PostgreSQL: `fence`, then `insert_events` for the batches that moved, in one statement
    (its own transaction). Returns the ids that moved."""
    fences = [(b.response_id, b.epoch, b.expected_last_seq, b.last_seq) for b in batches]
    result = conn.exec_driver_sql(
        _PG_FENCE_AND_INSERT, (*_columns(fences, 4), now, *_columns(rows, 6))
    )
    return {row[0] for row in result}


def insert_events(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows of (response_id, seq, type, data, created_at, hash)."""
    if not rows:
        return
    if _is_pg(conn):
        conn.exec_driver_sql(_PG_EVENTS, _columns(rows, 6))
    else:
        # Straight to the driver's executemany: SQLAlchemy's per-row parameter processing
        # would be most of a flush's cost.
        conn.exec_driver_sql(_SQLITE_EVENTS, list(rows))


def read_heads(conn: Connection, wanted: Sequence[tuple[str, int]]) -> dict[str, tuple[int, bytes]]:
    """(seq, hash) of the given (response id, seq) events that exist."""
    if not wanted:
        return {}
    if _is_pg(conn):
        result = conn.exec_driver_sql(_PG_HEADS, _columns(wanted, 2))
    else:
        result = conn.execute(
            select(response_events.c.response_id, response_events.c.seq, response_events.c.hash)
            .where(
                or_(
                    *(
                        and_(response_events.c.response_id == rid, response_events.c.seq == seq)
                        for rid, seq in wanted
                    )
                )
            )
        )
    return {row[0]: (row[1], bytes(row[2] or b"")) for row in result}


def finish(conn: Connection, finals: Sequence[tuple[str, Final]]) -> None:
    """Set the final status and snapshot of ended responses, and drop their leases."""
    if not finals:
        return
    if _is_pg(conn):
        rows = [(rid, f.status, f.snapshot, f.completed_at) for rid, f in finals]
        conn.exec_driver_sql(_PG_FINISH, _columns(rows, 4))
        return
    conn.execute(
        update(responses)
        .where(responses.c.id == bindparam("b_id"))
        .values(
            status=bindparam("b_status"),
            snapshot=bindparam("b_snapshot"),
            completed_at=bindparam("b_completed_at"),
            worker=None,
            lease_until=None,
        ),
        [
            {
                "b_id": rid,
                "b_status": f.status,
                "b_snapshot": f.snapshot,
                "b_completed_at": f.completed_at,
            }
            for rid, f in finals
        ],
    )


def claim(
    conn: Connection, ids: list[str], worker: str, lease_until: float, now: float
) -> dict[str, Claim]:
    """Take running responses whose lease is free: bumps the epoch, which fences out any old
    writer. Returns the claims made, by response id."""
    if _is_pg(conn):
        rows = conn.exec_driver_sql(_PG_CLAIM, (ids, worker, lease_until, now))
    else:
        rows = conn.execute(
            update(responses)
            .where(
                responses.c.id.in_(ids),
                responses.c.status.in_(RUNNING),
                or_(responses.c.lease_until.is_(None), responses.c.lease_until < now),
            )
            .values(
                epoch=responses.c.epoch + 1, worker=worker, lease_until=lease_until, updated_at=now
            )
            .returning(
                responses.c.id,
                responses.c.epoch,
                responses.c.cancel_requested,
                responses.c.last_seq,
            )
        )
    return {row[0]: Claim(row[1], bool(row[2]), row[3]) for row in rows}
