"""`responsed audit verify` against someone who can write the database but lacks the audit key:
each tampering below is made on a live server's store (SQLite and PostgreSQL) and must be named.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from openai import OpenAI
from sqlalchemy import delete, func, select, update

from service.runtime import sql_event_store
from service.settings import Settings
from storage.tables import audit_ledger, response_events, responses
from tests.conftest import BACKENDS
from tests.e2e.conftest import ROOT, _os_env, backend_env
from tests.support.server import ServerProcess

AUDIT_KEY = "audit-secret-for-tests"


@pytest.fixture(scope="module", params=BACKENDS)
def audited(request, tmp_path_factory) -> Iterator[tuple[ServerProcess, dict[str, str]]]:  # type: ignore[no-untyped-def]
    workdir = tmp_path_factory.mktemp("tamper")
    env = {**backend_env(request.param, request, workdir), "RESPONSED_AUDIT_KEY": AUDIT_KEY}
    server = ServerProcess.start(workdir, env=env)
    yield server, env
    server.stop()


def _verify(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "audit", "verify", *args],
        cwd=ROOT, env={**_os_env(), **env}, capture_output=True, text=True, timeout=120,
    )


def _on_store(env: dict[str, str], change: Callable[[Any], Any]) -> Any:
    settings = Settings.from_env(env)

    async def run() -> Any:
        store = sql_event_store(settings.resolved_database_url)
        try:
            return await store.write(change)
        finally:
            await store.close()

    return asyncio.run(run())


def _rehash_unkeyed(conn: Any, response_id: str) -> None:
    """What the old, unkeyed chain allowed: edit an event, then recompute every hash."""
    rows = conn.execute(
        select(response_events.c.seq, response_events.c.data)
        .where(response_events.c.response_id == response_id)
        .order_by(response_events.c.seq)
    ).all()
    previous = hashlib.sha256(b"responsed/events/v1:" + response_id.encode()).digest()
    for seq, data in rows:
        data = bytes(data).replace(b"one", b"ONE")
        previous = hashlib.sha256(previous + data).digest()
        conn.execute(
            update(response_events)
            .where(response_events.c.response_id == response_id, response_events.c.seq == seq)
            .values(data=data, hash=previous)
        )


def _drop_terminal(conn: Any, response_id: str) -> None:
    last = conn.execute(
        select(responses.c.last_seq).where(responses.c.id == response_id)
    ).scalar_one()
    conn.execute(
        delete(response_events)
        .where(response_events.c.response_id == response_id, response_events.c.seq == last)
    )
    conn.execute(update(responses).where(responses.c.id == response_id).values(last_seq=last - 1))


def _delete_whole(conn: Any, response_id: str) -> None:
    conn.execute(delete(response_events).where(response_events.c.response_id == response_id))
    conn.execute(delete(responses).where(responses.c.id == response_id))


def _change_snapshot(conn: Any, response_id: str) -> None:
    snapshot = orjson.loads(
        conn.execute(select(responses.c.snapshot).where(responses.c.id == response_id)).scalar_one()
    )
    snapshot["output"][0]["content"][0]["text"] = "something else entirely"
    conn.execute(
        update(responses).where(responses.c.id == response_id)
        .values(snapshot=orjson.dumps(snapshot))
    )


def _change_status(conn: Any, response_id: str) -> None:
    conn.execute(update(responses).where(responses.c.id == response_id).values(status="failed"))


def test_verify_names_every_tampering_and_accepts_recorded_deletions(audited) -> None:  # type: ignore[no-untyped-def]
    server, env = audited
    client = OpenAI(base_url=server.base_url + "/v1", api_key="sk-test", max_retries=0)
    made = [client.responses.create(model="m", input=f"one two {i}") for i in range(7)]
    assert all(r.status == "completed" for r in made)
    rehashed, truncated, deleted, resnapped, restatused, removed, untouched = (r.id for r in made)
    client.responses.delete(removed)  # a deletion through the API is recorded, not a tampering

    clean = _verify(env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "verified 6 responses" in clean.stdout
    head = next(line for line in clean.stdout.splitlines() if line.startswith("ledger head"))
    anchor = head.split()[-1]

    # Without the key the run must fail: verify never passes on a chain it cannot check.
    keyless = _verify({**env, "RESPONSED_AUDIT_KEY": "some-other-key"})
    assert keyless.returncode == 1

    _on_store(env, lambda conn: _rehash_unkeyed(conn, rehashed))
    _on_store(env, lambda conn: _drop_terminal(conn, truncated))
    _on_store(env, lambda conn: _delete_whole(conn, deleted))
    _on_store(env, lambda conn: _change_snapshot(conn, resnapped))
    _on_store(env, lambda conn: _change_status(conn, restatused))

    broken = _verify(env)
    assert broken.returncode == 1
    lines = {line.split(":")[0]: line for line in broken.stdout.splitlines() if ":" in line}
    assert "does not match its hash" in lines[rehashed]
    assert "terminal" in lines[truncated]
    assert "deleted without a record" in lines[deleted]
    assert "snapshot" in lines[resnapped]
    assert "status" in lines[restatused]
    assert removed not in broken.stdout and untouched not in broken.stdout

    # The head printed earlier, kept outside the database, pins the ledger's length too.
    anchored = _verify(env, "--ledger-head", anchor)
    assert anchored.returncode == 1 and f"ledger head matches {anchor}" in anchored.stdout


def test_the_ledger_tail_is_caught_only_against_a_head_kept_outside(audited) -> None:  # type: ignore[no-untyped-def]
    """The documented limit: the newest endings, removed with their ledger entries, leave no
    trace inside the database; a head kept elsewhere from a later verify still catches it."""
    server, env = audited
    client = OpenAI(base_url=server.base_url + "/v1", api_key="sk-test", max_retries=0)
    latest = client.responses.create(model="m", input="the newest one").id
    before = _verify(env)
    anchor = next(line for line in before.stdout.splitlines()
                  if line.startswith("ledger head")).split()[-1]

    def cut_tail(conn: Any) -> None:
        _delete_whole(conn, latest)
        last = conn.execute(select(func.max(audit_ledger.c.position))).scalar_one()
        conn.execute(delete(audit_ledger).where(audit_ledger.c.position == last))

    _on_store(env, cut_tail)
    unanchored = _verify(env)
    assert latest not in unanchored.stdout
    anchored = _verify(env, "--ledger-head", anchor)
    assert anchored.returncode == 1
    assert f"ledger head {anchor} is not in the ledger" in anchored.stdout
