"""Server-sent events framing: `id:`, `event:` and one-line `data:`, LF endings, whole frames."""

from __future__ import annotations

from collections.abc import AsyncIterator

from domain.ports import StoredEvent

DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keep-alive\n\n"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}

_type_bytes: dict[str, bytes] = {}


def frame(event: StoredEvent) -> bytes:
    kind = _type_bytes.get(event.type)
    if kind is None:
        kind = _type_bytes[event.type] = event.type.encode()
    if event.seq < 0:  # not in the log (a stream's outage error): no id to resume from
        return b"event: %s\ndata: %s\n\n" % (kind, event.data)
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.seq, kind, event.data)


async def encode(events: AsyncIterator[list[StoredEvent] | None]) -> AsyncIterator[bytes]:
    """One write per committed batch: a batch's frames go out as one chunk."""
    async for batch in events:
        if batch is None:
            yield KEEPALIVE
        else:
            yield b"".join(map(frame, batch))
    yield DONE
