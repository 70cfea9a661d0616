"""A database outage: the test's own PostgreSQL stopped with `pg_ctl stop -m fast` under an
embedded server. What cannot be served is a 503 with Retry-After (the SDKs retry it); what can
(store:false creates, health) is still served; everything works again once it is back."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import PostgresServer, find_pg_bin
from tests.support.server import ServerProcess

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    if find_pg_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is required in CI but is not installed")
        pytest.skip("PostgreSQL is not installed")
    server = PostgresServer.start()
    yield server
    server.stop()


def test_a_database_outage_answers_503_with_retry_after(own_postgres, tmp_path):  # type: ignore[no-untyped-def]
    url = asyncio.run(own_postgres.create_database("outage"))
    env = {"DATABASE_URL": url}
    subprocess.run([sys.executable, "-m", "cli.main", "migrate"], check=True, cwd=ROOT,
                   env={**os.environ, **env}, capture_output=True)
    server = ServerProcess.start(tmp_path, "--builtin-rate", "0", env=env)
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            stored = client.post("/v1/responses", json={"model": "m", "input": "kept"}).json()
            conversation = client.post("/v1/conversations", json={}).json()
            own_postgres.stop_fast()
            rid = stored["id"]
            cannot = {
                "create": client.post("/v1/responses", json={"model": "m", "input": "x"}),
                "create stream": client.post(
                    "/v1/responses", json={"model": "m", "input": "x", "stream": True}
                ),
                "retrieve": client.get(f"/v1/responses/{rid}"),
                "resume": client.get(f"/v1/responses/{rid}", params={"stream": "true"}),
                "input items": client.get(f"/v1/responses/{rid}/input_items"),
                "delete": client.delete(f"/v1/responses/{rid}"),
                "cancel": client.post(f"/v1/responses/{rid}/cancel"),
                "conversation": client.get(f"/v1/conversations/{conversation['id']}"),
                "conversation items": client.get(f"/v1/conversations/{conversation['id']}/items"),
                "previous_response_id": client.post(
                    "/v1/responses",
                    json={"model": "m", "input": "x", "store": False,
                          "previous_response_id": rid},
                ),
                "readyz": client.get("/readyz"),
            }
            for name, reply in cannot.items():
                assert reply.status_code == 503, (name, reply.status_code, reply.text[:300])
                assert int(reply.headers["retry-after"]) >= 1, name
                if name != "readyz":
                    error = reply.json()["error"]
                    assert error["type"] == "server_error" and error["code"] == (
                        "service_unavailable"), (name, error)
            # Served without the database: a store:false create, streaming or not; liveness.
            unstored = client.post(
                "/v1/responses", json={"model": "m", "input": "no database", "store": False}
            )
            assert unstored.status_code == 200, unstored.text
            assert unstored.json()["output"][0]["content"][0]["text"] == "no database"
            streamed = client.post(
                "/v1/responses",
                json={"model": "m", "input": "no db stream", "store": False, "stream": True},
            )
            assert streamed.status_code == 200 and b"response.completed" in streamed.content
            assert client.get("/healthz").status_code == 200
            own_postgres.start_again()
            deadline = time.monotonic() + 30
            while client.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "never ready again"
                time.sleep(0.2)
            assert client.get(f"/v1/responses/{rid}").json()["status"] == "completed"
            again = client.post("/v1/responses", json={"model": "m", "input": "back again"})
            assert again.status_code == 200 and again.json()["status"] == "completed"
        # Each was a dependency outage, logged as one line, not a bug's traceback.
        assert "unhandled error" not in server.log_path.read_text()
    finally:
        server.stop()


# -- streams riding out a database outage ------------------------------------------------------
STREAMS = 24
OUTAGE_S = 4.0  # how long PostgreSQL stays down: longer than the keep-alive, shorter than the limit


def _sse_events(lines: list[str]) -> list[tuple[str | None, str, str]]:
    """(id, event, data) of each frame; comments (keep-alives) and [DONE] left out."""
    events, current = [], {}
    for line in lines:
        if not line:
            if "data" in current and current["data"] != "[DONE]":
                events.append((current.get("id"), current.get("event", ""), current["data"]))
            current = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            current[name] = value
    return events


async def _open_stream(client: httpx.AsyncClient, index: int, started: asyncio.Event,
                       counter: list[int]) -> dict[str, object]:
    words = " ".join(f"w{index}x{i}" for i in range(160))
    lines: list[str] = []
    torn: str | None = None
    seen_delta = False
    try:
        async with client.stream(
            "POST", "/v1/responses", json={"model": "m", "input": words, "stream": True}
        ) as reply:
            assert reply.status_code == 200, await reply.aread()
            async for line in reply.aiter_lines():
                lines.append(line)
                if not seen_delta and line.startswith("event: response.output_text.delta"):
                    seen_delta = True
                    counter[0] += 1
                    if counter[0] == STREAMS:
                        started.set()
    except httpx.HTTPError as error:  # a torn connection: incomplete chunked read and the like
        torn = f"{type(error).__name__}: {error}"
    if not seen_delta:  # never got going: do not hold the others back
        counter[0] += 1
        if counter[0] == STREAMS:
            started.set()
    return {"lines": lines, "torn": torn, "done": "data: [DONE]" in lines}


async def _streams_through_an_outage(base_url: str, postgres: PostgresServer) -> list[dict]:
    limits = httpx.Limits(max_connections=STREAMS + 4)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        started = asyncio.Event()
        counter = [0]
        tasks = [asyncio.create_task(_open_stream(client, i, started, counter))
                 for i in range(STREAMS)]
        await asyncio.wait_for(started.wait(), 60)
        await asyncio.to_thread(postgres.stop_fast)
        await asyncio.sleep(OUTAGE_S)
        await asyncio.to_thread(postgres.start_again)
        # Generous: a stream that hangs instead of ending fails here, not at the suite's timeout.
        _done, hanging = await asyncio.wait(tasks, timeout=150)
        for task in hanging:
            task.cancel()
        assert not hanging, f"{len(hanging)} of {STREAMS} streams never ended"
        results = [task.result() for task in tasks]
        for result in results:
            events = _sse_events(result["lines"])  # type: ignore[arg-type]
            result["events"] = events
            created = [e for e in events if e[1] == "response.created"]
            # The stored log of each stream that ended whole (a torn one fails the test anyway,
            # and its response may never end).
            if created and result["done"] and not result["torn"]:
                rid = orjson_loads(created[0][2])["response"]["id"]
                stored = await client.get(f"/v1/responses/{rid}", params={"stream": "true"})
                result["stored"] = _sse_events(stored.text.split("\n"))
        return results


def orjson_loads(text: str) -> dict:
    import json

    return json.loads(text)


@pytest.mark.timeout(400)
def test_streams_ride_out_a_database_restart(own_postgres, tmp_path):  # type: ignore[no-untyped-def]
    """Every open stream continues once PostgreSQL is back: each event exactly once, in order,
    the same as the stored log, ending with its terminal event; no connection torn."""
    url = asyncio.run(own_postgres.create_database("outage_streams"))
    env = {"DATABASE_URL": url}
    subprocess.run([sys.executable, "-m", "cli.main", "migrate"], check=True, cwd=ROOT,
                   env={**os.environ, **env}, capture_output=True)
    server = ServerProcess.start(tmp_path, "--builtin-rate", "40", "--keepalive-s", "1", env=env)
    try:
        results = asyncio.run(_streams_through_an_outage(server.base_url, own_postgres))
        torn = [r["torn"] for r in results if r["torn"] or not r["done"]]
        assert not torn, (len(torn), torn[:3], server.log_tail())
        for result in results:
            events = result["events"]
            assert events and events[-1][1] == "response.completed", events[-3:]
            seqs = [int(e[0]) for e in events]  # type: ignore[arg-type]
            assert seqs == list(range(len(seqs))), seqs  # exactly once, in order
            assert events == result["stored"]  # what was streamed is what was stored
    finally:
        server.stop()
