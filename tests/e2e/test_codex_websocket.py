"""Codex CLI (pinned in tests/clients) over WebSocket mode: a provider that says it supports
WebSockets, so Codex opens /v1/responses as a socket, warms up (`generate: false`) and chains
each request from the last with `previous_response_id` and `store: false`, from the
connection's memory."""

from __future__ import annotations

import json
import os
import subprocess

from tests.e2e.test_codex import _codex, codex_server  # noqa: F401 - the fixture is shared
from tests.support.server import ServerProcess


def test_codex_exec_over_a_websocket(codex_server: ServerProcess, tmp_path):  # noqa: F811
    codex = _codex()
    work, home = tmp_path / "work", tmp_path / "codex-home"
    work.mkdir()
    home.mkdir()
    provider = (
        '{name="local",base_url="' + codex_server.base_url + '/v1",env_key="RESPONSED_TEST_KEY",'
        'wire_api="responses",request_max_retries=0,stream_max_retries=0,'
        "supports_websockets=true}"
    )
    result = subprocess.run(
        [
            str(codex), "exec", "--skip-git-repo-check", "--ephemeral", "--json",
            "--color", "never", "-C", str(work), "-m", "responsed-builtin",
            "-c", "model_provider=local",
            "-c", 'model_reasoning_effort="low"',
            "-c", f"model_providers.local={provider}",
            'Use exec_command {"cmd": "echo responsed-over-a-socket"}',
        ],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180,
        env={**os.environ, "CODEX_HOME": str(home), "RESPONSED_TEST_KEY": "sk-local"},
    )
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    done = [e["item"] for e in events if e["type"] == "item.completed"]
    diagnostics = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}\n{codex_server.log_tail()}"
    assert result.returncode == 0, diagnostics
    assert any(e["type"] == "turn.completed" for e in events), diagnostics
    # It stayed on the socket: no fallback to HTTPS.
    errors = [i["message"] for i in done if i["type"] == "error"]
    assert not any("WebSocket" in message for message in errors), diagnostics
    assert '"WebSocket /v1/responses" [accepted]' in codex_server.log_tail(200), diagnostics
    commands = [i for i in done if i["type"] == "command_execution"]
    assert [c["exit_code"] for c in commands] == [0], diagnostics
    assert "responsed-over-a-socket" in commands[0]["aggregated_output"]
    messages = [i for i in done if i["type"] == "agent_message"]
    assert messages and "responsed-over-a-socket" in messages[-1]["text"], diagnostics
