"""What an append writes besides events: the hash chain, the tool-call audit, output items,
conversation history; and the schema itself. The contracts of the audit and conversation
ports run on every implementation (`stores`: memory, SQLite, PostgreSQL); what needs SQL
(migrations, tampering with stored rows, a restart's chain head) on the two databases."""

import time

import orjson
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import update

from domain.ports import (
    AppendBatch,
    ConversationRecord,
    Final,
    NewResponse,
    StoredEvent,
    ToolCallFilter,
    ToolCallRecord,
    ToolOutput,
)
from service.runtime import Stores, sql_event_store
from storage.audit_store import SqlAuditStore
from storage.conversation_store import SqlConversationStore
from storage.memory_records import MemoryConversationStore
from storage.memory_store import MemoryEventStore
from storage.sql_store import SqlEventStore
from storage.tables import metadata, response_events


def _new(response_id, owner="tenant-a", items=(), conversation=None, history=0):
    return NewResponse(
        id=response_id,
        owner=owner,
        model="m",
        status="in_progress",
        background=False,
        request=b"{}",
        created_at=1,
        input_items=list(items),
        conversation_id=conversation,
        history_count=history,
    )


def _events(first, last, kind="response.output_text.delta"):
    return [
        StoredEvent(s, kind, orjson.dumps({"type": kind, "sequence_number": s}))
        for s in range(first, last + 1)
    ]


def _call(item_id, response_id, call_id, owner="tenant-a", name="get_weather", at=None):
    return ToolCallRecord(
        id=item_id,
        owner=owner,
        response_id=response_id,
        conversation_id=None,
        model="m",
        type="function_call",
        name=name,
        call_id=call_id,
        arguments='{"city":"Paris"}',
        status="completed",
        stored=True,
        created_at=at if at is not None else time.time(),
    )


async def test_migrations_create_exactly_the_tables_module(store: SqlEventStore):
    def diff(conn):
        return compare_metadata(MigrationContext.configure(conn), metadata)

    async with store.reader.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_events_are_hash_chained_across_flushes_and_restarts(
    store: SqlEventStore, database_url: str
):
    audit = SqlAuditStore(store.reader)
    await store.append([AppendBatch("resp_a", 0, -1, _events(0, 2), create=_new("resp_a"))])
    await store.append([AppendBatch("resp_a", 0, 2, _events(3, 5))])
    # A new process knows no chain head: it reads it back.
    restarted = sql_event_store(database_url)
    try:
        await restarted.append([AppendBatch("resp_a", 0, 5, _events(6, 7))])
    finally:
        await restarted.close()
    verdict = await audit.verify(store.audit_key)
    assert (verdict.checked, verdict.broken) == (1, [])


@pytest.mark.parametrize("tamper", ["edit", "remove", "reorder", "truncate"])
async def test_verify_names_a_response_whose_events_were_tampered_with(
    store: SqlEventStore, tamper: str
):
    await store.append(
        [
            AppendBatch("resp_a", 0, -1, _events(0, 4), create=_new("resp_a")),
            AppendBatch("resp_b", 0, -1, _events(0, 4), create=_new("resp_b")),
        ]
    )
    t = response_events.c

    def change(conn):
        where = t.response_id == "resp_b"
        if tamper == "edit":
            conn.execute(update(response_events).where(where, t.seq == 2).values(data=b'{"x":1}'))
        elif tamper == "remove":
            conn.execute(response_events.delete().where(where, t.seq == 1))
        elif tamper == "truncate":
            conn.execute(response_events.delete().where(where, t.seq == 4))
        else:  # swap the stored bytes of two events, hashes left in place
            rows = dict(
                conn.execute(
                    response_events.select()
                    .with_only_columns(t.seq, t.data)
                    .where(where, t.seq.in_((1, 2)))
                ).all()
            )
            conn.execute(update(response_events).where(where, t.seq == 1).values(data=rows[2]))
            conn.execute(update(response_events).where(where, t.seq == 2).values(data=rows[1]))

    await store.write(change)
    verdict = await SqlAuditStore(store.reader).verify(store.audit_key)
    assert verdict.checked == 2
    assert [response_id for response_id, _ in verdict.broken] == ["resp_b"]


async def test_tool_calls_are_written_with_their_events_and_not_when_fenced(stores: Stores):
    store = stores.events
    audit = stores.audit
    await store.append([AppendBatch("resp_a", 0, -1, _events(0, 1), create=_new("resp_a"))])
    fenced = await store.append(
        [AppendBatch("resp_a", 0, 0, _events(1, 2), tool_calls=[_call("fc_x", "resp_a", "c1")])]
    )
    assert fenced == {"resp_a"}
    assert (await audit.tool_calls(ToolCallFilter(), after=None, limit=10))[0] == []
    await store.append(
        [AppendBatch("resp_a", 0, 1, _events(2, 3), tool_calls=[_call("fc_a", "resp_a", "c1")])]
    )
    [row], more = await audit.tool_calls(ToolCallFilter(owner="tenant-a"), after=None, limit=10)
    assert not more
    assert (row["id"], row["call_id"], row["name"], row["has_output"]) == (
        "fc_a",
        "c1",
        "get_weather",
        False,
    )


async def test_an_output_links_to_its_call_once_and_only_for_its_owner(stores: Stores):
    store = stores.events
    audit = stores.audit
    await store.append(
        [
            AppendBatch(
                "resp_a",
                0,
                -1,
                _events(0, 0),
                create=_new("resp_a"),
                tool_calls=[_call("fc_a", "resp_a", "c1")],
            ),
            AppendBatch(
                "resp_o",
                0,
                -1,
                _events(0, 0),
                create=_new("resp_o", owner="tenant-b"),
                tool_calls=[_call("fc_o", "resp_o", "c1", owner="tenant-b")],
            ),
        ]
    )
    now = time.time()
    await store.append(
        [
            AppendBatch(
                "resp_b",
                0,
                -1,
                _events(0, 0),
                create=_new("resp_b"),
                tool_outputs=[ToolOutput("tenant-a", "c1", "20C", "resp_b", now)],
            )
        ]
    )
    # A client resending its whole history sends the same output again: the first one stays.
    await store.append(
        [
            AppendBatch(
                "resp_c",
                0,
                -1,
                _events(0, 0),
                create=_new("resp_c"),
                tool_outputs=[ToolOutput("tenant-a", "c1", "changed", "resp_c", now + 1)],
            )
        ]
    )
    [row], _ = await audit.tool_calls(ToolCallFilter(owner="tenant-a"), after=None, limit=10)
    assert (row["output"], row["output_response_id"]) == ("20C", "resp_b")
    [other], _ = await audit.tool_calls(ToolCallFilter(owner="tenant-b"), after=None, limit=10)
    assert other["output"] is None


async def test_audit_only_rows_for_responses_that_are_not_stored(stores: Stores):
    store = stores.events
    audit = stores.audit
    call = _call("fc_u", "resp_unstored", "cu")
    call.stored = False
    call.arguments = "nul\x00inside"  # PostgreSQL text cannot hold it; the flush must not fail
    await store.append(
        [AppendBatch("resp_unstored", 0, -1, [], tool_calls=[call], audit_only=True)]
    )
    await store.append(
        [
            AppendBatch(
                "resp_x",
                0,
                -1,
                [],
                audit_only=True,
                tool_outputs=[ToolOutput("tenant-a", "cu", "ok", "resp_x", time.time())],
            )
        ]
    )
    [row], _ = await audit.tool_calls(ToolCallFilter(), after=None, limit=10)
    assert (row["stored"], row["output"], row["arguments"]) == (False, "ok", "nul\ufffdinside")
    assert await store.get("resp_unstored") is None


async def test_audit_filters_and_cursor_pages(stores: Stores):
    store = stores.events
    audit = stores.audit
    calls = [
        _call(
            f"fc_{i:02d}",
            "resp_a" if i < 6 else "resp_b",
            f"c{i}",
            name="get_time" if i % 3 == 0 else "get_weather",
            at=1000.0 + i,
        )
        for i in range(10)
    ]
    await store.append(
        [
            AppendBatch(
                "resp_a", 0, -1, _events(0, 0), create=_new("resp_a"), tool_calls=calls[:6]
            ),
            AppendBatch(
                "resp_b",
                0,
                -1,
                _events(0, 0),
                create=_new("resp_b"),
                tool_calls=calls[6:],
                tool_outputs=[ToolOutput("tenant-a", "c1", "x", "resp_b", 2000.0)],
            ),
        ]
    )
    seen, after = [], None
    while True:
        page, more = await audit.tool_calls(ToolCallFilter(owner="tenant-a"), after=after, limit=3)
        seen += [r["id"] for r in page]
        if not more:
            break
        after = page[-1]["id"]
    assert seen == [f"fc_{i:02d}" for i in range(10)]

    async def ids(**where):
        rows, _ = await audit.tool_calls(
            ToolCallFilter(owner="tenant-a", **where), after=None, limit=100
        )
        return [r["id"] for r in rows]

    assert await ids(name="get_time") == ["fc_00", "fc_03", "fc_06", "fc_09"]
    assert await ids(response_id="resp_b") == ["fc_06", "fc_07", "fc_08", "fc_09"]
    assert await ids(has_output=True) == ["fc_01"]
    assert len(await ids(has_output=False)) == 9
    assert await ids(since=1002.0, until=1004.0) == ["fc_02", "fc_03"]
    assert await ids(status="incomplete") == []
    assert await audit.tool_calls(ToolCallFilter(owner="tenant-b"), after=None, limit=5) == (
        [],
        False,
    )
    assert await audit.count(ToolCallFilter(owner="tenant-a", name="get_time")) == 4


async def test_final_output_items_can_be_found_by_their_owner(stores: Stores):
    store = stores.events
    output = [{"id": "msg_out", "type": "message", "role": "assistant", "content": []}]
    await store.append(
        [
            AppendBatch(
                "resp_a",
                0,
                -1,
                _events(0, 0),
                create=_new(
                    "resp_a",
                    items=[{"id": "msg_in", "type": "message", "role": "user", "content": []}],
                ),
            )
        ]
    )
    await store.append(
        [
            AppendBatch(
                "resp_a",
                0,
                0,
                _events(1, 1, "response.completed"),
                final=Final("completed", orjson.dumps({"output": output}), 2),
            )
        ]
    )
    assert orjson.loads(await store.find_item("tenant-a", "msg_out")) == output[0]
    assert orjson.loads(await store.find_item("tenant-a", "msg_in"))["role"] == "user"
    assert await store.find_item("tenant-b", "msg_out") is None
    assert await store.find_item("tenant-a", "msg_nope") is None


async def _conversation(stores, conversation_id="conv_a", owner="tenant-a", items=()):
    conversations = stores.conversations
    await conversations.create(
        ConversationRecord(conversation_id, owner, b"{}", 1, None),
        [(item["id"], orjson.dumps(item)) for item in items],
    )
    return conversations


async def test_a_completed_response_appends_its_new_input_and_output(stores: Stores):
    store = stores.events
    history = [{"id": "msg_h", "type": "message"}]
    conversations = await _conversation(stores, items=history)
    assert await conversations.lock("conv_a", "tenant-a", "resp_a") == "locked"
    assert await conversations.lock("conv_a", "tenant-a", "resp_b") == "busy"
    assert await conversations.lock("conv_a", "tenant-b", "resp_b") == "missing"
    new = [{"id": "msg_new", "type": "message"}]
    await store.append(
        [
            AppendBatch(
                "resp_a",
                0,
                -1,
                _events(0, 0),
                create=_new("resp_a", items=history + new, conversation="conv_a", history=1),
            )
        ]
    )
    output = [{"id": "fc_1", "type": "function_call"}, {"id": "msg_o", "type": "message"}]
    await store.append(
        [
            AppendBatch(
                "resp_a",
                0,
                0,
                _events(1, 1, "response.completed"),
                final=Final("completed", b"{}", 2, output=output, conversation_id="conv_a"),
            )
        ]
    )
    data, more = await conversations.items("conv_a", after=None, limit=10, descending=False)
    assert [orjson.loads(d)["id"] for d in data] == ["msg_h", "msg_new", "fc_1", "msg_o"]
    assert not more
    assert await conversations.lock("conv_a", "tenant-a", "resp_b") == "locked"  # released


async def test_a_failed_response_releases_the_conversation_and_appends_nothing(stores: Stores):
    store = stores.events
    conversations = await _conversation(stores)
    assert await conversations.lock("conv_a", "tenant-a", "resp_a") == "locked"
    await store.append(
        [
            AppendBatch(
                "resp_a",
                0,
                -1,
                _events(0, 0),
                create=_new(
                    "resp_a", items=[{"id": "m", "type": "message"}], conversation="conv_a"
                ),
            )
        ]
    )
    await store.append(
        [
            AppendBatch(
                "resp_a",
                0,
                0,
                _events(1, 1, "response.failed"),
                final=Final("failed", b'{"output":[]}', None, conversation_id="conv_a"),
            )
        ]
    )
    assert await conversations.all_items("conv_a") == []
    assert (await conversations.get("conv_a", "tenant-a")).active_response_id is None


async def test_conversation_items_page_both_ways_and_owners_are_kept_apart(stores: Stores):
    items = [{"id": f"msg_{i}", "type": "message"} for i in range(5)]
    conversations = await _conversation(stores, items=items)
    for descending in (False, True):
        seen, after = [], None
        while True:
            page, more = await conversations.items(
                "conv_a", after=after, limit=2, descending=descending
            )
            seen += [orjson.loads(p)["id"] for p in page]
            if not more:
                break
            after = seen[-1]
        expected = [i["id"] for i in items]
        assert seen == (expected[::-1] if descending else expected)
    assert await conversations.get("conv_a", "tenant-b") is None
    assert await conversations.add_items("conv_a", "tenant-b", [("x", b"{}")]) is False
    assert await conversations.delete("conv_a", "tenant-b") is False
    assert await conversations.delete_item("conv_a", "msg_1") is True
    assert await conversations.item("conv_a", "msg_1") is None
    assert await conversations.delete("conv_a", "tenant-a") is True
    assert await conversations.all_items("conv_a") == []


async def test_a_lock_whose_response_never_started_goes_stale(stores: Stores):
    store = stores.events
    await _conversation(stores)
    if isinstance(store, MemoryEventStore):
        conversations = MemoryConversationStore(store.db, stale_lock_s=0.0)
    else:
        conversations = SqlConversationStore(store, stale_lock_s=0.0)
    assert await conversations.lock("conv_a", "tenant-a", "resp_ghost") == "locked"
    # resp_ghost never got a row (its process died before its first commit): not held forever.
    assert await conversations.lock("conv_a", "tenant-a", "resp_next") == "locked"
    await store.append(
        [AppendBatch("resp_next", 0, -1, _events(0, 0), create=_new("resp_next"))]
    )
    # A holder that is running keeps it, however old the lock.
    assert await conversations.lock("conv_a", "tenant-a", "resp_third") == "busy"
