"""Under load, with short leases (a heartbeat of every running response several times a
second), the writers' flushes, the heartbeats, claims and ends never deadlock in PostgreSQL.
A deadlock is no error a client sees, but PostgreSQL breaks it only after `deadlock_timeout`,
and every stream behind the blocked writer stalls that long; the server's log tells."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from tests.distributed.conftest import start_cluster

RESPONSES = 160
AT_ONCE = 64
FILLER = 20_000


def _words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


async def _fill(database_url: str) -> None:
    """Ended responses, so that the table has a running service's size and PostgreSQL plans as
    it does there: by index, each statement in its own order (in a tiny table every statement
    scans it whole, all in the same order, and nothing crosses)."""
    parts = urlsplit(database_url)
    conn = await asyncpg.connect(
        host=parts.hostname, port=parts.port, user="postgres", database=parts.path.lstrip("/")
    )
    try:
        await conn.execute(
            "INSERT INTO responses (id, owner, status, model, background, request, last_seq, "
            "epoch, cancel_requested, created_at, updated_at, history_count) "
            "SELECT 'resp_' || md5(i::text), 'filler', 'completed', 'm', false, '', 0, 0, "
            "false, $1::bigint, $2::float8, 0 FROM generate_series(1, $3::integer) AS i",
            int(time.time()),
            time.time(),
            FILLER,
        )
        await conn.execute("ANALYZE responses")
    finally:
        await conn.close()


async def _run_all(base_url: str) -> list[dict]:  # type: ignore[type-arg]
    limit = asyncio.Semaphore(AT_ONCE)

    async def one(client: httpx.AsyncClient, index: int) -> dict:  # type: ignore[type-arg]
        async with limit:
            reply = await client.post(
                "/v1/responses", json={"model": "m", "input": f"n{index} " + _words(120)}
            )
            assert reply.status_code == 200, reply.text
            return reply.json()  # type: ignore[no-any-return]

    async with httpx.AsyncClient(base_url=base_url, timeout=300) as client:
        return await asyncio.gather(*(one(client, index) for index in range(RESPONSES)))


@pytest.mark.timeout(600)  # many responses on a loaded machine; nothing here waits on time
def test_many_responses_with_short_leases_never_deadlock(request, tmp_path_factory, redis_server):  # type: ignore[no-untyped-def]
    postgres = request.getfixturevalue("postgres_server")
    log = postgres.root / "log"
    start = log.stat().st_size
    cluster = start_cluster(
        request, tmp_path_factory.mktemp("leases"), redis_server.url, apis=1, workers=0
    )
    try:
        asyncio.run(_fill(cluster.env["DATABASE_URL"]))
        # A lease of 1 s: each worker extends all of its leases every third of a second, while
        # its writer flushes the same rows.
        cluster.args = (*cluster.args, "--lease-s", "1", "--builtin-rate", "400")
        cluster.add_worker("worker-1")
        cluster.add_worker("worker-2")
        results = asyncio.run(_run_all(cluster.apis[0].base_url))
    finally:
        cluster.stop()
    assert [r["status"] for r in results] == ["completed"] * RESPONSES
    with log.open("rb") as server_log:
        server_log.seek(start)
        written = server_log.read().decode(errors="replace")
    assert "deadlock detected" not in written, [
        line for line in written.splitlines() if "deadlock" in line or "DETAIL" in line
    ][:8]
