"""Codex CLI (pinned in tests/clients) in a multi-turn `codex exec` session that compacts, with
both of its setups:

- the built-in OpenAI provider with `openai_base_url` pointed at responsed: Codex compacts
  remotely (its provider "supports remote compaction"), by ending a normal create's input with
  a `compaction_trigger` item, and carries on from the `compaction` item it gets. That provider
  also supports WebSockets: every request, the compaction included, goes over one socket on
  /v1/responses per `codex exec` (a `response.create` message), none over HTTP;
- a custom provider: Codex compacts locally, asking for a summary with a normal create.

A small `model_auto_compact_token_limit` makes it compact: the built-in engine counts a word as
a token, Codex's own instructions are about 3,100 words, and a 1,000-line command output takes
the first turn past the limit.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_codex import _codex
from tests.support.server import ServerProcess

LIMIT = 3500  # above Codex's first request (about 3,130 words), below it with the output
FIRST = 'Use exec_command {"cmd": "seq 1 1000"}'
SECOND = "Say the session went well"
AFTER_SUMMARY = "I have the summary of our conversation and can go on from there."


@pytest.fixture(scope="module")
def codex_server(tmp_path_factory) -> ServerProcess:  # type: ignore[no-untyped-def]
    workdir = tmp_path_factory.mktemp("codex-compaction")
    server = ServerProcess.start(
        workdir, "--access-log", "true",
        env={"RESPONSED_DATA_DIR": str(workdir / "data"), "DATABASE_URL": ""},
    )
    yield server
    server.stop()


def _counters(server: ServerProcess) -> dict[str, float]:
    text = httpx.get(server.base_url + "/metrics", timeout=10).text
    return {
        kind: float(value)
        for kind, value in re.findall(r"^responsed_compactions_(\w+)_total (\S+)$", text, re.M)
    }


def _exec(server: ServerProcess, home: Path, work: Path, setup: list[str], *prompt: str):  # type: ignore[no-untyped-def]
    result = subprocess.run(
        [
            str(_codex()), "exec", "--skip-git-repo-check", "--json", "--color", "never",
            "-C", str(work), "-m", "responsed-builtin",
            "-c", f"model_auto_compact_token_limit={LIMIT}",
            *setup, *prompt,
        ],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240,
        env={**os.environ, "CODEX_HOME": str(home), "CODEX_API_KEY": "sk-local",
             "OPENAI_API_KEY": "sk-local", "RESPONSED_TEST_KEY": "sk-local"},
    )
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    diagnostics = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}\n{server.log_tail()}"
    assert result.returncode == 0, diagnostics
    assert [e["type"] for e in events].count("turn.completed") == 1, diagnostics
    return events, diagnostics


def _session(server: ServerProcess, tmp_path: Path, setup: list[str]) -> list[list[dict]]:
    """Two turns of one session: the first runs the command, the second resumes it."""
    home, work = tmp_path / "codex-home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    first, diagnostics = _exec(server, home, work, setup, FIRST)
    commands = [e["item"] for e in first if e["type"] == "item.completed"
                and e["item"]["type"] == "command_execution"]
    assert [c["exit_code"] for c in commands] == [0], diagnostics  # run once, not again
    [thread] = [e["thread_id"] for e in first if e["type"] == "thread.started"]
    second, _ = _exec(server, home, work, setup, "resume", thread, SECOND)
    return [first, second]


def _messages(turn: list[dict]) -> list[str]:
    return [e["item"]["text"] for e in turn
            if e["type"] == "item.completed" and e["item"]["type"] == "agent_message"]


def test_codex_compacts_remotely_with_its_openai_provider(codex_server: ServerProcess, tmp_path):
    before = _counters(codex_server)
    log_start = len(codex_server.log_path.read_text(errors="replace"))
    setup = ["-c", f'openai_base_url="{codex_server.base_url}/v1"']
    first, second = _session(codex_server, tmp_path, setup)
    after = _counters(codex_server)
    # The compaction reached the server as a compaction_trigger (Codex's current protocol)...
    assert after["trigger"] - before["trigger"] >= 1, codex_server.log_tail()
    assert after["compact"] == before["compact"]
    # ...over WebSocket mode: the built-in provider supports WebSockets, so each `codex exec`
    # opened one socket on /v1/responses and sent every request over it, never over HTTP.
    log = codex_server.log_path.read_text(errors="replace")[log_start:]
    assert log.count('"WebSocket /v1/responses" [accepted]') == 2, log[-3000:]
    assert '"POST /v1/responses' not in log, log[-3000:]
    # Compacted mid-turn, the summary was the last word; the engine said it could go on.
    assert _messages(first)[-1] == AFTER_SUMMARY
    assert _messages(second) == [SECOND]  # the resumed turn runs on the compacted history


def test_codex_compacts_locally_with_a_custom_provider(codex_server: ServerProcess, tmp_path):
    before = _counters(codex_server)
    provider = (
        '{name="local",base_url="' + codex_server.base_url + '/v1",env_key="RESPONSED_TEST_KEY",'
        'wire_api="responses",request_max_retries=0,stream_max_retries=0}'
    )
    setup = ["-c", "model_provider=local", "-c", f"model_providers.local={provider}"]
    first, second = _session(codex_server, tmp_path, setup)
    # Codex summarised by itself: the server compacted nothing...
    assert _counters(codex_server) == before
    # ...and the turn went on from Codex's own hand-over message (its summary prefix, which
    # the built-in engine echoes as the last user message), not from the command's output.
    last = _messages(first)[-1]
    assert not last.startswith("exec_command returned") and "summary" in last, last
    assert _messages(second) == [SECOND]
