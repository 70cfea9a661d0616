"""Gap-free following of a response's log: replay from the store, then tail the bus.

The bus is at-most-once; this loop makes the stream exactly-once and in order, and makes it end:
  1. subscribe (confirmed) before reading the store, so nothing falls between the two;
  2. replay stored events after the cursor;
  3. tail the bus, dropping what the cursor has passed; on a gap, a lag mark or silence,
     re-read the store;
  4. stop after the terminal event (or when the response is gone, or has ended before the
     cursor).
While the store is away (an outage), its reads are retried with backoff and keep-alives keep the
connection open; past the outage limit the stream ends with an `error` event, never torn.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import orjson

from domain.ports import EventStore, StoredEvent, Subscription
from domain.response import RUNNING, TERMINAL_EVENTS

PAGE = 1000
KEEPALIVE = None  # yielded instead of events when it is time for a keep-alive comment
UNNUMBERED = -1  # the seq of an event that is not in the log (its SSE frame carries no id)
_MAX_DELAY_S = 1.0


def _never(error: BaseException) -> bool:
    return False


def outage_error(cursor: int, limit_s: float) -> StoredEvent:
    """The terminal `error` event of a stream whose store stayed away past the limit: the
    client may resume from its last event id once the service is back."""
    data = {
        "type": "error",
        "code": "service_unavailable",
        "message": f"The response's storage has been unavailable for {limit_s:g}s; resume "
        f"the stream with starting_after={cursor} once the service is back.",
        "param": None,
        "sequence_number": cursor + 1,
    }
    return StoredEvent(UNNUMBERED, "error", orjson.dumps(data))


class _Patience:
    """Retries a store read while the store is away, keeping the stream alive meanwhile."""

    def __init__(
        self, is_outage: Callable[[BaseException], bool], limit_s: float, keepalive_s: float
    ) -> None:
        self._is_outage = is_outage
        self._limit_s = limit_s
        self._keepalive_s = keepalive_s
        self.last_sent = time.monotonic()
        self.value: Any = None
        self._gave_up = False

    def exhausted(self) -> bool:
        """True once the store has been away for the whole limit: the stream must end."""
        return self._gave_up

    async def run(self, read: Callable[[], Awaitable[Any]]) -> AsyncIterator[None]:
        """Set `value` to read()'s result, yielding KEEPALIVE when one is due while waiting;
        makes `exhausted()` true instead once the store has been away for the whole limit."""
        delay = 0.05
        away_since: float | None = None
        while True:
            try:
                self.value = await read()
                return
            except Exception as error:
                if not self._is_outage(error):
                    raise
                now = time.monotonic()
                if away_since is None:
                    away_since = now
                if now - away_since >= self._limit_s:
                    self._gave_up = True
                    return
                if now - self.last_sent >= self._keepalive_s:
                    yield KEEPALIVE
                    self.last_sent = time.monotonic()
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_DELAY_S)


async def follow(
    store: EventStore | None,
    subscription: Subscription,
    response_id: str,
    cursor: int,
    *,
    replay_first: bool = True,
    idle_s: float = 1.0,
    keepalive_s: float = 15.0,
    is_outage: Callable[[BaseException], bool] = _never,
    outage_s: float = 60.0,
) -> AsyncIterator[list[StoredEvent] | None]:
    """Yield lists of events with seq > cursor, in order, ending with the terminal event.

    Long on purpose: one loop owns the cursor, the subscription, the keep-alive clock and the
    outage backoff, and the exactly-once argument is easiest to check with all of them in view.

    `store=None` is for responses that are not stored: the subscription is unbounded then.
    The caller owns (and closes) the subscription. A store read failing with an error
    `is_outage` calls an outage is retried for up to `outage_s`; then the stream ends with an
    `error` event (seq UNNUMBERED) in place of the terminal one.
    """
    patience = _Patience(is_outage, outage_s, keepalive_s)

    async def catch_up() -> AsyncIterator[list[StoredEvent] | None]:
        """Stored pages after the cursor (KEEPALIVE while the store is away)."""
        nonlocal cursor
        assert store is not None
        while True:
            async for keepalive in patience.run(
                partial(store.read_events, response_id, cursor, PAGE)
            ):
                yield keepalive
            if patience.exhausted():
                return
            page: list[StoredEvent] = patience.value
            if page:
                yield page
                cursor = page[-1].seq
            if len(page) < PAGE:
                return

    if replay_first and store is not None:
        replayed = False
        async for page in catch_up():
            if page is KEEPALIVE:
                yield KEEPALIVE
                continue
            replayed = True
            yield page
            patience.last_sent = time.monotonic()
            if page[-1].type in TERMINAL_EVENTS:
                return
        if not patience.exhausted() and not replayed:
            async for keepalive in patience.run(
                partial(_ended_before, store, response_id, cursor)
            ):
                yield keepalive
            if not patience.exhausted() and patience.value:
                return  # a cursor at or past the end of a finished log: nothing will ever come
        if patience.exhausted():
            yield [outage_error(cursor, outage_s)]
            return
        patience.last_sent = time.monotonic()

    while True:
        # Wake up for whichever comes first: a store re-read or a keep-alive.
        wait = min(idle_s, max(0.0, keepalive_s - (time.monotonic() - patience.last_sent)))
        batch = await subscription.get(wait)
        events: list[StoredEvent] = []
        if batch is not None and batch.events and not subscription.lagged:
            if batch.events[0].seq > cursor + 1 and store is not None:
                # A gap: what fell between is in the store (it was committed before publish).
                async for page in catch_up():
                    if page is KEEPALIVE:
                        yield KEEPALIVE
                    else:
                        events.extend(page)
            if not patience.exhausted():
                events.extend(e for e in batch.events if e.seq > cursor)
        elif store is not None:
            if subscription.lagged:
                subscription.reset_lag()
            async for page in catch_up():
                if page is KEEPALIVE:
                    yield KEEPALIVE
                else:
                    events.extend(page)
            if not events and batch is None and not patience.exhausted():
                async for keepalive in patience.run(
                    partial(_cannot_finish, store, response_id, cursor)
                ):
                    yield keepalive
                if not patience.exhausted() and patience.value:
                    return
        if events:
            cursor = events[-1].seq
            yield events
            patience.last_sent = time.monotonic()
            if events[-1].type in TERMINAL_EVENTS:
                return
        if patience.exhausted():
            yield [outage_error(cursor, outage_s)]
            return
        if not events and time.monotonic() - patience.last_sent >= keepalive_s:
            yield KEEPALIVE
            patience.last_sent = time.monotonic()


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
