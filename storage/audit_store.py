"""Reading the tool-call audit, and checking every response's keyed chain, its end and the
audit ledger (domain.ports.AuditStore in SQL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from domain.ports import ToolCallFilter, Verdict
from storage import ledger
from storage.audit_checks import LedgerState, end_break, walk_ledger
from storage.chain import first_break
from storage.tables import audit_ledger, response_events, responses, tool_calls

_COLUMNS = (
    "id",
    "type",
    "name",
    "call_id",
    "arguments",
    "status",
    "response_id",
    "conversation_id",
    "model",
    "owner",
    "stored",
    "created_at",
    "output",
    "output_at",
    "output_response_id",
)


def _conditions(where: ToolCallFilter) -> list[ColumnElement[bool]]:
    c = tool_calls.c
    conditions: list[ColumnElement[bool]] = []
    for column, value in (
        (c.owner, where.owner),
        (c.name, where.name),
        (c.response_id, where.response_id),
        (c.conversation_id, where.conversation_id),
        (c.status, where.status),
    ):
        if value is not None:
            conditions.append(column == value)
    if where.has_output is not None:
        conditions.append(
            c.output_at.is_not(None) if where.has_output else c.output_at.is_(None)
        )
    if where.since is not None:
        conditions.append(c.created_at >= where.since)
    if where.until is not None:
        conditions.append(c.created_at < where.until)
    return conditions


def to_json(row: Any) -> dict[str, Any]:
    record = dict(zip(_COLUMNS, row, strict=True))
    record["stored"] = bool(record["stored"])
    record["has_output"] = record["output_at"] is not None
    return {"object": "audit.tool_call", **record}


class SqlAuditStore:
    def __init__(self, reader: AsyncEngine) -> None:
        self._reader = reader

    async def tool_calls(
        self, where: ToolCallFilter, *, after: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page in (created_at, id) order after the row `after`; [] if `after` is unknown."""
        c = tool_calls.c
        conditions = _conditions(where)
        async with self._reader.connect() as conn:
            if after is not None:
                mine = [c.owner == where.owner] if where.owner is not None else []
                cursor = (
                    await conn.execute(select(c.created_at).where(c.id == after, *mine))
                ).first()
                if cursor is None:
                    return [], False
                conditions.append(
                    or_(c.created_at > cursor[0], and_(c.created_at == cursor[0], c.id > after))
                )
            query = (
                select(*(c[name] for name in _COLUMNS))
                .where(*conditions)
                .order_by(c.created_at, c.id)
                .limit(limit + 1)
            )
            rows = [to_json(row) for row in await conn.execute(query)]
        return rows[:limit], len(rows) > limit

    async def count(self, where: ToolCallFilter) -> int:
        async with self._reader.connect() as conn:
            query = select(func.count()).select_from(tool_calls).where(*_conditions(where))
            return int((await conn.execute(query)).scalar() or 0)

    async def verify(
        self,
        key: bytes,
        progress: Callable[[int, int], None] | None = None,
        page: int = 200,
        anchor: str | None = None,
    ) -> Verdict:
        """Check every response's chain and end against the ledger, and the ledger itself.

        Long because the ledger, the chains and the ends are checked in one read transaction,
        so they are compared as of one moment.
        """
        verdict = Verdict()
        async with self._reader.connect() as conn:
            ledger_state = await conn.run_sync(_read_ledger, key, anchor)
            verdict.ledger_head, verdict.anchor_note = ledger_state.head, ledger_state.anchor_note
            verdict.broken += ledger_state.broken
            total = int(
                (await conn.execute(select(func.count()).select_from(responses))).scalar() or 0
            )
            orphans = await conn.execute(
                select(response_events.c.response_id)
                .where(~response_events.c.response_id.in_(select(responses.c.id)))
                .distinct()
            )
            verdict.broken += [
                (row[0], "events remain of a response that has no row") for row in orphans
            ]
        last_entry = ledger_state.last_entry
        after = ""
        while True:
            async with self._reader.connect() as conn:
                batch = (
                    await conn.execute(
                        select(responses.c.id, responses.c.last_seq, responses.c.status,
                               responses.c.snapshot)
                        .where(responses.c.id > after)
                        .order_by(responses.c.id)
                        .limit(page)
                    )
                ).all()
                if not batch:
                    break
                ids = [row[0] for row in batch]
                events: dict[str, list[tuple[int, bytes, bytes | None]]] = {i: [] for i in ids}
                result = await conn.execute(
                    select(
                        response_events.c.response_id,
                        response_events.c.seq,
                        response_events.c.data,
                        response_events.c.hash,
                    )
                    .where(response_events.c.response_id.in_(ids))
                    .order_by(response_events.c.response_id, response_events.c.seq)
                )
                for response_id, seq, data, stored in result:
                    events[response_id].append(
                        (seq, bytes(data), bytes(stored) if stored is not None else None)
                    )
            for response_id, last_seq, status, snapshot in batch:
                log = events[response_id]
                reason = first_break(key, response_id, log, last_seq) or end_break(
                    status, snapshot, log, last_entry.pop(response_id, None)
                )
                if reason is not None:
                    verdict.broken.append((response_id, reason))
            verdict.checked += len(batch)
            after = ids[-1]
            if progress is not None:
                progress(verdict.checked, total)
        verdict.broken += [
            (response_id, "deleted without a record: the audit ledger has it ended, with no row")
            for response_id, entry in last_entry.items()
            if entry.kind == ledger.ENDED
        ]
        verdict.broken.sort()
        return verdict


def _read_ledger(conn: Connection, key: bytes, anchor: str | None) -> LedgerState:
    c = audit_ledger.c
    rows = conn.execute(
        select(c.position, c.response_id, c.kind, c.status, c.last_seq, c.head, c.mac)
        .order_by(c.position)
    )
    return walk_ledger(
        key,
        (
            (position, ledger.Entry(response_id, kind, status, last_seq,
                                    bytes(head) if head is not None else None), bytes(mac))
            for position, response_id, kind, status, last_seq, head, mac in rows
        ),
        anchor,
    )
