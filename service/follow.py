"""Gap-free following of a response's log: replay from the store, then tail the bus.

The bus is at-most-once; this loop makes the stream exactly-once and in order, and makes it end:
  1. subscribe (confirmed) before reading the store, so nothing falls between the two;
  2. replay stored events after the cursor;
  3. tail the bus, dropping what the cursor has passed; on a gap, a lag mark or silence,
     re-read the store;
  4. stop after the terminal event (or when the response is gone, or has ended before the
     cursor).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from domain.ports import EventStore, StoredEvent, Subscription
from domain.response import RUNNING, TERMINAL_EVENTS

PAGE = 1000
KEEPALIVE = None  # yielded instead of events when it is time for a keep-alive comment


async def _replay(
    store: EventStore, response_id: str, cursor: int
) -> AsyncIterator[list[StoredEvent]]:
    while True:
        page = await store.read_events(response_id, cursor, PAGE)
        if page:
            yield page
            cursor = page[-1].seq
        if len(page) < PAGE:
            return


async def follow(
    store: EventStore | None,
    subscription: Subscription,
    response_id: str,
    cursor: int,
    *,
    replay_first: bool = True,
    idle_s: float = 1.0,
    keepalive_s: float = 15.0,
) -> AsyncIterator[list[StoredEvent] | None]:
    """Yield lists of events with seq > cursor, in order, ending with the terminal event.

    `store=None` is for responses that are not stored: the subscription is unbounded then.
    The caller owns (and closes) the subscription.
    """
    last_sent = time.monotonic()

    async def catch_up() -> AsyncIterator[list[StoredEvent]]:
        nonlocal cursor
        assert store is not None
        async for page in _replay(store, response_id, cursor):
            yield page
            cursor = page[-1].seq

    if replay_first and store is not None:
        replayed = False
        async for page in catch_up():
            replayed = True
            yield page
            if page[-1].type in TERMINAL_EVENTS:
                return
        if not replayed and await _ended_before(store, response_id, cursor):
            return  # a cursor at or past the end of a finished log: nothing will ever come
        last_sent = time.monotonic()

    while True:
        # Wake up for whichever comes first: a store re-read or a keep-alive.
        wait = min(idle_s, max(0.0, keepalive_s - (time.monotonic() - last_sent)))
        batch = await subscription.get(wait)
        events: list[StoredEvent] = []
        if batch is not None and batch.events and not subscription.lagged:
            if batch.events[0].seq > cursor + 1 and store is not None:
                # A gap: what fell between is in the store (it was committed before publish).
                async for page in catch_up():
                    events.extend(page)
            events.extend(e for e in batch.events if e.seq > cursor)
        elif store is not None:
            if subscription.lagged:
                subscription.reset_lag()
            async for page in catch_up():
                events.extend(page)
            if not events and batch is None and await _cannot_finish(store, response_id, cursor):
                return
        if events:
            cursor = events[-1].seq
            yield events
            last_sent = time.monotonic()
            if events[-1].type in TERMINAL_EVENTS:
                return
        elif time.monotonic() - last_sent >= keepalive_s:
            yield KEEPALIVE
            last_sent = time.monotonic()


async def _cannot_finish(store: EventStore, response_id: str, cursor: int) -> bool:
    """True when no event after the cursor will ever come: the response was deleted meanwhile,
    or it has ended and the cursor is at or past its last event."""
    record = await store.get(response_id)
    return record is None or (record.status not in RUNNING and record.last_seq <= cursor)


async def _ended_before(store: EventStore, response_id: str, cursor: int) -> bool:
    """True when the response has ended and the cursor is at or past its last event (a row not
    committed yet is not an ended one)."""
    record = await store.get(response_id)
    return record is not None and record.status not in RUNNING and record.last_seq <= cursor
