"""Every PostgreSQL statement that locks several response rows locks them in one order (by id),
so two of them can never deadlock, whatever order their callers list the ids in.

Each trial makes the crossing deterministic: a third connection holds one row, the first
statement runs until it waits on that row (holding every row it locked before it), the second
runs until it waits too, then the row is let go. Statements that lock in one order then finish
one after the other; statements that lock in different orders deadlock, and PostgreSQL aborts
one of them with "deadlock detected".
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from urllib.parse import urlsplit

import asyncpg
import orjson
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from domain.ports import AppendBatch, Final, NewResponse, StoredEvent
from storage.postgres import PostgresEventStore
from storage.sql_store import SqlEventStore
from tests.conftest import make_database_url

pytestmark = pytest.mark.postgres

WORKER = "worker-a"
ROWS = 4
FILLER = 5000


def _new(response_id: str) -> NewResponse:
    return NewResponse(
        id=response_id,
        owner="tenant-a",
        model="m",
        status="in_progress",
        background=False,
        request=b'{"model":"m"}',
        created_at=1,
        input_items=[],
    )


def _event(seq: int) -> StoredEvent:
    return StoredEvent(seq, "response.output_text.delta", orjson.dumps({"sequence_number": seq}))


@pytest.fixture
async def database(  # type: ignore[no-untyped-def]
    request: pytest.FixtureRequest, tmp_path
) -> AsyncIterator[tuple[SqlEventStore, asyncpg.Connection]]:
    url = await make_database_url("postgres", request, tmp_path)
    parts = urlsplit(url)
    # The production engines give up on a lock after a while; here a wait lasts until the
    # trial lets the row go, so that only a deadlock can fail a statement.
    settings = {"server_settings": {"lock_timeout": "0"}}
    store = PostgresEventStore(
        create_async_engine(url, connect_args=settings), create_async_engine(url)
    )
    side = await asyncpg.connect(
        host=parts.hostname, port=parts.port, user="postgres", database=parts.path.lstrip("/")
    )
    # A table of a running service's size, so that PostgreSQL plans as it does there: by index.
    for chunk in range(FILLER // 500):
        await store.append(
            [
                AppendBatch(rid, 0, -1, [_event(0)], create=_new(rid))
                for rid in (f"resp_filler_{chunk}_{index}" for index in range(500))
            ]
        )
    await side.execute("ANALYZE responses")
    # Open the writer connections both statements of a trial need.
    await asyncio.gather(*(store.heartbeat(WORKER, ["resp_none"], 1) for _ in range(3)))
    yield store, side
    await side.close()
    await store.close()


async def _running(store: SqlEventStore) -> dict[str, int]:
    """ROWS running responses held by WORKER, created in an order unlike their ids' (so the
    table's physical order is not the id order). Returns their epochs."""
    tag = uuid.uuid4().hex[:8]
    ids = [f"resp_{tag}_{index}" for index in range(ROWS)]
    for rid in [*ids[1::2], *ids[0::2]]:
        await store.append([AppendBatch(rid, 0, -1, [_event(0)], create=_new(rid))])
    claims = await store.claim_many(ids, WORKER, 60)
    assert sorted(claims) == ids
    return {rid: claim.epoch for rid, claim in claims.items()}


async def _waiting(side: asyncpg.Connection, count: int) -> None:
    """Until `count` backends wait on a lock in this database."""
    for _ in range(6000):
        waiting = await side.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        if waiting >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"fewer than {count} statements ever waited on a lock")


async def _cross(
    side: asyncpg.Connection,
    held: str,
    first: Callable[[], Awaitable[object]],
    second: Callable[[], Awaitable[object]],
) -> list[object]:
    transaction = side.transaction()
    await transaction.start()
    await side.execute("SELECT 1 FROM responses WHERE id = $1 FOR UPDATE", held)
    one = asyncio.ensure_future(first())
    await _waiting(side, 1)
    two = asyncio.ensure_future(second())
    await _waiting(side, 2)
    await transaction.rollback()
    return list(await asyncio.gather(one, two, return_exceptions=True))


def _deadlocks(results: list[object]) -> list[BaseException]:
    return [r for r in results if isinstance(r, BaseException)]


def _progress(epochs: dict[str, int], order: list[str], final: bool = False) -> list[AppendBatch]:
    """One flush that appends an event to each response, in `order`."""
    return [
        AppendBatch(
            rid,
            epochs[rid],
            0,
            [_event(1)],
            final=Final("completed", b"{}", 2) if final else None,
        )
        for rid in order
    ]


@pytest.mark.parametrize("final", [False, True], ids=["events", "events-and-ends"])
async def test_a_flush_and_a_heartbeat_never_deadlock(database, final: bool):  # type: ignore[no-untyped-def]
    store, side = database
    failures = []
    for held_index in range(ROWS):
        for flush_first in (True, False):
            epochs = await _running(store)
            ids = sorted(epochs)
            flush = partial(store.append, _progress(epochs, ids[::-1], final))
            beat = partial(store.heartbeat, WORKER, ids, 60)
            first, second = (flush, beat) if flush_first else (beat, flush)
            results = await _cross(side, ids[held_index], first, second)
            failures += _deadlocks(results)
            if not _deadlocks(results):
                fenced, beats = results if flush_first else results[::-1]
                assert fenced == set()
                assert set(beats) == (set() if final and flush_first else set(ids))  # type: ignore[arg-type]
    assert not failures, f"{len(failures)} trials: {failures[0]}"


async def test_a_heartbeat_and_a_release_never_deadlock(database):  # type: ignore[no-untyped-def]
    store, side = database
    failures = []
    for held_index in range(ROWS):
        epochs = await _running(store)
        ids = sorted(epochs)
        results = await _cross(
            side,
            ids[held_index],
            partial(store.heartbeat, WORKER, ids[::-1], 60),
            partial(store.release, WORKER),
        )
        failures += _deadlocks(results)
    assert not failures, f"{len(failures)} trials: {failures[0]}"
