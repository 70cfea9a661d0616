"""Retention's contract: the purge on every implementation of the retention port (memory,
SQLite, PostgreSQL), the keys' contract likewise; what needs SQL (any single-key table, what
is stored of a key, purgers in several processes) on the databases."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from sqlalchemy import Column, Float, MetaData, String, Table, func, insert, select

from domain import keys
from domain.ports import (
    AppendBatch,
    ConversationRecord,
    EventStore,
    Final,
    NewResponse,
    StoredEvent,
    ToolCallFilter,
    ToolCallRecord,
)
from service.retention import Retention
from service.runtime import Stores, open_stores
from storage import retention
from storage.key_store import SqlKeyStore
from storage.retention import SqlRetentionStore
from storage.sql_store import SqlEventStore
from storage.tables import (
    api_keys,
    conversation_items,
    conversations,
    response_events,
    responses,
)
from tests.conftest import make_database_url


def _events(first: int, last: int) -> list[StoredEvent]:
    return [StoredEvent(s, "response.output_text.delta", orjson.dumps({"sequence_number": s}))
            for s in range(first, last + 1)]


async def _response(store: EventStore, response_id: str, *, created_at: int, status: str,
                    owner: str = "tenant-a") -> None:
    running = status in ("queued", "in_progress")
    create = NewResponse(response_id, owner, "m", "queued" if status == "queued" else
                         "in_progress", False, b"{}", created_at,
                         [{"id": f"msg_{response_id}_{i}", "type": "message"} for i in range(3)])
    final = None if running else Final(status, b'{"status": "%s"}' % status.encode(), None)
    await store.append([AppendBatch(response_id, 0, -1, _events(0, 9), final, create)])


async def _count(store: SqlEventStore, table: Table, response_id: str | None = None) -> int:
    column = table.c.response_id if "response_id" in table.c else table.c.id
    query = select(func.count()).select_from(table)
    if response_id is not None:
        query = query.where(column == response_id)
    async with store.reader.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def _items(store: EventStore, response_id: str) -> int:
    data, _ = await store.input_items(response_id, after=None, limit=100, descending=False)
    return len(data)


async def test_purge_deletes_expired_finished_responses_with_all_they_own(stores: Stores):
    store = stores.events
    for index, status in enumerate(["completed", "failed", "incomplete", "cancelled"]):
        await _response(store, f"resp_old_{index}", created_at=100, status=status)
    await _response(store, "resp_old_queued", created_at=100, status="queued")
    await _response(store, "resp_old_running", created_at=100, status="in_progress")
    await _response(store, "resp_young", created_at=10_000, status="completed")
    purged = await Retention(stores.retention, response_ttl_s=1000, audit_ttl_s=0).purge(
        now=5000
    )
    assert purged.responses == 4
    for index in range(4):
        assert await store.get(f"resp_old_{index}") is None
        assert await store.read_events(f"resp_old_{index}", -1, 100) == []
        assert await _items(store, f"resp_old_{index}") == 0
    # Running responses are never purged, however old; young ones stay.
    for kept in ("resp_old_queued", "resp_old_running", "resp_young"):
        assert await store.get(kept) is not None
        assert len(await store.read_events(kept, -1, 100)) == 10
        assert await _items(store, kept) == 3


async def test_purge_goes_in_bounded_batches(stores: Stores):
    store = stores.events
    for index in range(7):
        await _response(store, f"resp_{index}", created_at=100 + index, status="completed")
    # One transaction takes at most `limit` responses, oldest first.
    assert await stores.retention.purge_responses(5000.0, 3) == 3
    assert [await store.get(f"resp_{i}") is None for i in range(7)] == [True] * 3 + [False] * 4
    purge = Retention(stores.retention, response_ttl_s=1000, audit_ttl_s=0, batch=3).purge
    purged = await purge(now=5000)
    assert purged.responses == 4
    assert [await store.get(f"resp_{i}") for i in range(7)] == [None] * 7
    assert await purge(now=5000) == type(purged)(0, 0)


async def test_a_zero_ttl_keeps_everything(stores: Stores):
    await _response(stores.events, "resp_a", created_at=1, status="completed")
    purged = await Retention(stores.retention, response_ttl_s=0, audit_ttl_s=0).purge(now=10**12)
    assert purged.responses == 0 and await stores.events.get("resp_a") is not None


async def test_purge_by_age_for_a_single_key_table(store: SqlEventStore):
    # The shape of the tool-call audit: rows with an id and a created_at.
    table = Table("audit_like", MetaData(), Column("id", String(80), primary_key=True),
                  Column("created_at", Float, nullable=False))

    def setup(conn) -> None:  # type: ignore[no-untyped-def]
        table.create(conn)
        conn.execute(insert(table), [{"id": f"c{i}", "created_at": float(i)} for i in range(10)])

    await store.write(setup)
    assert await store.write(retention.purge_by_age, table, "created_at", 6.0, 4) == 4
    assert await store.write(retention.purge_by_age, table, "created_at", 6.0, 4) == 2
    assert await store.write(retention.purge_by_age, table, "created_at", 6.0, 4) == 0
    async with store.reader.connect() as conn:
        left = sorted(row[0] for row in await conn.execute(select(table.c.id)))
    assert left == ["c6", "c7", "c8", "c9"]


async def test_keys_are_stored_as_digests_and_revoked(stores: Stores):
    key_store = stores.keys
    key, record = await key_store.create("acme", "ci", admin=True)
    assert keys.key_id_of(key) == record.id
    fetched = await key_store.get(record.id)
    assert fetched == record and fetched.digest == keys.digest(key) and fetched.admin
    await key_store.create("other", "x")
    assert [r.tenant for r in await key_store.list()] == ["acme", "other"]
    assert [r.id for r in await key_store.list("acme")] == [record.id]
    assert await key_store.active_count() == 2
    assert await key_store.revoke(record.id)
    assert not await key_store.revoke(record.id)  # already revoked
    revoked = await key_store.get(record.id)
    assert revoked is not None and revoked.revoked
    assert await key_store.active_count() == 1
    assert await key_store.get("000000000000") is None
    with pytest.raises(ValueError):
        await key_store.create("bad tenant", "x")


async def test_the_database_holds_no_key_only_its_digest(store: SqlEventStore):
    key, _ = await SqlKeyStore(store).create("acme", "ci")
    async with store.reader.connect() as conn:
        dump = repr([tuple(r) for r in await conn.execute(select(api_keys))])
    assert key not in dump and key.split("_", 2)[2] not in dump  # the secret is nowhere


@pytest.mark.postgres
async def test_processes_purging_at_once_share_the_work(request: pytest.FixtureRequest, tmp_path):  # type: ignore[no-untyped-def]
    """PostgreSQL, where purges run side by side (on SQLite there is one writer): purgers in
    several processes skip each other's locked rows and none waits."""
    url = await make_database_url("postgres", request, tmp_path)
    processes = [await open_stores(url, migrate=False) for _ in range(4)]
    first = processes[0].events
    assert isinstance(first, SqlEventStore)
    try:
        for index in range(60):
            await _response(first, f"resp_{index}", created_at=100, status="completed")
        results = await asyncio.gather(*(
            Retention(p.retention, response_ttl_s=1000, audit_ttl_s=0, batch=7).purge(now=5000)
            for p in processes
        ))
        assert sum(r.responses for r in results) == 60
        assert await _count(first, responses) == 0
        assert await _count(first, response_events) == 0
    finally:
        for each in processes:
            await each.close()


def _call(call_id: str, at: float) -> ToolCallRecord:
    return ToolCallRecord(call_id, "tenant-a", "resp_x", None, "m", "function_call", "f",
                          "call_" + call_id, "{}", "completed", True, at)


async def test_audit_rows_have_their_own_longer_retention(stores: Stores):
    calls = [_call(f"fc_{age}_{n}", float(age)) for age in (100, 4_500) for n in range(3)]
    await stores.events.append([AppendBatch("resp_x", 0, -1, [], tool_calls=calls,
                                            audit_only=True)])
    await _response(stores.events, "resp_4500", created_at=4_500, status="completed")
    # Responses live 1,000 s here and audit rows 2,000 s: at 5,000 the response of 4,500 and
    # the calls of 4,500 stay, the calls of 100 go.
    purged = await Retention(stores.retention, response_ttl_s=1000, audit_ttl_s=2000).purge(
        now=5000
    )
    assert purged.audit_rows == 3
    rows, _ = await stores.audit.tool_calls(ToolCallFilter(), after=None, limit=100)
    assert sorted(r["id"] for r in rows) == [f"fc_4500_{n}" for n in range(3)]
    assert await stores.events.get("resp_4500") is not None


async def _conversation(store: SqlEventStore, conversation_id: str, *, created_at: int,
                        item_at: float | None = None, active: str | None = None) -> None:
    def make(conn):  # type: ignore[no-untyped-def]
        conn.execute(insert(conversations).values(
            id=conversation_id, owner="tenant-a", metadata=b"{}", created_at=created_at,
            next_position=0 if item_at is None else 1, active_response_id=active))
        if item_at is not None:
            conn.execute(insert(conversation_items).values(
                conversation_id=conversation_id, position=0, item_id=f"msg_{conversation_id}",
                data=b"{}", created_at=item_at))

    await store.write(make)


async def test_conversations_expire_after_their_own_ttl_of_inactivity(store: SqlEventStore):
    await _conversation(store, "conv_idle", created_at=100)
    await _conversation(store, "conv_idle_items", created_at=100, item_at=200.0)
    await _conversation(store, "conv_recent_item", created_at=100, item_at=4500.0)
    await _conversation(store, "conv_young", created_at=4500)
    await _conversation(store, "conv_in_use", created_at=100, active="resp_running")
    # Responses live forever here: conversations go on their own clock.
    purged = await Retention(SqlRetentionStore(store), response_ttl_s=0, audit_ttl_s=0,
                             conversation_ttl_s=1000, batch=1).purge(now=5000)
    assert purged.conversations == 2
    async with store.reader.connect() as conn:
        left = sorted(r[0] for r in await conn.execute(select(conversations.c.id)))
        items = sorted(r[0] for r in await conn.execute(
            select(conversation_items.c.conversation_id)))
    assert left == ["conv_in_use", "conv_recent_item", "conv_young"]
    assert items == ["conv_recent_item"]


async def test_idle_conversations_expire_on_every_backend(stores: Stores):
    now = time.time()
    old = int(now) - 5000

    async def create(conversation_id: str, created_at: int, items: int = 0) -> None:
        record = ConversationRecord(conversation_id, "tenant-a", b"{}", created_at, None)
        await stores.conversations.create(
            record, [(f"msg_{conversation_id}_{n}", b"{}") for n in range(items)])

    await create("conv_idle", old)
    await create("conv_talked_to", old)
    await stores.conversations.add_items("conv_talked_to", "tenant-a", [("msg_new", b"{}")])
    await create("conv_young", int(now))
    purge = Retention(stores.retention, response_ttl_s=0, audit_ttl_s=0,
                      conversation_ttl_s=1000).purge
    assert (await purge(now=now)).conversations == 1
    assert await stores.conversations.get("conv_idle", "tenant-a") is None
    for kept in ("conv_talked_to", "conv_young"):
        assert await stores.conversations.get(kept, "tenant-a") is not None
    # Later, with nothing added since, the others are idle too.
    assert (await purge(now=now + 10_000)).conversations == 2
