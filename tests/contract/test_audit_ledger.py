"""The audit's contract on every backend (memory, SQLite, PostgreSQL): chains keyed with the
audit key, ends recorded in the ledger, deletions and purges recorded as such."""

from __future__ import annotations

import orjson

from domain.ports import AppendBatch, Final, NewResponse, StoredEvent
from service.retention import Retention
from service.runtime import Stores


def _new(response_id: str) -> NewResponse:
    return NewResponse(response_id, "tenant-a", "m", "in_progress", False, b"{}", 1, [])


def _ended(response_id: str) -> AppendBatch:
    response = {"id": response_id, "status": "completed", "output": []}
    events = [
        StoredEvent(0, "response.created", orjson.dumps({"type": "response.created"})),
        StoredEvent(1, "response.completed", orjson.dumps(
            {"type": "response.completed", "sequence_number": 1, "response": response})),
    ]
    final = Final("completed", orjson.dumps(response), 2)
    return AppendBatch(response_id, 0, -1, events, final, _new(response_id))


async def test_ended_deleted_and_purged_responses_verify_under_their_key(stores: Stores):
    await stores.events.append([_ended("resp_a"), _ended("resp_deleted"), _ended("resp_b")])
    await stores.events.append([AppendBatch("resp_running", 0, -1, [
        StoredEvent(0, "response.created", b'{"type": "response.created"}')
    ], create=_new("resp_running"))])
    assert await stores.events.delete("resp_deleted")
    purged = await Retention(stores.retention, response_ttl_s=1, audit_ttl_s=0).purge(now=10)
    assert purged.responses == 2  # both ended, created at 1; the running one stays
    verdict = await stores.audit.verify(b"")  # the stores of these tests use the empty key
    assert (verdict.checked, verdict.broken) == (1, [])
    # ended x3, deleted, purged x2: six entries
    assert verdict.ledger_head.startswith("6:")
    again = await stores.audit.verify(b"", anchor=verdict.ledger_head)
    assert again.broken == [] and again.anchor_note == f"ledger head matches {verdict.ledger_head}"


async def test_another_key_verifies_nothing(stores: Stores):
    await stores.events.append([_ended("resp_a")])
    verdict = await stores.audit.verify(b"not the key")
    reasons = dict(verdict.broken)
    assert reasons["resp_a"] == "event 0 does not match its hash under the audit key"
    assert reasons["ledger"] == "entry 1 (resp_a) does not match its mac"
