"""The event store's contract: one test case, subclassed per implementation (in memory,
SQLite, a real PostgreSQL), each subclass giving only its `store` fixture."""

import time
from collections.abc import AsyncIterator

import orjson
import pytest

from domain.ports import AppendBatch, EventStore, Final, NewResponse, StoredEvent
from storage.memory_store import MemoryEventStore
from tests.conftest import open_backend


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


class EventStoreContract:
    """What every EventStore does; subclasses provide `store`."""

    async def test_create_and_append_in_one_transaction(self, store: EventStore):
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


    async def test_reads_page_after_a_cursor(self, store: EventStore):
        await store.append([AppendBatch("resp_a", 0, -1, _events(0, 9), create=_new("resp_a"))])
        page = await store.read_events("resp_a", 3, 4)
        assert [e.seq for e in page] == [4, 5, 6, 7]
        assert page[0].data == orjson.dumps({"sequence_number": 4})  # the stored bytes, verbatim
        assert await store.read_events("resp_a", 9, 10) == []
        assert await store.read_events("resp_unknown", -1, 10) == []


    async def test_many_responses_in_one_flush(self, store: EventStore):
        batches = [
            AppendBatch(f"resp_{i}", 0, -1, _events(0, 4), create=_new(f"resp_{i}"))
            for i in range(20)
        ]
        assert await store.append(batches) == set()
        more = [AppendBatch(f"resp_{i}", 0, 4, _events(5, 6)) for i in range(20)]
        assert await store.append(more) == set()
        for i in range(20):
            assert [e.seq for e in await store.read_events(f"resp_{i}", -1, 100)] == list(range(7))


    async def test_a_stale_writer_is_fenced_out_and_others_commit(self, store: EventStore):
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


    async def test_terminal_batch_stores_the_snapshot(self, store: EventStore):
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


    async def test_unfinished_lists_running_responses(self, store: EventStore):
        await store.append([AppendBatch("resp_a", 0, -1, _events(0, 0), create=_new("resp_a"))])
        assert [r.id for r in await store.unfinished()] == ["resp_a"]


    @pytest.mark.parametrize("descending", [False, True])
    async def test_input_items_paginate(self, store: EventStore, descending: bool):
        await store.append([AppendBatch("resp_a", 0, -1, _events(0, 0), create=_new("resp_a", 5))])
        seen, after = [], None
        while True:
            page, more = await store.input_items(
                "resp_a", after=after, limit=2, descending=descending
            )
            seen += [orjson.loads(p)["id"] for p in page]
            if not more:
                break
            after = seen[-1]
        expected = [f"msg_{i}" for i in range(5)]
        assert seen == (expected[::-1] if descending else expected)


    async def test_delete_removes_everything(self, store: EventStore):
        await store.append(
            [
                AppendBatch("resp_a", 0, -1, _events(0, 3), create=_new("resp_a", 2)),
                AppendBatch("resp_b", 0, -1, _events(0, 3), create=_new("resp_b", 2)),
            ]
        )
        assert await store.delete("resp_a") is True
        assert await store.get("resp_a") is None
        assert await store.read_events("resp_a", -1, 10) == []
        no_items = ([], False)
        assert await store.input_items("resp_a", after=None, limit=10, descending=False) == no_items
        assert await store.delete("resp_a") is False
        assert len(await store.read_events("resp_b", -1, 10)) == 4  # neighbours untouched

    async def test_a_claim_bumps_the_epoch_and_fences_the_old_writer(self, store: EventStore):
        await store.append([AppendBatch("resp_a", 0, -1, _events(0, 1), create=_new("resp_a"))])
        claim = await store.claim("resp_a", "w1", lease_s=30)
        assert claim is not None and (claim.epoch, claim.last_seq) == (1, 1)
        assert await store.claim("resp_a", "w2", lease_s=30) is None  # its lease is alive
        assert await store.append([AppendBatch("resp_a", 0, 1, _events(2, 2))]) == {"resp_a"}
        assert await store.append([AppendBatch("resp_a", 1, 1, _events(2, 2))]) == set()
        assert (await store.get("resp_a")).epoch == 1

    async def test_claim_many_takes_only_running_responses(self, store: EventStore):
        done = Final("completed", b"{}", 1)
        await store.append([
            AppendBatch("resp_a", 0, -1, _events(0, 0), create=_new("resp_a")),
            AppendBatch("resp_b", 0, -1, _events(0, 0), create=_new("resp_b"), final=done),
        ])
        claims = await store.claim_many(["resp_a", "resp_b", "resp_x"], "w1", lease_s=30)
        assert list(claims) == ["resp_a"]
        assert await store.claim_many([], "w1", lease_s=30) == {}

    async def test_heartbeat_cancel_and_release(self, store: EventStore):
        await store.append([AppendBatch("resp_a", 0, -1, _events(0, 0), create=_new("resp_a"))])
        await store.claim("resp_a", "w1", lease_s=30)
        assert await store.heartbeat("w1", ["resp_a"], lease_s=30) == {"resp_a": False}
        assert await store.heartbeat("w2", ["resp_a"], lease_s=30) == {}  # not its lease
        assert await store.request_cancel("resp_a") is True
        assert await store.request_cancel("resp_unknown") is False
        assert await store.heartbeat("w1", ["resp_a"], lease_s=30) == {"resp_a": True}
        assert await store.release("w1") == 1
        claim = await store.claim("resp_a", "w2", lease_s=30)  # free at once
        assert claim is not None and claim.cancel_requested and claim.epoch == 2

    async def test_stalled_lists_running_responses_nobody_holds(self, store: EventStore):
        await store.append([AppendBatch("resp_a", 0, -1, _events(0, 0), create=_new("resp_a"))])
        assert await store.stalled(enqueue_grace=60) == []  # within its grace
        assert await store.stalled(enqueue_grace=-1) == ["resp_a"]
        await store.claim("resp_a", "w1", lease_s=30)
        assert await store.stalled(enqueue_grace=-1) == []  # held

    async def test_expired_leases_and_the_next_one_to_run_out(self, store: EventStore):
        await store.append([
            AppendBatch(r, 0, -1, _events(0, 0), create=_new(r)) for r in ("resp_a", "resp_b")
        ])
        assert await store.expired_leases() == ([], None)  # nobody holds a lease yet
        await store.claim("resp_a", "w1", lease_s=-1)  # already run out
        await store.claim("resp_b", "w1", lease_s=3600)
        expired, next_expiry = await store.expired_leases()
        assert expired == ["resp_a"]
        assert next_expiry is not None and next_expiry > time.time() + 3000

    async def test_running_responses_are_counted_per_owner(self, store: EventStore):
        other = _new("resp_b")
        other.owner = "tenant-b"
        await store.append([
            AppendBatch("resp_a", 0, -1, _events(0, 0), create=_new("resp_a")),
            AppendBatch("resp_b", 0, -1, _events(0, 0), create=other),
            AppendBatch("resp_c", 0, -1, _events(0, 0), create=_new("resp_c"),
                        final=Final("failed", b"{}", None)),
        ])
        counts = [await store.count_running(o) for o in ("tenant-a", "tenant-b", "tenant-c")]
        assert counts == [1, 1, 0]

    async def test_items_are_found_by_id_for_their_owner_only(self, store: EventStore):
        output = [{"id": "msg_out", "type": "message"}]
        await store.append([AppendBatch(
            "resp_a", 0, -1, _events(0, 0), create=_new("resp_a", 1),
            final=Final("completed", b"{}", 1, output=output),
        )])
        assert orjson.loads(await store.find_item("tenant-a", "msg_out")) == output[0]
        assert orjson.loads(await store.find_item("tenant-a", "msg_0"))["id"] == "msg_0"
        assert await store.find_item("tenant-b", "msg_out") is None
        assert await store.find_item("tenant-a", "msg_none") is None
        assert await store.ping() is True


class TestMemoryEventStore(EventStoreContract):
    @pytest.fixture
    async def store(self) -> AsyncIterator[EventStore]:
        yield MemoryEventStore()


class TestSqliteEventStore(EventStoreContract):
    @pytest.fixture
    async def store(self, request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[EventStore]:  # type: ignore[no-untyped-def]
        stores = await open_backend("sqlite", request, tmp_path)
        yield stores.events
        await stores.close()


@pytest.mark.postgres
class TestPostgresEventStore(EventStoreContract):
    @pytest.fixture
    async def store(self, request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[EventStore]:  # type: ignore[no-untyped-def]
        stores = await open_backend("postgres", request, tmp_path)
        yield stores.events
        await stores.close()
