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
