"""Migration 0002 on a database that already holds 0001 data: events get chained."""

import uuid

import orjson
import pytest
from sqlalchemy import column, insert, select, table

from service.runtime import sql_event_store
from storage.audit_store import SqlAuditStore
from storage.chain import genesis, link
from storage.database import sqlite_url
from storage.migrate import upgrade
from storage.tables import response_events
from tests.conftest import BACKENDS


@pytest.mark.parametrize("backend", BACKENDS)
async def test_upgrade_chains_events_stored_before_it(backend, request, tmp_path):
    if backend == "sqlite":
        url = sqlite_url(tmp_path)
    else:
        url = await request.getfixturevalue("postgres_server").create_database(
            f"m_{uuid.uuid4().hex[:12]}"
        )
    await upgrade(url, "0001")
    old = sql_event_store(url)
    row = {
        "owner": "o",
        "status": "completed",
        "model": "m",
        "background": False,
        "request": b"{}",
        "last_seq": 2,
        "epoch": 0,
        "cancel_requested": False,
        "created_at": 1,
        "updated_at": 1.0,
    }
    # The 0001 columns only: the tables module describes the schema after 0002.
    old_responses = table("responses", column("id"), *(column(name) for name in row))
    old_events = table(
        "response_events",
        *(column(name) for name in ("response_id", "seq", "type", "data", "created_at")),
    )

    def seed(conn):
        for rid in ("resp_a", "resp_b"):
            conn.execute(insert(old_responses).values(id=rid, **row))
            conn.execute(
                insert(old_events),
                [
                    {
                        "response_id": rid,
                        "seq": s,
                        "type": "t",
                        "created_at": 1.0,
                        "data": orjson.dumps({"sequence_number": s}),
                    }
                    for s in range(3)
                ],
            )

    await old.write(seed)
    await old.close()
    await upgrade(url)
    store = sql_event_store(url)
    try:
        # Migration 0002 wrote the first, unkeyed chain; the keyed verify names such responses
        # as not chained under the audit key (docs/audit.md), one reason each.
        verdict = await SqlAuditStore(store.reader).verify(b"any key")
        assert verdict.checked == 2
        assert [reason for _, reason in verdict.broken] == [
            "event 0 does not match its hash under the audit key"] * 2
        async with store.reader.connect() as conn:
            rows = (await conn.execute(
                select(response_events.c.response_id, response_events.c.data,
                       response_events.c.hash).order_by(response_events.c.response_id,
                                                        response_events.c.seq))).all()
        heads: dict[str, bytes] = {}
        for response_id, data, stored in rows:
            heads[response_id] = link(heads.get(response_id) or genesis(response_id), bytes(data))
            assert bytes(stored) == heads[response_id]
    finally:
        await store.close()
