"""What an append writes besides the events, in the same transaction: the hash chain, the
tool-call audit, the output items of finished responses and their conversation's history.

Each helper issues a constant number of statements per flush (executemany), whatever the
number of events in it; only conversation appends cost statements per finished response.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, insert, select, update

from domain.ports import AppendBatch, Final
from storage.chain import keyed_genesis, keyed_link
from storage.tables import (
    conversation_items,
    conversations,
    response_input_items,
    response_output_items,
    responses,
    tool_calls,
)

Heads = dict[str, tuple[int, bytes]]  # response id -> (seq, hash) of its last stored event
# Statuses whose input and output become part of the conversation.
_APPENDED_STATUSES = ("completed", "incomplete")


def audit_text(value: str) -> str:
    # PostgreSQL text cannot hold NUL; an audit row must never fail the flush it rides in.
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


ReadHeads = Callable[[Connection, Sequence[tuple[str, int]]], dict[str, tuple[int, bytes]]]


def chain(
    conn: Connection,
    read_heads: ReadHeads,
    batches: Sequence[AppendBatch],
    heads: Heads,
    now: float,
    key: bytes,
) -> tuple[list[tuple[Any, ...]], Heads]:
    """The event rows with their hashes, and the new chain heads.

    The head of each response is remembered between flushes; one that is not (after a
    restart, or another process wrote last) is read back in one statement for the flush.
    """
    unknown = [
        b
        for b in batches
        if b.events
        and b.expected_last_seq >= 0
        and heads.get(b.response_id, (None,))[0] != b.expected_last_seq
    ]
    found = read_heads(conn, [(b.response_id, b.expected_last_seq) for b in unknown])
    rows: list[tuple[Any, ...]] = []
    new_heads: Heads = {}
    for b in batches:
        if not b.events:
            continue
        if b.expected_last_seq < 0:
            previous = keyed_genesis(key, b.response_id)
        else:
            head = found.get(b.response_id) or heads.get(b.response_id)  # found: read just now
            # No head at expected_last_seq: the fence will turn this batch away anyway.
            previous = head[1] if head and head[0] == b.expected_last_seq else b""
        for e in b.events:
            previous = keyed_link(key, previous, e.data)
            rows.append((b.response_id, e.seq, e.type, e.data, now, previous))
        new_heads[b.response_id] = (b.last_seq, previous)
    return rows, new_heads


def write_tool_calls(conn: Connection, batches: Sequence[AppendBatch], moved: set[str]) -> None:
    calls = [
        {
            "id": c.id,
            "owner": c.owner,
            "response_id": c.response_id,
            "conversation_id": c.conversation_id,
            "model": c.model,
            "type": c.type,
            "name": audit_text(c.name),
            "call_id": audit_text(c.call_id),
            "arguments": audit_text(c.arguments),
            "status": c.status,
            "stored": c.stored,
            "created_at": c.created_at,
        }
        for b in batches
        if b.audit_only or b.response_id in moved
        for c in b.tool_calls
    ]
    if calls:
        conn.execute(insert(tool_calls), calls)
    outputs = [
        {
            "b_owner": o.owner,
            "b_call_id": audit_text(o.call_id),
            "b_output": audit_text(o.output),
            "b_at": o.at,
            "b_response_id": o.response_id,
        }
        for b in batches
        if b.audit_only or b.response_id in moved
        for o in b.tool_outputs
    ]
    if outputs:
        # The first output sent for a call is the one it got; later resends (clients that send
        # the whole history every turn) change nothing.
        conn.execute(
            update(tool_calls)
            .where(
                tool_calls.c.owner == bindparam("b_owner"),
                tool_calls.c.call_id == bindparam("b_call_id"),
                tool_calls.c.output_at.is_(None),
            )
            .values(
                output=bindparam("b_output"),
                output_at=bindparam("b_at"),
                output_response_id=bindparam("b_response_id"),
            ),
            outputs,
        )


def _output_of(final: Final) -> list[dict[str, Any]]:
    if final.output is not None:
        return final.output
    return list(orjson.loads(final.snapshot).get("output") or [])


def write_finals(conn: Connection, finals: list[tuple[str, Final]], now: float) -> None:
    """Output items of finished responses, and their conversations' new history."""
    outputs = {response_id: _output_of(final) for response_id, final in finals}
    rows = [
        {
            "response_id": rid,
            "position": i,
            "item_id": item.get("id") or "",
            "data": orjson.dumps(item),
        }
        for rid, items in outputs.items()
        for i, item in enumerate(items)
    ]
    if rows:
        conn.execute(insert(response_output_items), rows)
    for response_id, final in finals:
        if final.conversation_id is None:
            continue
        if final.status in _APPENDED_STATUSES:
            _append_to_conversation(
                conn, final.conversation_id, response_id, outputs[response_id], now
            )
        conn.execute(
            update(conversations)
            .where(
                conversations.c.id == final.conversation_id,
                conversations.c.active_response_id == response_id,
            )
            .values(active_response_id=None, locked_at=None)
        )


def _append_to_conversation(
    conn: Connection,
    conversation_id: str,
    response_id: str,
    output: list[dict[str, Any]],
    now: float,
) -> None:
    skip = select(responses.c.history_count).where(responses.c.id == response_id).scalar_subquery()
    new_input = [
        (row[0], bytes(row[1]))
        for row in conn.execute(
            select(response_input_items.c.item_id, response_input_items.c.data)
            .where(
                response_input_items.c.response_id == response_id,
                response_input_items.c.position >= skip,
            )
            .order_by(response_input_items.c.position)
        )
    ]
    items = new_input + [(item.get("id") or "", orjson.dumps(item)) for item in output]
    if items:
        append_items(conn, conversation_id, items, now)


def append_items(
    conn: Connection, conversation_id: str, items: list[tuple[str, bytes]], now: float
) -> bool:
    """Append (item id, JSON) pairs at the conversation's end; False when it is gone."""
    row = conn.execute(
        update(conversations)
        .where(conversations.c.id == conversation_id)
        .values(next_position=conversations.c.next_position + len(items))
        .returning(conversations.c.next_position)
    ).first()
    if row is None:
        return False  # deleted meanwhile: nothing to append to
    start = row[0] - len(items)
    conn.execute(
        insert(conversation_items),
        [
            {
                "conversation_id": conversation_id,
                "position": start + i,
                "item_id": item_id,
                "data": data,
                "created_at": now,
            }
            for i, (item_id, data) in enumerate(items)
        ],
    )
    return True
