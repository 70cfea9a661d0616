"""Cursor pages over ordered item lists (a response's input items, a conversation's items)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Table, and_, select
from sqlalchemy.ext.asyncio import AsyncEngine


async def page_items(
    reader: AsyncEngine,
    table: Table,
    parent: Column[Any],
    parent_id: str,
    *,
    after: str | None,
    limit: int,
    descending: bool,
) -> tuple[list[bytes], bool]:
    """Up to `limit` items' JSON after the item `after`, in position order; and whether more
    follow. The table has `position`, `item_id` and `data` columns besides `parent`."""
    conditions = [parent == parent_id]
    async with reader.connect() as conn:
        if after is not None:
            position = (
                await conn.execute(
                    select(table.c.position).where(parent == parent_id, table.c.item_id == after)
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
