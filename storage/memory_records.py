"""The other stores in memory, over the event store's MemoryDatabase: conversations
(domain.ports.ConversationStore), the audit (AuditStore), API keys (KeyStore) and retention
(RetentionStore). Same contracts as the SQL stores, for fast service tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from domain import keys
from domain.keys import KeyRecord
from domain.ports import ConversationRecord, Items, ToolCallFilter, Verdict
from domain.response import RUNNING
from storage import ledger
from storage.audit_checks import end_break, walk_ledger
from storage.chain import first_break
from storage.memory_store import ConversationRow, MemoryDatabase, page


class MemoryConversationStore:
    def __init__(self, db: MemoryDatabase, *, stale_lock_s: float = 30.0) -> None:
        self._db = db
        self._stale = stale_lock_s

    def _owned(self, conversation_id: str, owner: str) -> ConversationRow | None:
        row = self._db.conversations.get(conversation_id)
        return row if row is not None and row.owner == owner else None

    async def create(self, record: ConversationRecord, items: Items) -> None:
        self._db.conversations[record.id] = ConversationRow(
            record.id, record.owner, record.metadata, record.created_at, items=list(items)
        )

    async def get(self, conversation_id: str, owner: str) -> ConversationRecord | None:
        row = self._owned(conversation_id, owner)
        if row is None:
            return None
        return ConversationRecord(row.id, row.owner, row.metadata, row.created_at,
                                  row.active_response_id)

    async def update_metadata(self, conversation_id: str, owner: str, metadata: bytes) -> bool:
        row = self._owned(conversation_id, owner)
        if row is not None:
            row.metadata = metadata
        return row is not None

    async def delete(self, conversation_id: str, owner: str) -> bool:
        if self._owned(conversation_id, owner) is None:
            return False
        del self._db.conversations[conversation_id]
        return True

    async def add_items(self, conversation_id: str, owner: str, items: Items) -> bool:
        row = self._owned(conversation_id, owner)
        if row is not None:
            row.items.extend(items)
            row.active_at = time.time()
        return row is not None

    def _items(self, conversation_id: str) -> Items:
        row = self._db.conversations.get(conversation_id)
        return row.items if row is not None else []

    async def items(
        self, conversation_id: str, *, after: str | None, limit: int, descending: bool
    ) -> tuple[list[bytes], bool]:
        return page(self._items(conversation_id), after=after, limit=limit, descending=descending)

    async def all_items(self, conversation_id: str) -> list[bytes]:
        return [data for _, data in self._items(conversation_id)]

    async def item(self, conversation_id: str, item_id: str) -> bytes | None:
        found = [data for i, data in self._items(conversation_id) if i == item_id]
        return found[-1] if found else None

    async def delete_item(self, conversation_id: str, item_id: str) -> bool:
        row = self._db.conversations.get(conversation_id)
        if row is None:
            return False
        kept = [(i, data) for i, data in row.items if i != item_id]
        gone = len(kept) < len(row.items)
        row.items[:] = kept
        return gone

    async def lock(self, conversation_id: str, owner: str, response_id: str) -> str:
        row = self._owned(conversation_id, owner)
        if row is None:
            return "missing"
        now = time.time()
        holder = self._db.responses.get(row.active_response_id or "")
        stale = (
            row.locked_at is not None and row.locked_at < now - self._stale
            and (holder is None or holder.status not in RUNNING)
        )
        if row.active_response_id is not None and not stale:
            return "busy"
        row.active_response_id, row.locked_at = response_id, now
        return "locked"

    async def unlock(self, conversation_id: str, response_id: str) -> None:
        row = self._db.conversations.get(conversation_id)
        if row is not None and row.active_response_id == response_id:
            row.active_response_id = row.locked_at = None


def _matches(row: dict[str, Any], where: ToolCallFilter) -> bool:
    for name in ("owner", "name", "response_id", "conversation_id", "status"):
        wanted = getattr(where, name)
        if wanted is not None and row[name] != wanted:
            return False
    if where.has_output is not None and (row["output_at"] is not None) != where.has_output:
        return False
    if where.since is not None and row["created_at"] < where.since:
        return False
    return where.until is None or row["created_at"] < where.until


class MemoryAuditStore:
    def __init__(self, db: MemoryDatabase) -> None:
        self._db = db

    async def tool_calls(
        self, where: ToolCallFilter, *, after: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        rows = sorted(
            (r for r in self._db.tool_calls.values() if _matches(r, where)),
            key=lambda r: (r["created_at"], r["id"]),
        )
        if after is not None:
            cursor = self._db.tool_calls.get(after)
            if cursor is None or (where.owner is not None and cursor["owner"] != where.owner):
                return [], False
            key = (cursor["created_at"], cursor["id"])
            rows = [r for r in rows if (r["created_at"], r["id"]) > key]
        shown = [
            {"object": "audit.tool_call", **r, "has_output": r["output_at"] is not None}
            for r in rows[: limit + 1]
        ]
        return shown[:limit], len(shown) > limit

    async def count(self, where: ToolCallFilter) -> int:
        return sum(_matches(r, where) for r in self._db.tool_calls.values())

    async def verify(
        self,
        key: bytes,
        progress: Callable[[int, int], None] | None = None,
        page: int = 200,
        anchor: str | None = None,
    ) -> Verdict:
        db = self._db
        state = walk_ledger(key, db.ledger_rows, anchor)
        last_entry = dict(state.last_entry)
        verdict = Verdict(ledger_head=state.head, anchor_note=state.anchor_note)
        verdict.broken += state.broken
        verdict.broken += [(rid, "events remain of a response that has no row")
                           for rid in db.events if rid not in db.responses]
        for response_id, row in sorted(db.responses.items()):
            log = [(e.seq, e.data, h) for e, h in db.events.get(response_id, [])]
            reason = first_break(key, response_id, log, row.last_seq) or end_break(
                row.status, row.snapshot, log, last_entry.pop(response_id, None)
            )
            if reason is not None:
                verdict.broken.append((response_id, reason))
        verdict.checked = len(db.responses)
        if progress is not None:
            progress(verdict.checked, verdict.checked)
        verdict.broken += [
            (response_id, "deleted without a record: the audit ledger has it ended, with no row")
            for response_id, entry in last_entry.items()
            if entry.kind == ledger.ENDED
        ]
        verdict.broken.sort()
        return verdict


@dataclass
class MemoryKeyStore:
    _db: MemoryDatabase

    async def create(self, tenant: str, name: str, *, admin: bool = False) -> tuple[str, KeyRecord]:
        key, record = keys.new_record(tenant, name, admin=admin)
        self._db.keys[record.id] = record
        return key, record

    async def revoke(self, key_id: str) -> bool:
        record = self._db.keys.get(key_id)
        if record is None or record.revoked:
            return False
        self._db.keys[key_id] = KeyRecord(record.id, record.tenant, record.name, record.digest,
                                          record.admin, record.created_at, time.time())
        return True

    async def get(self, key_id: str) -> KeyRecord | None:
        return self._db.keys.get(key_id)

    async def list(self, tenant: str | None = None) -> list[KeyRecord]:
        records = sorted(self._db.keys.values(), key=lambda r: r.created_at)
        return [r for r in records if tenant is None or r.tenant == tenant]

    async def active_count(self) -> int:
        return sum(not r.revoked for r in self._db.keys.values())


@dataclass
class MemoryRetentionStore:
    _db: MemoryDatabase

    async def purge_responses(self, cutoff: float, limit: int) -> int:
        expired = sorted(
            (r for r in self._db.responses.values()
             if r.created_at < cutoff and r.status not in RUNNING),
            key=lambda r: r.created_at,
        )[:limit]
        for row in expired:
            self._db.drop_response(row.id, ledger.PURGED)
        return len(expired)

    async def purge_conversations(self, cutoff: float, limit: int) -> int:
        idle = sorted(
            (c for c in self._db.conversations.values()
             if c.created_at < cutoff and c.active_at < cutoff and c.active_response_id is None),
            key=lambda c: c.created_at,
        )[:limit]
        for conversation in idle:
            del self._db.conversations[conversation.id]
        return len(idle)

    async def purge_audit(self, cutoff: float, limit: int) -> int:
        expired = sorted(
            (r for r in self._db.tool_calls.values() if r["created_at"] < cutoff),
            key=lambda r: r["created_at"],
        )[:limit]
        for row in expired:
            del self._db.tool_calls[row["id"]]
        return len(expired)
