"""Migration 0002 on a database that already holds 0001 data: events get chained."""

import uuid

import orjson
import pytest
from sqlalchemy import column, insert, table

from service.runtime import sql_event_store
from storage.audit_store import SqlAuditStore
from storage.database import sqlite_url
from storage.migrate import upgrade
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
        assert await SqlAuditStore(store.reader).verify() == (2, [])
    finally:
        await store.close()
