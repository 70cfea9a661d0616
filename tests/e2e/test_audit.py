"""The tool-call audit end to end: a tool loop through the SDK, the audit endpoint, and the
`responsed audit` commands on the server's database, before and after an event is edited."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI
from sqlalchemy import update

from service.runtime import sql_event_store
from service.settings import Settings
from storage.tables import response_events
from tests.conftest import BACKENDS
from tests.e2e.conftest import ROOT, _os_env, backend_env
from tests.support.server import ServerProcess

TOOL = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {
    "key": {"type": "string"}}, "required": ["key"]}}


@pytest.fixture(scope="module", params=BACKENDS)
def audited(request, tmp_path_factory) -> Iterator[tuple[ServerProcess, dict[str, str]]]:  # type: ignore[no-untyped-def]
    workdir = tmp_path_factory.mktemp("audit")
    env = backend_env(request.param, request, workdir)
    server = ServerProcess.start(workdir, env=env)
    yield server, env
    server.stop()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "audit", *args],
        cwd=ROOT, env={**_os_env(), **env}, capture_output=True, text=True, timeout=60,
    )


def _edit_event(env: dict[str, str], response_id: str, seq: int) -> None:
    settings = Settings.from_env(env)

    async def edit() -> None:
        store = sql_event_store(settings.resolved_database_url)
        try:
            def change(conn):  # type: ignore[no-untyped-def]
                conn.execute(
                    update(response_events)
                    .where(response_events.c.response_id == response_id,
                           response_events.c.seq == seq)
                    .values(data=b'{"type":"response.output_text.delta","edited":true}')
                )
            await store.write(change)
        finally:
            await store.close()

    asyncio.run(edit())


def test_audit_lists_calls_and_verify_catches_an_edited_event(audited, tmp_path: Path):
    server, env = audited
    client = OpenAI(base_url=server.base_url + "/v1", api_key="sk-test", max_retries=0)
    first = client.responses.create(model="m", input='lookup {"key": "alpha"}', tools=[TOOL])
    [call] = first.output
    second = client.responses.create(
        model="m", previous_response_id=first.id, tools=[TOOL],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "beta"}],
    )
    assert second.output_text == "lookup returned: beta"
    untouched = client.responses.create(model="m", input="nothing to see")

    reply = httpx.get(server.base_url + "/v1/audit/tool_calls",
                      params={"name": "lookup", "has_output": "true"}, timeout=10)
    [row] = reply.json()["data"]
    assert (row["response_id"], row["call_id"], row["output"]) == (first.id, call.call_id, "beta")
    bad = httpx.get(server.base_url + "/v1/audit/tool_calls", params={"has_output": "maybe"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "has_output"

    verified = _cli(env, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "verified 3 responses" in verified.stdout

    out = tmp_path / "calls.jsonl"
    exported = _cli(env, "export", "--output", str(out), "--name", "lookup")
    assert exported.returncode == 0, exported.stderr
    [line] = out.read_text().splitlines()
    assert json.loads(line)["call_id"] == call.call_id
    to_stdout = _cli(env, "export", "--has-output", "false")
    assert to_stdout.returncode == 0 and to_stdout.stdout == ""

    _edit_event(env, second.id, 3)
    broken = _cli(env, "verify")
    assert broken.returncode == 1
    assert second.id in broken.stdout and "event 3" in broken.stdout
    assert first.id not in broken.stdout and untouched.id not in broken.stdout
