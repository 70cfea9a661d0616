"""Retention against live servers: the periodic purge, `responsed purge`, running responses
left alone, and a store whose size stays flat under a soak of short-lived responses."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from storage.database import WAL_SIZE_LIMIT
from tests.conftest import BACKENDS
from tests.e2e.conftest import backend_env
from tests.support.keys import responsed
from tests.support.server import ServerProcess


def _wait_gone(http: httpx.Client, ids: list[str], attempts: int = 300) -> None:
    """Poll until every id answers 404 (the purge runs every 0.2 s with a 1 s TTL)."""
    pending = list(ids)
    for _ in range(attempts):
        pending = [i for i in pending if http.get(f"/v1/responses/{i}").status_code != 404]
        if not pending:
            return
        time.sleep(0.05)
    pytest.fail(f"{len(pending)} expired responses were never purged")


def _store_size(data: Path) -> tuple[int, int, int]:
    """(bytes of the database file, bytes of its WAL, pages holding data)."""
    path = data / "responsed.db"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return path.stat().st_size, (data / "responsed.db-wal").stat().st_size, pages - free


def _settled_size(http: httpx.Client, data: Path) -> tuple[int, int, int]:
    """The size once the WAL has been checkpointed and restarted, which needs a quiet moment
    and then a write: one short response that expires in turn (a few tries at most)."""
    for _ in range(5):
        size = _store_size(data)
        if size[1] <= WAL_SIZE_LIMIT:
            break
        reply = http.post("/v1/responses", json={"model": "m", "input": "settle"})
        _wait_gone(http, [reply.json()["id"]])
    return _store_size(data)


def test_store_size_stays_flat_under_a_soak_of_short_lived_responses(tmp_path: Path):
    data = tmp_path / "data"
    server = ServerProcess.start(
        tmp_path, "--data-dir", str(data), "--response-ttl-s", "1", "--purge-interval-s", "0.2",
        "--purge-batch", "50",
    )
    rounds, per_round = 6, 60
    sizes: list[tuple[int, int, int]] = []
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            prompt = " ".join(f"word{i}" for i in range(200))
            for _ in range(rounds):
                ids = []
                for _ in range(per_round):
                    reply = http.post("/v1/responses", json={"model": "m", "input": prompt})
                    assert reply.status_code == 200
                    ids.append(reply.json()["id"])
                _wait_gone(http, ids)
                sizes.append(_settled_size(http, data))
    finally:
        server.stop()
    # 360 responses of about 200 events each went through; what stays on disk is bounded by
    # what one round holds, however many rounds run.
    database, _, pages = sizes[0]
    assert all(p <= pages + 16 for _, _, p in sizes), sizes  # nothing is left behind
    assert all(d <= 1.25 * max(database, sizes[1][0]) for d, _, _ in sizes), sizes  # reused
    assert all(w <= WAL_SIZE_LIMIT for _, w, _ in sizes), sizes  # the log shrinks back


def test_running_responses_outlive_their_ttl(tmp_path: Path):
    server = ServerProcess.start(
        tmp_path, "--data-dir", str(tmp_path / "data"), "--response-ttl-s", "1",
        "--purge-interval-s", "0.2", "--builtin-rate", "20",
    )
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            slow = http.post("/v1/responses", json={
                "model": "m", "input": " ".join(f"w{i}" for i in range(400)),
                "background": True}).json()
            quick = http.post("/v1/responses", json={"model": "m", "input": "x"}).json()
            assert quick["created_at"] >= slow["created_at"]
            _wait_gone(http, [quick["id"]])
            # The purge that took the younger, finished one passed the running one over.
            running = http.get(f"/v1/responses/{slow['id']}").json()
            assert running["status"] in ("queued", "in_progress")
            items = http.get(f"/v1/responses/{slow['id']}/input_items").json()
            assert len(items["data"]) == 1
            with http.stream("GET", f"/v1/responses/{slow['id']}?stream=true") as stream:
                first = next(stream.iter_lines())
                assert first == "id: 0"
            cancelled = http.post(f"/v1/responses/{slow['id']}/cancel").json()
            assert cancelled["status"] == "cancelled"
            _wait_gone(http, [slow["id"]])  # ended, and long expired: it goes now
    finally:
        server.stop()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_purge_command(backend: str, request: pytest.FixtureRequest, tmp_path: Path):
    env = backend_env(backend, request, tmp_path)
    server = ServerProcess.start(tmp_path, "--builtin-rate", "20", env=env)
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            done = [http.post("/v1/responses", json={"model": "m", "input": "x"}).json()["id"]
                    for _ in range(3)]
            slow = http.post("/v1/responses", json={
                "model": "m", "input": " ".join(f"w{i}" for i in range(4000)),
                "background": True}).json()["id"]
            # Once a second has passed the three are over a 1 s TTL; the running one never is
            # (200 s of reply at 20 tokens/s: it still runs however slowly the purges start).
            for _ in range(100):
                out = responsed(env, "purge", "--response-ttl-s", "1", "--purge-batch", "2")
                if "purged 0 " not in out.stdout:
                    break
                time.sleep(0.1)
            assert "purged 3 responses" in out.stdout, out.stdout
            for response_id in done:
                assert http.get(f"/v1/responses/{response_id}").status_code == 404
            assert http.get(f"/v1/responses/{slow}").json()["status"] in ("queued", "in_progress")
            assert "purged 0 responses" in responsed(
                env, "purge", "--response-ttl-s", "1").stdout
            http.post(f"/v1/responses/{slow}/cancel")
    finally:
        server.stop()
