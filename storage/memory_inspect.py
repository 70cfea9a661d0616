"""The inspector's reads in memory (domain.ports.InspectStore), over the event store's
MemoryDatabase: the same answers as storage.inspect_store, for fast service tests. The memory
log keeps no per-event time: an event's time is its response's last update."""

from __future__ import annotations

from typing import Any

import orjson

from domain.ports import ListedResponse, LoggedEvent, ResponseFilter
from domain.response import RUNNING
from storage.chain import first_break
from storage.memory_store import MemoryDatabase, ResponseRow


class MemoryInspectStore:
    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    def _status(self, row: ResponseRow) -> str:
        # As the SQL store: a queued response whose log has passed response.queued is running.
        return "in_progress" if row.status == "queued" and row.last_seq >= 2 else row.status

    def _matches(self, row: ResponseRow, where: ResponseFilter) -> bool:
        request = orjson.loads(row.request)
        checks = (
            (row.owner, where.owner),
            (row.id, where.response_id),
            (self._status(row), where.status),
            (request.get("model"), where.model),
            (row.conversation_id, where.conversation_id),
            (request.get("previous_response_id"), where.previous_response_id),
        )
        if any(wanted is not None and value != wanted for value, wanted in checks):
            return False
        if where.since is not None and row.created_at < where.since:
            return False
        if where.until is not None and row.created_at >= where.until:
            return False
        if where.has_tool_calls is not None:
            called = any(c["response_id"] == row.id for c in self._db.tool_calls.values())
            if called != where.has_tool_calls:
                return False
        if where.text is not None:
            needle = where.text.lower()
            blobs = [data for _, data in self._db.input_items.get(row.id, [])]
            blobs.append(row.snapshot or b"")
            if not any(needle in blob.decode().lower() for blob in blobs):
                return False
        return True

    def _chosen(self, where: ResponseFilter, descending: bool) -> list[ResponseRow]:
        rows = [r for r in self._db.responses.values() if self._matches(r, where)]
        return sorted(rows, key=lambda r: (r.created_at, r.id), reverse=descending)

    async def list_responses(
        self, where: ResponseFilter, *, after: str | None, limit: int, descending: bool
    ) -> tuple[list[ListedResponse], bool]:
        rows = self._chosen(where, descending)
        if after is not None:
            cursor = self._db.responses.get(after)
            if cursor is None or (where.owner is not None and cursor.owner != where.owner):
                return [], False
            key = (cursor.created_at, cursor.id)
            rows = [r for r in rows
                    if ((r.created_at, r.id) < key if descending else (r.created_at, r.id) > key)]
        listed = []
        for row in rows[:limit]:
            snapshot = row.snapshot
            if snapshot is None:
                events = self._db.events.get(row.id)
                if not events:
                    continue
                response = orjson.loads(events[0][0].data).get("response", {})
                response["status"] = self._status(row)
                snapshot = orjson.dumps(response)
            listed.append(ListedResponse(row.id, row.owner, self._status(row), snapshot))
        return listed, len(rows) > limit

    async def owner_of(self, response_id: str) -> tuple[str, str] | None:
        row = self._db.responses.get(response_id)
        return (row.owner, row.status) if row is not None else None

    async def events(
        self, response_id: str, *, after: int, limit: int
    ) -> tuple[list[LoggedEvent], bool]:
        row = self._db.responses.get(response_id)
        at = float(row.updated_at or row.created_at) if row is not None else 0.0
        found = [e for e, _ in self._db.events.get(response_id, []) if e.seq > after]
        events = [LoggedEvent(e.seq, e.type, e.data, at) for e in found[:limit]]
        return events, len(found) > limit

    async def verify(
        self, where: ResponseFilter, *, limit: int
    ) -> tuple[int, list[tuple[str, str]], bool]:
        chosen = self._chosen(where, descending=False)
        broken = []
        for row in chosen[:limit]:
            events = [(e.seq, e.data, h) for e, h in self._db.events.get(row.id, [])]
            reason = first_break(self._db.audit_key, row.id, events, row.last_seq)
            if reason is not None:
                broken.append((row.id, reason))
        return len(chosen[:limit]), broken, len(chosen) > limit

    async def activity(self, owner: str | None, since: int, bucket_s: int) -> dict[str, Any]:
        rows = [r for r in self._db.responses.values() if owner is None or r.owner == owner]
        counts: dict[tuple[int, str], int] = {}
        for row in rows:
            if row.created_at >= since:
                key = (row.created_at - row.created_at % bucket_s, row.status)
                counts[key] = counts.get(key, 0) + 1
        running: dict[str | None, tuple[int, float | None]] = {}
        for row in rows:
            if row.status in RUNNING:
                count, lease = running.get(row.worker, (0, None))
                if row.lease_until is not None:
                    lease = max(lease or row.lease_until, row.lease_until)
                running[row.worker] = (count + 1, lease)
        return {
            "buckets": [{"start": start, "status": status, "count": count}
                        for (start, status), count in sorted(counts.items())],
            "running": [{"worker": worker, "responses": count, "lease_until": lease}
                        for worker, (count, lease) in running.items()],
        }
