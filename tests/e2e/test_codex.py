"""Codex CLI (pinned in tests/clients, installed with `npm ci --prefix tests/clients`) runs
`codex exec` against a live server on the built-in engine, to a finished tool round trip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.server import ServerProcess

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
CODEX = CLIENTS / "node_modules" / ".bin" / "codex"


def _codex() -> Path:
    missing = None
    if shutil.which("node") is None:
        missing = "node is not installed"
    elif not CODEX.exists():
        missing = "Codex CLI is not installed: run `npm ci --prefix tests/clients`"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing} (required in CI)")
        pytest.skip(missing)
    return CODEX


@pytest.fixture(scope="module")
def codex_server(tmp_path_factory) -> ServerProcess:  # type: ignore[no-untyped-def]
    workdir = tmp_path_factory.mktemp("codex-server")
    server = ServerProcess.start(workdir, env={"RESPONSED_DATA_DIR": str(workdir / "data"),
                                                "DATABASE_URL": ""})
    yield server
    server.stop()


def test_codex_exec_runs_a_command_through_the_server(codex_server: ServerProcess, tmp_path):
    codex = _codex()
    work = tmp_path / "work"
    work.mkdir()
    home = tmp_path / "codex-home"
    home.mkdir()
    provider = (
        '{name="local",base_url="' + codex_server.base_url + '/v1",env_key="RESPONSED_TEST_KEY",'
        'wire_api="responses",request_max_retries=0,stream_max_retries=0}'
    )
    result = subprocess.run(
        [
            str(codex), "exec", "--skip-git-repo-check", "--ephemeral", "--json",
            "--color", "never", "-C", str(work), "-m", "responsed-builtin",
            "-c", "model_provider=local",
            "-c", 'model_reasoning_effort="low"',  # reasoning items round-trip, sealed
            "-c", f"model_providers.local={provider}",
            'Use exec_command {"cmd": "echo responsed-codex-ok"}',
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "CODEX_HOME": str(home), "RESPONSED_TEST_KEY": "sk-local"},
    )
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    done = [e["item"] for e in events if e["type"] == "item.completed"]
    commands = [i for i in done if i["type"] == "command_execution"]
    messages = [i for i in done if i["type"] == "agent_message"]
    diagnostics = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}\n{codex_server.log_tail()}"
    assert result.returncode == 0, diagnostics
    assert any(e["type"] == "turn.completed" for e in events), diagnostics
    assert [c["exit_code"] for c in commands] == [0], diagnostics
    assert "responsed-codex-ok" in commands[0]["aggregated_output"]
    assert messages and "responsed-codex-ok" in messages[-1]["text"], diagnostics

    # store:false responses keep nothing, but the audit records the call and its output.
    reply = httpx.get(codex_server.base_url + "/v1/audit/tool_calls",
                      params={"name": "exec_command"}, timeout=10)
    [row] = reply.json()["data"]
    assert json.loads(row["arguments"]) == {"cmd": "echo responsed-codex-ok"}
    assert row["stored"] is False and "responsed-codex-ok" in row["output"]
