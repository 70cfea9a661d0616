"""The keyed hash chain over each response's events: tamper evidence for the stored log.

mac(event) = HMAC-SHA256(audit key, mac(previous event) + stored bytes), starting from an HMAC
of the response id, so an event edited, removed, moved to another response or reordered breaks
every link after it, and nobody without the audit key can compute a chain that verifies.
`genesis` and `link` without a key are the first, unkeyed chain (migration 0002 wrote it).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from hashlib import sha256


def genesis(response_id: str) -> bytes:
    return sha256(b"responsed/events/v1:" + response_id.encode()).digest()


def link(previous: bytes, data: bytes) -> bytes:
    return sha256(previous + data).digest()


def keyed_genesis(key: bytes, response_id: str) -> bytes:
    return hmac.new(key, b"responsed/events/v2:" + response_id.encode(), sha256).digest()


def keyed_link(key: bytes, previous: bytes, data: bytes) -> bytes:
    return hmac.new(key, previous + data, sha256).digest()


def first_break(
    key: bytes,
    response_id: str,
    rows: Iterable[tuple[int, bytes, bytes | None]],
    last_seq: int,
) -> str | None:
    """Why a response's stored events (seq, data, mac) do not form its chain, or None."""
    previous = keyed_genesis(key, response_id)
    expected = 0
    for seq, data, stored in rows:
        if seq != expected:
            return f"event {expected} is missing (found {seq} next)"
        previous = keyed_link(key, previous, data)
        if stored is None or not hmac.compare_digest(stored, previous):
            return f"event {seq} does not match its hash under the audit key"
        expected += 1
    if expected != last_seq + 1:
        return f"the log ends at event {expected - 1}, the response recorded {last_seq}"
    return None
