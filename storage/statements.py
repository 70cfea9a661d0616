"""The write path's statements whose best shape depends on the database: an append's, and
claims. Each backend subclasses Statements (storage.sqlite, storage.postgres); what can be
said once in SQLAlchemy Core is said here.

Every method takes the open write transaction's connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, or_, select, update

from domain.ports import AppendBatch, Claim, Final
from domain.response import RUNNING
from storage.tables import response_events, responses


def _events_and_nothing_else(b: AppendBatch) -> bool:
    """No end, no audit rows: what a one-statement append can write."""
    return not (b.final is not None or b.audit_only or b.tool_calls or b.tool_outputs)


def events_only(batches: Sequence[AppendBatch]) -> bool:
    """True when the flush writes events and nothing else: no new rows, no ends, no audit."""
    return all(
        b.events and b.create is None and _events_and_nothing_else(b) for b in batches
    )


def creates_only(batches: Sequence[AppendBatch]) -> bool:
    """True when the flush creates responses with their first events, and nothing else."""
    return all(b.create is not None and _events_and_nothing_else(b) for b in batches)


class Statements:
    def fence(self, conn: Connection, batches: Sequence[AppendBatch], now: float) -> set[str]:
        """One UPDATE for the whole flush: advance last_seq where (epoch, last_seq) still match.

        Returns the ids that moved; a batch not among them was fenced out (another writer owns
        the log now). One statement, because a flush carries many responses and each statement
        is a round trip.
        """
        raise NotImplementedError

    def insert_events(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Rows of (response_id, seq, type, data, created_at, hash)."""
        raise NotImplementedError

    def read_heads(
        self, conn: Connection, wanted: Sequence[tuple[str, int]]
    ) -> dict[str, tuple[int, bytes]]:
        """(seq, hash) of the given (response id, seq) events that exist."""
        if not wanted:
            return {}
        e = response_events.c
        result = conn.execute(
            select(e.response_id, e.seq, e.hash).where(
                or_(*(and_(e.response_id == rid, e.seq == seq) for rid, seq in wanted))
            )
        )
        return {row[0]: (row[1], bytes(row[2] or b"")) for row in result}

    def finish(self, conn: Connection, finals: Sequence[tuple[str, Final]]) -> None:
        """Set the final status and snapshot of ended responses, and drop their leases."""
        if not finals:
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
        self, conn: Connection, ids: list[str], worker: str, lease_until: float, now: float
    ) -> dict[str, Claim]:
        """Take running responses whose lease is free: bumps the epoch, which fences out any
        old writer. Returns the claims made, by response id."""
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
