"""SQLite only: a checkpoint pass that finds the WAL too big has the writer start it over."""

from __future__ import annotations

import asyncio
import sqlite3

import orjson

from domain.ports import AppendBatch, NewResponse, StoredEvent
from service.runtime import sql_event_store
from storage.database import sqlite_url
from storage.migrate import upgrade


def _events(first: int, count: int) -> list[StoredEvent]:
    return [
        StoredEvent(s, "response.output_text.delta", orjson.dumps({"delta": " token", "n": s}))
        for s in range(first, first + count)
    ]


def _wal_checkpoint(path: str) -> tuple[int, int, int]:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()


async def test_a_big_wal_is_started_over_by_the_next_commit(tmp_path):
    url = sqlite_url(tmp_path)
    await upgrade(url)
    store = sql_event_store(url)
    checkpointer = store._checkpointer
    assert checkpointer is not None
    checkpointer._restart_bytes = 4 * 1024 * 1024  # a flush here writes ~0.6 MB of pages
    ids = [f"resp_{n:03d}" for n in range(64)]
    await store.append(
        [
            AppendBatch(rid, 0, -1, _events(0, 1),
                        create=NewResponse(rid, "o", "m", "in_progress", False, b"{}", 1, []))
            for rid in ids
        ]
    )
    last = 0

    async def flush() -> None:
        nonlocal last
        await store.append([AppendBatch(rid, 0, last, _events(last + 1, 8)) for rid in ids])
        last += 8

    for _ in range(20):
        await flush()
    await asyncio.to_thread(checkpointer.checkpoint)
    assert checkpointer.restart_wanted  # 20 flushes: past 4 MiB
    await flush()  # the writer checkpoints all of it after this commit (RESTART)
    assert not checkpointer.restart_wanted
    path = url.split(":///", 1)[1]
    busy, frames, checkpointed = await asyncio.to_thread(_wal_checkpoint, path)
    assert busy == 0 and frames == checkpointed  # so the next commit starts the log over
    await flush()
    await asyncio.to_thread(checkpointer.checkpoint)
    assert not checkpointer.restart_wanted  # written from the start: small again
    assert len(await store.read_events("resp_063", -1, 10_000)) == 1 + 22 * 8
    await store.close()


async def test_a_flush_of_megabytes_leaves_the_event_loop_free(tmp_path):
    """A create carrying a huge request is written from a thread: other coroutines run while
    it is in progress, and a write queued meanwhile waits for it (one connection)."""
    url = sqlite_url(tmp_path)
    await upgrade(url)
    store = sql_event_store(url)
    ticks = 0
    writing = True

    async def ticker() -> None:
        nonlocal ticks
        while writing:
            ticks += 1
            await asyncio.sleep(0)

    big = orjson.dumps({"input": "word " * 3_000_000})
    try:
        running = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        before = ticks
        create = NewResponse("resp_big", "o", "m", "in_progress", False, big, 1,
                             [{"id": "msg_1", "x": big.decode()}])
        await store.append([AppendBatch("resp_big", 0, -1, _events(0, 1), create=create)])
        during = ticks - before
        small = asyncio.create_task(store.append([AppendBatch("resp_big", 0, 0, _events(1, 1))]))
        await small
        writing = False
        await running
        assert during > 0  # the loop turned while the megabytes were written
        assert [e.seq for e in await store.read_events("resp_big", -1, 10)] == [0, 1]
    finally:
        await store.close()
