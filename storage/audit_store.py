"""Reading the tool-call audit, and checking every response's keyed chain, its end and the
audit ledger."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from storage import ledger
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


@dataclass(slots=True)
class ToolCallFilter:
    owner: str | None = None  # None: every owner (the operator's CLI)
    name: str | None = None
    response_id: str | None = None
    conversation_id: str | None = None
    status: str | None = None
    has_output: bool | None = None
    since: float | None = None  # created_at >= since
    until: float | None = None  # created_at < until

    def conditions(self) -> list[ColumnElement[bool]]:
        c = tool_calls.c
        conditions: list[ColumnElement[bool]] = []
        for column, value in (
            (c.owner, self.owner),
            (c.name, self.name),
            (c.response_id, self.response_id),
            (c.conversation_id, self.conversation_id),
            (c.status, self.status),
        ):
            if value is not None:
                conditions.append(column == value)
        if self.has_output is not None:
            conditions.append(
                c.output_at.is_not(None) if self.has_output else c.output_at.is_(None)
            )
        if self.since is not None:
            conditions.append(c.created_at >= self.since)
        if self.until is not None:
            conditions.append(c.created_at < self.until)
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
        conditions = where.conditions()
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
            query = select(func.count()).select_from(tool_calls).where(*where.conditions())
            return int((await conn.execute(query)).scalar() or 0)

    async def iterate(
        self, where: ToolCallFilter, page: int = 500
    ) -> AsyncIterator[dict[str, Any]]:
        after = None
        while True:
            rows, more = await self.tool_calls(where, after=after, limit=page)
            for row in rows:
                yield row
            if not more or not rows:
                return
            after = rows[-1]["id"]

    async def verify(
        self,
        key: bytes,
        progress: Callable[[int, int], None] | None = None,
        page: int = 200,
        anchor: str | None = None,
    ) -> Verdict:
        """Check every response's chain and end against the ledger, and the ledger itself."""
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
                reason = first_break(key, response_id, log, last_seq) or _end_break(
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


@dataclass(slots=True)
class Verdict:
    checked: int = 0
    broken: list[tuple[str, str]] = field(default_factory=list)
    ledger_head: str = "0:"
    anchor_note: str | None = None


@dataclass(slots=True)
class _LedgerState:
    last_entry: dict[str, ledger.Entry]
    broken: list[tuple[str, str]]
    head: str
    anchor_note: str | None


def _read_ledger(conn: Connection, key: bytes, anchor: str | None) -> _LedgerState:
    """Walk the ledger's chain; the last entry per response is what verify holds rows to."""
    last_entry: dict[str, ledger.Entry] = {}
    broken: list[tuple[str, str]] = []
    previous, expected, at_anchor = ledger.ledger_genesis(key), 1, None
    anchor_position = int(anchor.split(":")[0]) if anchor else None
    c = audit_ledger.c
    rows = conn.execute(
        select(c.position, c.response_id, c.kind, c.status, c.last_seq, c.head, c.mac)
        .order_by(c.position)
    )
    for position, response_id, kind, status, last_seq, head, mac in rows:
        entry = ledger.Entry(response_id, kind, status, last_seq,
                             bytes(head) if head is not None else None)
        if position != expected:
            broken.append(("ledger", f"entry {expected} is missing (found {position} next)"))
        want = ledger.entry_mac(key, previous, position, entry)
        if not hmac.compare_digest(bytes(mac), want):
            broken.append(("ledger", f"entry {position} ({response_id}) does not match its mac"))
        previous, expected = bytes(mac), position + 1
        if position == anchor_position:
            at_anchor = f"{position}:{previous.hex()}"
        last_entry[response_id] = entry
    head = f"{expected - 1}:{previous.hex() if expected > 1 else ''}"
    note = None
    if anchor is not None:
        if at_anchor == anchor:
            note = f"ledger head matches {anchor}"
        else:
            note = f"ledger head {anchor} is not in the ledger (entries removed or rewritten)"
            broken.append(("ledger", note))
    return _LedgerState(last_entry, broken, head, note)


# The terminal event each final status ends with (a cancel ends with response.failed).
_TERMINAL = {
    "completed": "response.completed",
    "incomplete": "response.incomplete",
    "failed": "response.failed",
    "cancelled": "response.failed",
}
_RUNNING = ("queued", "in_progress")


def _end_break(
    status: str,
    snapshot: bytes | None,
    log: list[tuple[int, bytes, bytes | None]],
    entry: ledger.Entry | None,
) -> str | None:
    """Why an ended response's end (terminal event, status, snapshot, ledger entry) does not
    hold together, or None. A running one must not be recorded as ended."""
    if status in _RUNNING:
        if entry is not None:
            return f"status {status}, but the audit ledger recorded it {entry.kind}"
        return None
    if status not in _TERMINAL:
        return f"unknown status {status!r}"
    last = orjson.loads(log[-1][1]) if log else {}
    if last.get("type") != _TERMINAL[status]:
        return f"status {status}, but the log does not end in its terminal event"
    response = last.get("response") or {}
    if response.get("status") != status:
        return f"status {status}, but the terminal event says {response.get('status')}"
    if snapshot is None or orjson.loads(snapshot) != response:
        return "the snapshot differs from the terminal event's response"
    if entry is None or entry.kind != ledger.ENDED:
        return "ended, but the audit ledger has no record of its end"
    if (entry.status, entry.last_seq, entry.head) != (status, log[-1][0], log[-1][2]):
        return "its end differs from the one the audit ledger recorded"
    return None
