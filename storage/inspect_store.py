"""Read-only queries for the inspector: responses listed and filtered, event log pages, chain
checks of a chosen set, and per-minute activity. Same statements on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Text, and_, case, cast, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from domain.ports import ListedResponse, LoggedEvent, ResponseFilter
from storage.chain import first_break
from storage.tables import response_events, response_input_items, responses, tool_calls

_RUNNING = ("queued", "in_progress")
# The row keeps its status at create until the run ends: a queued (background) response whose
# log has passed response.created and response.queued is in progress.
_LIVE_STATUS = case(
    (and_(responses.c.status == "queued", responses.c.last_seq >= 2), "in_progress"),
    else_=responses.c.status,
)


class SqlInspectStore:
    """domain.ports.InspectStore on the SQL schema."""

    def __init__(self, reader: AsyncEngine, audit_key: bytes = b"") -> None:
        self._reader = reader
        self._audit_key = audit_key  # the key the event chains are made with
        self._postgres = reader.dialect.name == "postgresql"

    def _text(self, column: Any) -> ColumnElement[str]:
        """A JSON blob column as text, for substring search."""
        if self._postgres:
            return func.convert_from(column, "UTF8")
        return cast(column, Text)

    def _conditions(self, where: ResponseFilter) -> list[ColumnElement[bool]]:
        c = responses.c
        conditions: list[ColumnElement[bool]] = []
        for column, value in (
            (c.owner, where.owner),
            (c.id, where.response_id),
            (_LIVE_STATUS, where.status),
            (c.model, where.model),
            (c.conversation_id, where.conversation_id),
        ):
            if value is not None:
                conditions.append(column == value)
        if where.since is not None:
            conditions.append(c.created_at >= where.since)
        if where.until is not None:
            conditions.append(c.created_at < where.until)
        if where.has_tool_calls is not None:
            called = exists().where(tool_calls.c.response_id == c.id)
            conditions.append(called if where.has_tool_calls else ~called)
        if where.previous_response_id is not None:
            # The create request is stored as compact JSON: the key and value appear verbatim.
            needle = orjson.dumps({"previous_response_id": where.previous_response_id})[1:-1]
            conditions.append(self._text(c.request).contains(needle.decode(), autoescape=True))
        if where.text is not None:
            in_input = exists().where(
                response_input_items.c.response_id == c.id,
                self._text(response_input_items.c.data).icontains(where.text, autoescape=True),
            )
            in_output = self._text(c.snapshot).icontains(where.text, autoescape=True)
            conditions.append(or_(in_input, in_output))
        return conditions

    async def list_responses(
        self, where: ResponseFilter, *, after: str | None, limit: int, descending: bool
    ) -> tuple[list[ListedResponse], bool]:
        """A page in (created_at, id) order after the response `after`; [] if it is unknown."""
        c = responses.c
        conditions = self._conditions(where)
        async with self._reader.connect() as conn:
            if after is not None:
                mine = [c.owner == where.owner] if where.owner is not None else []
                cursor = (
                    await conn.execute(select(c.created_at).where(c.id == after, *mine))
                ).first()
                if cursor is None:
                    return [], False
                at = cursor[0]
                if descending:
                    past = or_(c.created_at < at, and_(c.created_at == at, c.id < after))
                else:
                    past = or_(c.created_at > at, and_(c.created_at == at, c.id > after))
                conditions.append(past)
            order = (c.created_at.desc(), c.id.desc()) if descending else (c.created_at, c.id)
            rows = (
                await conn.execute(
                    select(c.id, c.owner, _LIVE_STATUS, c.snapshot)
                    .where(*conditions)
                    .order_by(*order)
                    .limit(limit + 1)
                )
            ).all()
            more = len(rows) > limit
            listed = []
            for response_id, owner, status, snapshot in rows[:limit]:
                if snapshot is None:
                    # Running: the Response as response.created carried it, with today's status.
                    first = (
                        await conn.execute(
                            select(response_events.c.data)
                            .where(response_events.c.response_id == response_id)
                            .order_by(response_events.c.seq)
                            .limit(1)
                        )
                    ).scalar()
                    if first is None:
                        continue
                    response = orjson.loads(first).get("response", {})
                    response["status"] = status
                    snapshot = orjson.dumps(response)
                listed.append(ListedResponse(response_id, owner, status, bytes(snapshot)))
        return listed, more

    async def owner_of(self, response_id: str) -> tuple[str, str] | None:
        """(owner, status) of a stored response."""
        async with self._reader.connect() as conn:
            row = (
                await conn.execute(
                    select(responses.c.owner, responses.c.status).where(
                        responses.c.id == response_id
                    )
                )
            ).first()
        return (row[0], row[1]) if row is not None else None

    async def events(self, response_id: str, *, after: int, limit: int) -> tuple[
        list[LoggedEvent], bool
    ]:
        e = response_events.c
        async with self._reader.connect() as conn:
            rows = (
                await conn.execute(
                    select(e.seq, e.type, e.data, e.created_at)
                    .where(e.response_id == response_id, e.seq > after)
                    .order_by(e.seq)
                    .limit(limit + 1)
                )
            ).all()
        events = [LoggedEvent(r[0], r[1], bytes(r[2]), float(r[3])) for r in rows[:limit]]
        return events, len(rows) > limit

    async def verify(self, where: ResponseFilter, *, limit: int) -> tuple[
        int, list[tuple[str, str]], bool
    ]:
        """Check the chains of up to `limit` chosen responses, oldest first:
        (checked, [(response id, what is wrong)], whether more matched)."""
        c = responses.c
        async with self._reader.connect() as conn:
            chosen = (
                await conn.execute(
                    select(c.id, c.last_seq)
                    .where(*self._conditions(where))
                    .order_by(c.created_at, c.id)
                    .limit(limit + 1)
                )
            ).all()
            more = len(chosen) > limit
            chosen = chosen[:limit]
            broken = []
            for response_id, last_seq in chosen:
                events = [
                    (seq, bytes(data), bytes(stored) if stored is not None else None)
                    for seq, data, stored in await conn.execute(
                        select(response_events.c.seq, response_events.c.data,
                               response_events.c.hash)
                        .where(response_events.c.response_id == response_id)
                        .order_by(response_events.c.seq)
                    )
                ]
                reason = first_break(self._audit_key, response_id, events, last_seq)
                if reason is not None:
                    broken.append((response_id, reason))
        return len(chosen), broken, more

    async def activity(self, owner: str | None, since: int, bucket_s: int) -> dict[str, Any]:
        """Responses created per time bucket and status since `since`, and the running ones
        by worker with whether its lease is alive (distributed mode)."""
        c = responses.c
        mine = [c.owner == owner] if owner is not None else []
        bucket = c.created_at - (c.created_at % bucket_s)
        async with self._reader.connect() as conn:
            created = (
                await conn.execute(
                    select(bucket, c.status, func.count())
                    .where(c.created_at >= since, *mine)
                    .group_by(bucket, c.status)
                    .order_by(bucket)
                )
            ).all()
            running = (
                await conn.execute(
                    select(c.worker, func.count(), func.max(c.lease_until))
                    .where(c.status.in_(_RUNNING), *mine)
                    .group_by(c.worker)
                )
            ).all()
        return {
            "buckets": [
                {"start": int(start), "status": status, "count": int(count)}
                for start, status, count in created
            ],
            "running": [
                {"worker": worker, "responses": int(count), "lease_until": lease}
                for worker, count, lease in running
            ],
        }

