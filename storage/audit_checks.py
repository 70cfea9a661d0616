"""The checks `responsed audit verify` makes beyond each event chain, on plain values: the
audit ledger's own chain, and whether an ended response's end holds together. Both event-store
backends' audit stores (SQL and in memory) run them."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson

from domain.response import RUNNING
from storage import ledger


@dataclass(slots=True)
class LedgerState:
    last_entry: dict[str, ledger.Entry]  # the last entry per response: what rows are held to
    broken: list[tuple[str, str]]
    head: str  # "position:mac" of the last entry
    anchor_note: str | None


def walk_ledger(
    key: bytes, rows: Iterable[tuple[int, ledger.Entry, bytes]], anchor: str | None
) -> LedgerState:
    """Walk the ledger's chain of (position, entry, mac) in position order."""
    last_entry: dict[str, ledger.Entry] = {}
    broken: list[tuple[str, str]] = []
    previous, expected, at_anchor = ledger.ledger_genesis(key), 1, None
    anchor_position = int(anchor.split(":")[0]) if anchor else None
    for position, entry, mac in rows:
        if position != expected:
            broken.append(("ledger", f"entry {expected} is missing (found {position} next)"))
        want = ledger.entry_mac(key, previous, position, entry)
        if not hmac.compare_digest(mac, want):
            broken.append(
                ("ledger", f"entry {position} ({entry.response_id}) does not match its mac")
            )
        previous, expected = mac, position + 1
        if position == anchor_position:
            at_anchor = f"{position}:{previous.hex()}"
        last_entry[entry.response_id] = entry
    head = f"{expected - 1}:{previous.hex() if expected > 1 else ''}"
    note = None
    if anchor is not None:
        if at_anchor == anchor:
            note = f"ledger head matches {anchor}"
        else:
            note = f"ledger head {anchor} is not in the ledger (entries removed or rewritten)"
            broken.append(("ledger", note))
    return LedgerState(last_entry, broken, head, note)


# The terminal event each final status ends with (a cancel ends with response.failed).
_TERMINAL = {
    "completed": "response.completed",
    "incomplete": "response.incomplete",
    "failed": "response.failed",
    "cancelled": "response.failed",
}


def end_break(
    status: str,
    snapshot: bytes | None,
    log: Sequence[tuple[int, bytes, bytes | None]],
    entry: ledger.Entry | None,
) -> str | None:
    """Why an ended response's end (terminal event, status, snapshot, ledger entry) does not
    hold together, or None. A running one must not be recorded as ended."""
    if status in RUNNING:
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
