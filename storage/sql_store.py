"""The event store on SQLAlchemy Core: one implementation for SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Sequence

import orjson
from sqlalchemy import and_, delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.ports import AppendBatch, ResponseRecord, StoredEvent
from storage.tables import response_events, response_input_items, responses

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


def _fence_statement(batches: Sequence[AppendBatch]) -> tuple[str, dict[str, object]]:
    """One UPDATE for the whole flush: advance last_seq where (epoch, last_seq) still match.

    RETURNING names the rows that moved; any batch not named was fenced out. A single statement
    matters: a flush carries many responses and each statement is a round trip.
    """
    rows, params = [], {}
    for i, batch in enumerate(batches):
        rows.append(
            f"(:id{i}, CAST(:ep{i} AS INTEGER), CAST(:ex{i} AS INTEGER), CAST(:ls{i} AS INTEGER))"
        )
        params[f"id{i}"] = batch.response_id
        params[f"ep{i}"] = batch.epoch
        params[f"ex{i}"] = batch.expected_last_seq
        params[f"ls{i}"] = batch.last_seq
    sql = (
        f"WITH v(id, epoch, expected, new_seq) AS (VALUES {', '.join(rows)}) "
        "UPDATE responses SET last_seq = v.new_seq, updated_at = :now FROM v "
        "WHERE responses.id = v.id AND responses.epoch = v.epoch "
        "AND responses.last_seq = v.expected RETURNING responses.id"
    )
    return sql, params


class SqlEventStore:
    def __init__(self, writer: AsyncEngine, reader: AsyncEngine) -> None:
        self._writer = writer
        self._reader = reader

    async def append(self, batches: Sequence[AppendBatch]) -> set[str]:
        if not batches:
            return set()
        now = time.time()
        async with self._writer.begin() as conn:
            creates = [b.create for b in batches if b.create is not None]
            if creates:
                await conn.execute(
                    insert(responses),
                    [
                        {
                            "id": c.id,
                            "owner": c.owner,
                            "status": c.status,
                            "model": c.model,
                            "background": c.background,
                            "request": c.request,
                            "last_seq": -1,
                            "epoch": 0,
                            "cancel_requested": False,
                            "created_at": c.created_at,
                            "updated_at": now,
                        }
                        for c in creates
                    ],
                )
                items = [
                    {
                        "response_id": c.id,
                        "position": position,
                        "item_id": item["id"],
                        "data": orjson.dumps(item),
                    }
                    for c in creates
                    for position, item in enumerate(c.input_items)
                ]
                if items:
                    await conn.execute(insert(response_input_items), items)
            sql, params = _fence_statement(batches)
            params["now"] = now
            moved = {row[0] for row in await conn.execute(text(sql), params)}
            fenced = {b.response_id for b in batches} - moved
            rows = [
                {
                    "response_id": b.response_id,
                    "seq": e.seq,
                    "type": e.type,
                    "data": e.data,
                    "created_at": now,
                }
                for b in batches
                if b.response_id in moved
                for e in b.events
            ]
            if rows:
                await conn.execute(insert(response_events), rows)
            for b in batches:
                if b.final is not None and b.response_id in moved:
                    await conn.execute(
                        update(responses)
                        .where(responses.c.id == b.response_id)
                        .values(
                            status=b.final.status,
                            snapshot=b.final.snapshot,
                            completed_at=b.final.completed_at,
                            worker=None,
                            lease_until=None,
                        )
                    )
        return fenced

    async def set_status(self, response_id: str, status: str) -> None:
        async with self._writer.begin() as conn:
            await conn.execute(
                update(responses).where(responses.c.id == response_id).values(status=status)
            )

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
        table = response_input_items
        conditions = [table.c.response_id == response_id]
        async with self._reader.connect() as conn:
            if after is not None:
                position = (
                    await conn.execute(
                        select(table.c.position).where(
                            table.c.response_id == response_id, table.c.item_id == after
                        )
                    )
                ).scalar()
                if position is None:
                    return [], False
                conditions.append(
                    table.c.position < position if descending else table.c.position > position
                )
            order = table.c.position.desc() if descending else table.c.position.asc()
            result = await conn.execute(
                select(table.c.data).where(and_(*conditions)).order_by(order).limit(limit + 1)
            )
            data = [bytes(row[0]) for row in result]
        return data[:limit], len(data) > limit

    async def delete(self, response_id: str) -> bool:
        async with self._writer.begin() as conn:
            await conn.execute(
                delete(response_events).where(response_events.c.response_id == response_id)
            )
            await conn.execute(
                delete(response_input_items).where(
                    response_input_items.c.response_id == response_id
                )
            )
            result = await conn.execute(delete(responses).where(responses.c.id == response_id))
        return result.rowcount > 0

    async def unfinished(self) -> list[ResponseRecord]:
        async with self._reader.connect() as conn:
            result = await conn.execute(
                select(*_RECORD_COLUMNS).where(responses.c.status.in_(("queued", "in_progress")))
            )
            return [_record(row) for row in result]

    async def count_events(self, response_id: str) -> int:
        async with self._reader.connect() as conn:
            return int(
                (
                    await conn.execute(
                        select(func.count()).where(response_events.c.response_id == response_id)
                    )
                ).scalar_one()
            )

    async def close(self) -> None:
        await self._writer.dispose()
        await self._reader.dispose()


def _record(row) -> ResponseRecord:  # type: ignore[no-untyped-def]
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
