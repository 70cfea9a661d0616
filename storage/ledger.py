"""The audit ledger: a keyed, append-only record of every response that ended (with its final
chain head) and of every deletion and purge, each entry chained to the one before it.

A response can only leave the database evidently: deleting it through the API or the purge
records that; deleting its rows by hand leaves a ledger entry with nothing behind it, and
deleting ledger entries breaks the ledger's own chain (except at its very end: see
docs/audit.md for what an operator keeps outside the database to catch that too).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select, text

from storage.tables import audit_ledger

ENDED, DELETED, PURGED = "ended", "deleted", "purged"
# Serialises ledger appends across PostgreSQL processes (SQLite has one writer anyway). Taken
# last in its transaction, so it waits on nothing while held: no lock cycle can form.
_LOCK = 0x72736431


@dataclass(frozen=True, slots=True)
class Entry:
    response_id: str
    kind: str  # ended | deleted | purged
    status: str | None = None  # ended: the final status
    last_seq: int | None = None  # ended: the terminal event's sequence number
    head: bytes | None = None  # ended: the chain mac of the terminal event


def ledger_genesis(key: bytes) -> bytes:
    return hmac.new(key, b"responsed/ledger/v1", sha256).digest()


def entry_mac(key: bytes, previous: bytes, position: int, entry: Entry) -> bytes:
    body = orjson.dumps(
        [position, entry.response_id, entry.kind, entry.status, entry.last_seq,
         entry.head.hex() if entry.head is not None else None]
    )
    return hmac.new(key, previous + body, sha256).digest()


def record(conn: Connection, key: bytes, entries: Sequence[Entry], now: float) -> None:
    """Append entries at the ledger's end, in the caller's transaction."""
    if not entries:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": _LOCK})
    last = conn.execute(
        select(audit_ledger.c.position, audit_ledger.c.mac)
        .order_by(audit_ledger.c.position.desc())
        .limit(1)
    ).first()
    position, previous = (last[0], bytes(last[1])) if last else (0, ledger_genesis(key))
    rows: list[dict[str, Any]] = []
    for entry in entries:
        position += 1
        previous = entry_mac(key, previous, position, entry)
        rows.append({
            "position": position, "response_id": entry.response_id, "kind": entry.kind,
            "status": entry.status, "last_seq": entry.last_seq, "head": entry.head,
            "at": now, "mac": previous,
        })
    conn.execute(insert(audit_ledger), rows)
