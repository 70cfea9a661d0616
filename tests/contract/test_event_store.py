"""The event store's contract, run against SQLite and a real PostgreSQL (see conftest)."""

import orjson
import pytest

from domain.ports import AppendBatch, Final, NewResponse, StoredEvent
from storage.sql_store import SqlEventStore


def _new(response_id: str, items: int = 0) -> NewResponse:
    return NewResponse(
        id=response_id,
        owner="tenant-a",
        model="m",
        status="in_progress",
        background=False,
        request=b'{"model":"m"}',
        created_at=1,
        input_items=[{"id": f"msg_{i}", "type": "message"} for i in range(items)],
    )


def _events(first: int, last: int, kind: str = "response.output_text.delta"):
    return [
        StoredEvent(s, kind, orjson.dumps({"sequence_number": s})) for s in range(first, last + 1)
    ]


async def test_create_and_append_in_one_transaction(store: SqlEventStore):
    fenced = await store.append(
        [AppendBatch("resp_a", 0, -1, _events(0, 2), create=_new("resp_a", 3))]
    )
    assert fenced == set()
    record = await store.get("resp_a")
    assert record is not None
    assert (record.owner, record.status, record.last_seq, record.snapshot) == (
        "tenant-a",
        "in_progress",
        2,
        None,
    )
    assert [e.seq for e in await store.read_events("resp_a", -1, 100)] == [0, 1, 2]


async def test_reads_page_after_a_cursor(store: SqlEventStore):
    await store.append([AppendBatch("resp_a", 0, -1, _events(0, 9), create=_new("resp_a"))])
    page = await store.read_events("resp_a", 3, 4)
    assert [e.seq for e in page] == [4, 5, 6, 7]
    assert page[0].data == orjson.dumps({"sequence_number": 4})  # the stored bytes, verbatim
    assert await store.read_events("resp_a", 9, 10) == []
    assert await store.read_events("resp_unknown", -1, 10) == []


async def test_many_responses_in_one_flush(store: SqlEventStore):
    batches = [
        AppendBatch(f"resp_{i}", 0, -1, _events(0, 4), create=_new(f"resp_{i}")) for i in range(20)
    ]
    assert await store.append(batches) == set()
    more = [AppendBatch(f"resp_{i}", 0, 4, _events(5, 6)) for i in range(20)]
    assert await store.append(more) == set()
    for i in range(20):
        assert [e.seq for e in await store.read_events(f"resp_{i}", -1, 100)] == list(range(7))


async def test_a_stale_writer_is_fenced_out_and_others_commit(store: SqlEventStore):
    await store.append(
        [
            AppendBatch("resp_a", 0, -1, _events(0, 1), create=_new("resp_a")),
            AppendBatch("resp_b", 0, -1, _events(0, 1), create=_new("resp_b")),
        ]
    )
    fenced = await store.append(
        [
            AppendBatch("resp_a", 0, 0, _events(1, 2)),  # expects last_seq 0, but it is 1
            AppendBatch("resp_b", 7, 1, _events(2, 2)),  # wrong epoch
            AppendBatch("resp_c", 0, -1, _events(0, 0)),  # no such response
        ]
    )
    assert fenced == {"resp_a", "resp_b", "resp_c"}
    assert [e.seq for e in await store.read_events("resp_a", -1, 100)] == [0, 1]
    assert (await store.get("resp_b")).last_seq == 1
    ok = await store.append([AppendBatch("resp_a", 0, 1, _events(2, 2))])
    assert ok == set()


async def test_terminal_batch_stores_the_snapshot(store: SqlEventStore):
    await store.append([AppendBatch("resp_a", 0, -1, _events(0, 1), create=_new("resp_a"))])
    snapshot = b'{"id":"resp_a","status":"completed"}'
    await store.append(
        [
            AppendBatch(
                "resp_a",
                0,
                1,
                _events(2, 2, "response.completed"),
                final=Final("completed", snapshot, 5),
            )
        ]
    )
    record = await store.get("resp_a")
    assert (record.status, record.snapshot) == ("completed", snapshot)
    assert await store.unfinished() == []


async def test_unfinished_lists_running_responses(store: SqlEventStore):
    await store.append([AppendBatch("resp_a", 0, -1, _events(0, 0), create=_new("resp_a"))])
    assert [r.id for r in await store.unfinished()] == ["resp_a"]


@pytest.mark.parametrize("descending", [False, True])
async def test_input_items_paginate(store: SqlEventStore, descending: bool):
    await store.append([AppendBatch("resp_a", 0, -1, _events(0, 0), create=_new("resp_a", 5))])
    seen, after = [], None
    while True:
        page, more = await store.input_items("resp_a", after=after, limit=2, descending=descending)
        seen += [orjson.loads(p)["id"] for p in page]
        if not more:
            break
        after = seen[-1]
    expected = [f"msg_{i}" for i in range(5)]
    assert seen == (expected[::-1] if descending else expected)


async def test_delete_removes_everything(store: SqlEventStore):
    await store.append(
        [
            AppendBatch("resp_a", 0, -1, _events(0, 3), create=_new("resp_a", 2)),
            AppendBatch("resp_b", 0, -1, _events(0, 3), create=_new("resp_b", 2)),
        ]
    )
    assert await store.delete("resp_a") is True
    assert await store.get("resp_a") is None
    assert await store.read_events("resp_a", -1, 10) == []
    assert await store.input_items("resp_a", after=None, limit=10, descending=False) == ([], False)
    assert await store.delete("resp_a") is False
    assert len(await store.read_events("resp_b", -1, 10)) == 4  # neighbours untouched
