"""The tool-call audit: listing calls, exporting them, checking the event hash chains."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from domain.errors import InvalidRequest
from domain.pages import list_page
from domain.ports import AuditStore, ToolCallFilter, Verdict


class AuditService:
    def __init__(self, store: AuditStore) -> None:
        self._store = store

    async def tool_calls(
        self, where: ToolCallFilter, *, after: str | None, limit: int
    ) -> dict[str, Any]:
        if after is not None and "\x00" in after:
            raise InvalidRequest(
                "Invalid 'after': no such tool call.", param="after", code="invalid_value"
            )
        rows, has_more = await self._store.tool_calls(where, after=after, limit=limit)
        return list_page(rows, has_more, id_of=lambda row: row["id"])

    async def count(self, where: ToolCallFilter) -> int:
        return await self._store.count(where)

    async def export(
        self, where: ToolCallFilter, page: int = 500
    ) -> AsyncIterator[dict[str, Any]]:
        """Every matching row, page by page over the store's cursor."""
        after = None
        while True:
            rows, more = await self._store.tool_calls(where, after=after, limit=page)
            for row in rows:
                yield row
            if not more or not rows:
                return
            after = rows[-1]["id"]

    async def verify(
        self,
        key: bytes,
        progress: Callable[[int, int], None] | None = None,
        anchor: str | None = None,
    ) -> Verdict:
        return await self._store.verify(key, progress, anchor=anchor)
