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


def _store_size(data: Path) -> tuple[int, int, int, int, int]:
    """(bytes of the database file, bytes of its WAL, pages holding data, rows left of
    responses and their events and items, audit ledger entries)."""
    path = data / "responsed.db"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        rows = sum(
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("responses", "response_events", "response_input_items",
                          "response_output_items")
        )
        ledger = conn.execute("SELECT count(*) FROM audit_ledger").fetchone()[0]
    wal = (data / "responsed.db-wal").stat().st_size
    return path.stat().st_size, wal, pages - free, rows, ledger


def _purge_all(env: dict[str, str], http: httpx.Client, ids: list[str]) -> None:
    """Purge everything that has ended, now, until every id answers 404."""
    for _ in range(50):
        responsed(env, "purge", "--response-ttl-s", "0.000001")
        if all(http.get(f"/v1/responses/{i}").status_code == 404 for i in ids):
            return
    pytest.fail("ended responses outlived a purge with a TTL of a microsecond")


def _settled_size(
    env: dict[str, str], http: httpx.Client, data: Path
) -> tuple[int, int, int, int, int]:
    """The size once the WAL has been checkpointed and restarted. That needs a pass of the
    checkpointer and then a write at a quiet moment: wait for the condition (one short response
    written and purged per try), however long a loaded machine takes to get there."""
    for _ in range(60):
        size = _store_size(data)
        if size[1] <= WAL_SIZE_LIMIT:
            return size
        time.sleep(0.6)  # one checkpointer pass (0.5 s)
        reply = http.post("/v1/responses", json={"model": "m", "input": "settle"})
        _purge_all(env, http, [reply.json()["id"]])
    return _store_size(data)


def test_store_size_stays_flat_under_a_soak_of_short_lived_responses(tmp_path: Path):
    """What the design promises, in terms that do not depend on the machine's speed: every
    round leaves no rows behind, the pages it freed are reused by the next round, and the file
    stays bounded by the most responses alive at once. That peak is fixed here (each round's
    responses all exist before one purge takes them), not left to how fast a busy machine runs
    the periodic purge."""
    data = tmp_path / "data"
    env = {"RESPONSED_DATA_DIR": str(data), "DATABASE_URL": ""}
    server = ServerProcess.start(
        tmp_path, "--data-dir", str(data), "--purge-interval-s", "0", env=env,
    )
    rounds, per_round = 6, 60
    sizes: list[tuple[int, int, int, int, int]] = []
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            prompt = " ".join(f"word{i}" for i in range(200))
            for _ in range(rounds):
                ids = []
                for _ in range(per_round):
                    reply = http.post("/v1/responses", json={"model": "m", "input": prompt})
                    assert reply.status_code == 200
                    ids.append(reply.json()["id"])
                _purge_all(env, http, ids)
                sizes.append(_settled_size(env, http, data))
    finally:
        server.stop()
    # 360 responses of about 200 events each went through, at most 61 alive at once.
    assert all(rows == 0 for *_, rows, _ in sizes), sizes  # nothing is left behind
    database, _, pages, _, entries = sizes[0]
    # Freed pages are reused: what grows is the audit ledger alone, by design (an end and a
    # purge recorded per response, under 256 bytes each with its index), not the events.
    assert all(p <= pages + 16 + (e - entries) * 256 // 4096 for _, _, p, _, e in sizes), sizes
    assert all(e > entries for *_, e in sizes[1:]), sizes
    assert all(d <= 1.25 * database for d, *_ in sizes), sizes  # bounded by the peak
    assert all(w <= WAL_SIZE_LIMIT for _, w, *_ in sizes), sizes  # the log shrinks back


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


def test_idle_conversations_are_purged_by_a_live_server(tmp_path: Path):
    server = ServerProcess.start(
        tmp_path, "--data-dir", str(tmp_path / "data"), "--conversation-ttl-s", "1",
        "--purge-interval-s", "0.2",
    )
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            conversation = http.post("/v1/conversations", json={"items": [
                {"type": "message", "role": "user", "content": "remember me"}]}).json()
            assert http.get(f"/v1/conversations/{conversation['id']}").status_code == 200
            for _ in range(300):
                if http.get(f"/v1/conversations/{conversation['id']}").status_code == 404:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("an idle conversation outlived its TTL")
            assert http.get(f"/v1/conversations/{conversation['id']}/items").status_code == 404
    finally:
        server.stop()
