"""The hash chain over each response's events: tamper evidence for the stored log.

hash(event) = sha256(hash(previous event) + stored bytes), starting from a value derived from
the response id, so an event edited, removed, moved to another response or reordered breaks
every hash after it. The chain makes edits evident; it does not stop someone able to rewrite
a whole log and recompute its hashes.
"""

from __future__ import annotations

from collections.abc import Iterable
from hashlib import sha256


def genesis(response_id: str) -> bytes:
    return sha256(b"responsed/events/v1:" + response_id.encode()).digest()


def link(previous: bytes, data: bytes) -> bytes:
    return sha256(previous + data).digest()


def first_break(
    response_id: str, rows: Iterable[tuple[int, bytes, bytes | None]], last_seq: int
) -> str | None:
    """Why a response's stored events (seq, data, hash) do not form its chain, or None."""
    previous = genesis(response_id)
    expected = 0
    for seq, data, stored in rows:
        if seq != expected:
            return f"event {expected} is missing (found {seq} next)"
        previous = link(previous, data)
        if stored != previous:
            return f"event {seq} does not match its hash"
        expected += 1
    if expected != last_seq + 1:
        return f"the log ends at event {expected - 1}, the response recorded {last_seq}"
    return None
