"""`responsed tail` and `responsed show` in a pseudo-terminal (pexpect) against a live server
that requires keys: text shows as it streams, tool calls as they happen, and tail exits when
the response ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pexpect
import pytest

from tests.e2e.conftest import ROOT, backend_env
from tests.support.keys import create_key
from tests.support.server import ServerProcess

ENDLESS = " ".join(f"w{i}" for i in range(20_000))  # minutes at the rate below: ends by cancel
TOOL = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}
WAIT_S = 60


@pytest.fixture(scope="module")
def live(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[tuple[ServerProcess, str]]:  # type: ignore[no-untyped-def]
    workdir: Path = tmp_path_factory.mktemp("tail")
    env = backend_env("sqlite", request, workdir)
    key = create_key(env, "a")
    server = ServerProcess.start(workdir, "--auth", "required", "--builtin-rate", "100",
                                 "--keepalive-s", "1", env=env)
    yield server, key
    server.stop()


def _spawn(server: ServerProcess, key: str, *args: str) -> pexpect.spawn:
    env = {**os.environ, "RESPONSED_URL": server.base_url, "RESPONSED_API_KEY": key}
    return pexpect.spawn(sys.executable, ["-m", "cli.main", *args], cwd=str(ROOT), env=env,
                         encoding="utf-8", timeout=WAIT_S, dimensions=(40, 200))


def _http(server: ServerProcess, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"},
                        timeout=30)


def test_tail_shows_text_as_it_streams_and_exits_at_the_end(live):  # type: ignore[no-untyped-def]
    server, key = live
    with _http(server, key) as http:
        running = http.post("/v1/responses", json={
            "model": "m", "input": ENDLESS, "background": True}).json()
        tail = _spawn(server, key, "tail", running["id"])
        tail.expect(running["id"])
        tail.expect(r"w0 w1 w2 ")
        tail.expect(r"w150 ")  # still coming in: the response runs until it is cancelled
        assert http.get(f"/v1/responses/{running['id']}").json()["status"] == "in_progress"
        assert tail.isalive()
        http.post(f"/v1/responses/{running['id']}/cancel")
        tail.expect(r"\[cancelled\] " + running["id"])
        tail.expect(pexpect.EOF)
        tail.close()
        assert tail.exitstatus == 1  # ended, but not completed

        called = http.post("/v1/responses", json={
            "model": "m", "input": 'lookup {"key": "alpha"}', "tools": [TOOL]}).json()
    tail = _spawn(server, key, "tail", called["id"])
    tail.expect(r"-> tool call lookup\(\{\"key\": \"alpha\"\}\)")
    tail.expect(r"\[completed\] " + called["id"] + r" · \d+ in, \d+ out, \d+ total tokens")
    tail.expect(pexpect.EOF)
    tail.close()
    assert tail.exitstatus == 0
    # From a cursor: only what follows it.
    tail = _spawn(server, key, "tail", called["id"], "--after", "5")
    output = tail.read()
    tail.close()
    assert "[completed]" in output and called["id"] + " ·" not in output.split("[completed]")[0]


def test_tail_new_follows_each_new_response(live):  # type: ignore[no-untyped-def]
    server, key = live
    tail = _spawn(server, key, "tail", "--new")
    tail.expect("following new responses")
    with _http(server, key) as http:
        first = http.post("/v1/responses", json={"model": "m", "input": "first words"}).json()
        tail.expect(first["id"][:17] + "… first words")
        tail.expect(r"\[completed\] " + first["id"])
        second = http.post("/v1/responses", json={"model": "m", "input": "second words",
                                                  "background": True}).json()
        tail.expect(r"\[completed\] " + second["id"])
    tail.sendintr()
    tail.expect(pexpect.EOF)
    tail.close()


def test_show_prints_the_response_and_its_log(live):  # type: ignore[no-untyped-def]
    server, key = live
    with _http(server, key) as http:
        done = http.post("/v1/responses", json={"model": "m", "input": "show me"}).json()
    env = {**os.environ, "RESPONSED_URL": server.base_url, "RESPONSED_API_KEY": key}

    def show(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli.main", "show", *args], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=60)

    human = show(done["id"])
    assert human.returncode == 0, human.stderr
    assert "output show me" in human.stdout and "response.completed" in human.stdout
    machine = show(done["id"], "--json")
    document = json.loads(machine.stdout)
    assert document["response"] == done and document["tenant"] == "a"
    assert [e["sequence_number"] for e in document["events"]] == list(
        range(len(document["events"])))
    assert document["input_items"][0]["content"][0]["text"] == "show me"
    missing = show("resp_unknown")
    assert missing.returncode == 2 and "not found" in missing.stderr
    no_key = show(done["id"], "--api-key", "")
    assert no_key.returncode == 2 and "API key" in no_key.stderr
