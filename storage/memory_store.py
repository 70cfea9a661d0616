"""The event store in memory (domain.ports.EventStore): the same contract as the SQL stores,
for fast service tests. Its tables live in a MemoryDatabase that the other in-memory stores
(storage.memory_records) share, as the SQL stores share one database.

Every method runs without awaiting in between, so each call is one transaction, as in SQL.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from domain.keys import KeyRecord
from domain.ports import AppendBatch, Claim, Final, ResponseRecord, StoredEvent
from domain.response import RUNNING
from storage import ledger
from storage.chain import keyed_genesis, keyed_link
from storage.projections import audit_text

# Statuses whose input and output become part of the conversation (as storage.projections).
_APPENDED_STATUSES = ("completed", "incomplete")

ItemRows = list[tuple[str, bytes]]  # (item id, JSON) in position order


@dataclass(slots=True)
class ResponseRow:
    id: str
    owner: str
    status: str
    background: bool
    request: bytes
    created_at: int
    conversation_id: str | None
    history_count: int
    last_seq: int = -1
    epoch: int = 0
    cancel_requested: bool = False
    updated_at: float = 0.0
    snapshot: bytes | None = None
    completed_at: int | None = None
    worker: str | None = None
    lease_until: float | None = None

    def record(self) -> ResponseRecord:
        return ResponseRecord(self.id, self.owner, self.status, self.background, self.last_seq,
                              self.epoch, self.snapshot, self.request)


@dataclass(slots=True)
class ConversationRow:
    id: str
    owner: str
    metadata: bytes
    created_at: int
    active_response_id: str | None = None
    locked_at: float | None = None
    items: ItemRows = field(default_factory=list)
    active_at: float = 0.0  # when an item was last added (0: never)


@dataclass
class MemoryDatabase:
    """The tables, as plain dicts: what the SQL schema (storage.tables) holds."""

    responses: dict[str, ResponseRow] = field(default_factory=dict)
    events: dict[str, list[tuple[StoredEvent, bytes]]] = field(default_factory=dict)  # + hash
    input_items: dict[str, ItemRows] = field(default_factory=dict)
    output_items: dict[str, ItemRows] = field(default_factory=dict)
    conversations: dict[str, ConversationRow] = field(default_factory=dict)
    tool_calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, KeyRecord] = field(default_factory=dict)
    audit_key: bytes = b""  # keys the event chains and the audit ledger
    ledger_rows: list[tuple[int, ledger.Entry, bytes]] = field(default_factory=list)  # + mac

    def drop_response(self, response_id: str, kind: str = ledger.DELETED) -> bool:
        """The response and its child rows, recorded in the audit ledger as `kind`; the
        tool-call audit keeps its rows."""
        for table in (self.events, self.input_items, self.output_items):
            table.pop(response_id, None)
        if self.responses.pop(response_id, None) is None:
            return False
        self.record([ledger.Entry(response_id, kind)])
        return True

    def record(self, entries: Sequence[ledger.Entry]) -> None:
        """Append to the audit ledger (as storage.ledger.record)."""
        position, previous = (
            (self.ledger_rows[-1][0], self.ledger_rows[-1][2]) if self.ledger_rows
            else (0, ledger.ledger_genesis(self.audit_key))
        )
        for entry in entries:
            position += 1
            previous = ledger.entry_mac(self.audit_key, previous, position, entry)
            self.ledger_rows.append((position, entry, previous))


def page(
    items: ItemRows, *, after: str | None, limit: int, descending: bool
) -> tuple[list[bytes], bool]:
    """storage.item_pages.page_items over a list in position order."""
    ordered = list(reversed(items)) if descending else items
    if after is not None:
        ids = [item_id for item_id, _ in ordered]
        if after not in ids:
            return [], False
        ordered = ordered[ids.index(after) + 1:]
    data = [d for _, d in ordered[: limit + 1]]
    return data[:limit], len(data) > limit


class MemoryEventStore:
    def __init__(self, db: MemoryDatabase | None = None) -> None:
        self.db = db if db is not None else MemoryDatabase()

    # -- the append -------------------------------------------------------------------------
    async def append(self, batches: Sequence[AppendBatch]) -> set[str]:
        now = time.time()
        stored = [b for b in batches if not b.audit_only]
        moved = {b.response_id for b in stored if b.create is not None}
        for b in stored:
            if b.create is not None:
                self._create(b, now)
            elif self._fence(b, now):
                moved.add(b.response_id)
        for b in stored:
            if b.response_id in moved:
                self._add_events(b)
                if b.final is not None:
                    self._finish(b.response_id, b.final)
        for b in batches:
            if b.audit_only or b.response_id in moved:
                self._audit(b)
        return {b.response_id for b in stored} - moved

    def _create(self, b: AppendBatch, now: float) -> None:
        c = b.create
        assert c is not None
        self.db.responses[c.id] = ResponseRow(
            c.id, c.owner, c.status, c.background, c.request, c.created_at, c.conversation_id,
            c.history_count, last_seq=b.last_seq, updated_at=now,
        )
        self.db.input_items[c.id] = [(item["id"], orjson.dumps(item)) for item in c.input_items]

    def _fence(self, b: AppendBatch, now: float) -> bool:
        row = self.db.responses.get(b.response_id)
        if row is None or row.epoch != b.epoch or row.last_seq != b.expected_last_seq:
            return False
        row.last_seq, row.updated_at = b.last_seq, now
        return True

    def _add_events(self, b: AppendBatch) -> None:
        log = self.db.events.setdefault(b.response_id, [])
        key = self.db.audit_key
        previous = log[-1][1] if log else keyed_genesis(key, b.response_id)
        for event in b.events:
            previous = keyed_link(key, previous, event.data)
            log.append((event, previous))

    def _finish(self, response_id: str, final: Final) -> None:
        row = self.db.responses[response_id]
        row.status, row.snapshot = final.status, final.snapshot
        row.completed_at = final.completed_at
        row.worker = row.lease_until = None
        log = self.db.events.get(response_id) or []
        head = (log[-1][0].seq, log[-1][1]) if log else (None, None)
        self.db.record([ledger.Entry(response_id, ledger.ENDED, final.status, *head)])
        output = final.output
        if output is None:
            output = list(orjson.loads(final.snapshot).get("output") or [])
        items = [(item.get("id") or "", orjson.dumps(item)) for item in output]
        self.db.output_items[response_id] = items
        conversation = self.db.conversations.get(final.conversation_id or "")
        if conversation is None:
            return
        if final.status in _APPENDED_STATUSES:
            new_input = self.db.input_items.get(response_id, [])[row.history_count:]
            conversation.items.extend([*new_input, *items])
            conversation.active_at = time.time()
        if conversation.active_response_id == response_id:
            conversation.active_response_id = conversation.locked_at = None

    def _audit(self, b: AppendBatch) -> None:
        for c in b.tool_calls:
            self.db.tool_calls[c.id] = {
                "id": c.id, "type": c.type, "name": audit_text(c.name),
                "call_id": audit_text(c.call_id), "arguments": audit_text(c.arguments),
                "status": c.status, "response_id": c.response_id,
                "conversation_id": c.conversation_id, "model": c.model, "owner": c.owner,
                "stored": c.stored, "created_at": c.created_at, "output": None,
                "output_at": None, "output_response_id": None,
            }
        for o in b.tool_outputs:
            # The first output sent for a call is the one it got (as storage.projections).
            for row in self.db.tool_calls.values():
                if row["owner"] == o.owner and row["call_id"] == audit_text(o.call_id) and (
                    row["output_at"] is None
                ):
                    row.update(output=audit_text(o.output), output_at=o.at,
                               output_response_id=o.response_id)

    # -- reads ------------------------------------------------------------------------------
    async def read_events(self, response_id: str, after: int, limit: int) -> list[StoredEvent]:
        log = self.db.events.get(response_id, [])
        return [event for event, _ in log if event.seq > after][:limit]

    async def get(self, response_id: str) -> ResponseRecord | None:
        row = self.db.responses.get(response_id)
        return row.record() if row is not None else None

    async def input_items(
        self, response_id: str, *, after: str | None, limit: int, descending: bool
    ) -> tuple[list[bytes], bool]:
        items = self.db.input_items.get(response_id, [])
        return page(items, after=after, limit=limit, descending=descending)

    async def delete(self, response_id: str) -> bool:
        return self.db.drop_response(response_id)

    async def find_item(self, owner: str, item_id: str) -> bytes | None:
        """Conversation items first, then the output and the input of stored responses, all
        of this owner only, the latest first (as the SQL store)."""
        for conversation in self.db.conversations.values():
            if conversation.owner == owner:
                for found_id, data in reversed(conversation.items):
                    if found_id == item_id:
                        return data
        newest = sorted(
            (r for r in self.db.responses.values() if r.owner == owner),
            key=lambda r: r.created_at, reverse=True,
        )
        for table in (self.db.output_items, self.db.input_items):
            for row in newest:
                for found_id, data in table.get(row.id, []):
                    if found_id == item_id:
                        return data
        return None

    async def unfinished(self) -> list[ResponseRecord]:
        return [r.record() for r in self.db.responses.values() if r.status in RUNNING]

    async def count_running(self, owner: str) -> int:
        return sum(r.owner == owner and r.status in RUNNING for r in self.db.responses.values())

    # -- leases -----------------------------------------------------------------------------
    async def claim(self, response_id: str, worker: str, lease_s: float) -> Claim | None:
        return (await self.claim_many([response_id], worker, lease_s)).get(response_id)

    async def claim_many(self, ids: list[str], worker: str, lease_s: float) -> dict[str, Claim]:
        now = time.time()
        claims = {}
        for response_id in ids:
            row = self.db.responses.get(response_id)
            if row is None or row.status not in RUNNING:
                continue
            if row.lease_until is not None and row.lease_until >= now:
                continue
            row.epoch += 1
            row.worker, row.lease_until, row.updated_at = worker, now + lease_s, now
            claims[response_id] = Claim(row.epoch, row.cancel_requested, row.last_seq)
        return claims

    async def expired_leases(self, limit: int = 100) -> tuple[list[str], float | None]:
        now = time.time()
        leases = [(r.id, r.lease_until) for r in self.db.responses.values()
                  if r.status in RUNNING and r.lease_until is not None]
        expired = [response_id for response_id, until in leases if until < now][:limit]
        return expired, min((until for _, until in leases if until >= now), default=None)

    def _held(self, worker: str) -> list[ResponseRow]:
        return [r for r in self.db.responses.values() if r.worker == worker and r.status in RUNNING]

    async def heartbeat(self, worker: str, ids: list[str], lease_s: float) -> dict[str, bool]:
        held = {}
        for row in self._held(worker):
            if row.id in ids:
                row.lease_until = time.time() + lease_s
                held[row.id] = row.cancel_requested
        return held

    async def request_cancel(self, response_id: str) -> bool:
        row = self.db.responses.get(response_id)
        if row is None or row.status not in RUNNING:
            return False
        row.cancel_requested = True
        return True

    async def release(self, worker: str) -> int:
        held = self._held(worker)
        for row in held:
            row.lease_until, row.worker = 0.0, None
        return len(held)

    async def stalled(self, enqueue_grace: float, limit: int = 100) -> list[str]:
        now = time.time()
        ids = [
            r.id for r in self.db.responses.values()
            if r.status in RUNNING and (
                (r.lease_until is None and r.updated_at < now - enqueue_grace)
                or (r.lease_until is not None and r.lease_until < now - enqueue_grace)
            )
        ][:limit]
        for response_id in ids:
            self.db.responses[response_id].updated_at = now
        return ids

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
