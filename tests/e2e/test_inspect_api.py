"""The inspector's API end to end (SQLite and PostgreSQL): GET /v1/responses with its filters and
cursor pages, a response's event log page by page and followed live, chain checks, activity,
and the tenant rules (a tenant sees only its own, an admin sees all and filters by tenant)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKENDS
from tests.e2e.conftest import backend_env
from tests.support.keys import create_key
from tests.support.server import ServerProcess

TOOL = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}
LONG_INPUT = " ".join(f"w{i}" for i in range(400))  # about 1 s at the rate below


@dataclass
class Keys:
    server: ServerProcess
    alice: str
    bob: str
    admin: str

    def http(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.server.base_url,
                            headers={"Authorization": f"Bearer {key}"}, timeout=30)


@pytest.fixture(scope="module", params=BACKENDS)
def keys(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Keys]:  # type: ignore[no-untyped-def]
    workdir: Path = tmp_path_factory.mktemp("inspect")
    env = backend_env(request.param, request, workdir)
    made = [create_key(env, "a"), create_key(env, "b"), create_key(env, "ops", admin=True)]
    server = ServerProcess.start(workdir, "--auth", "required", "--builtin-rate", "400",
                                 "--keepalive-s", "1", env=env)
    yield Keys(server, *made)
    server.stop()


def _ids(reply: httpx.Response) -> list[str]:
    assert reply.status_code == 200, reply.text
    return [r["id"] for r in reply.json()["data"]]


def test_list_filters_pages_and_tenants(keys: Keys):
    with keys.http(keys.alice) as alice, keys.http(keys.bob) as bob, \
            keys.http(keys.admin) as admin:
        # created_at is in whole seconds (ties go by id): one second apart, the order is known.
        plain = alice.post("/v1/responses", json={"model": "m-one", "input": "zebra crossing"})
        time.sleep(1.05)
        called = alice.post("/v1/responses", json={
            "model": "m-two", "input": 'lookup {"key": "k"}', "tools": [TOOL]}).json()
        time.sleep(1.05)
        follow_up = alice.post("/v1/responses", json={
            "model": "m-two", "previous_response_id": called["id"], "tools": [TOOL],
            "input": [{"type": "function_call_output", "call_id": called["output"][-1]["call_id"],
                       "output": "v"}]}).json()
        theirs = bob.post("/v1/responses", json={"model": "m-one", "input": "bob only"}).json()
        plain = plain.json()
        mine = [follow_up["id"], called["id"], plain["id"]]

        assert _ids(alice.get("/v1/responses")) == mine  # newest first
        assert _ids(alice.get("/v1/responses", params={"order": "asc"})) == mine[::-1]
        assert _ids(bob.get("/v1/responses")) == [theirs["id"]]
        assert alice.get("/v1/responses").json()["data"][2] == plain  # the stored Response
        # Cursor pages: one at a time, nothing repeated or skipped.
        seen, after = [], None
        while True:
            page = alice.get("/v1/responses", params={"limit": 1, **(
                {"after": after} if after else {})}).json()
            seen += [r["id"] for r in page["data"]]
            if not page["has_more"]:
                break
            after = page["last_id"]
        assert seen == mine
        # Filters.
        assert _ids(alice.get("/v1/responses", params={"model": "m-two"})) == mine[:2]
        assert _ids(alice.get("/v1/responses", params={"has_tool_calls": "true"})) == [
            called["id"]]
        assert _ids(alice.get("/v1/responses", params={"has_tool_calls": "false"})) == [
            follow_up["id"], plain["id"]]
        assert _ids(alice.get("/v1/responses", params={"q": "ZEBRA"})) == [plain["id"]]
        assert _ids(alice.get("/v1/responses", params={"q": "lookup returned"})) == [
            follow_up["id"]]  # text in the output
        assert _ids(alice.get("/v1/responses", params={"q": "50%_"})) == []
        assert _ids(alice.get("/v1/responses", params={
            "previous_response_id": called["id"]})) == [follow_up["id"]]
        assert _ids(alice.get("/v1/responses", params={"status": "completed"})) == mine
        assert _ids(alice.get("/v1/responses", params={"status": "failed"})) == []
        assert _ids(alice.get("/v1/responses", params={
            "created_after": plain["created_at"] + 3600})) == []
        assert _ids(alice.get("/v1/responses", params={
            "created_before": plain["created_at"]})) == []
        # Tenants: bob cannot name alice's; the admin sees both and filters by tenant.
        refused = bob.get("/v1/responses", params={"tenant": "a"})
        assert refused.status_code == 403 and refused.json()["error"]["param"] == "tenant"
        everyone = admin.get("/v1/responses").json()["data"]
        assert {(r["id"], r["tenant"]) for r in everyone} == {
            *((i, "a") for i in mine), (theirs["id"], "b")}
        assert _ids(admin.get("/v1/responses", params={"tenant": "b"})) == [theirs["id"]]
        # Bad input: a clear 400.
        for params in ({"limit": "0"}, {"order": "up"}, {"status": "done"},
                       {"has_tool_calls": "maybe"}, {"created_after": "yesterday"}):
            reply = alice.get("/v1/responses", params=params)
            assert reply.status_code == 400 and reply.json()["error"]["param"], params
        assert alice.get("/v1/responses", params={"after": "resp_unknown"}).json()["data"] == []


def test_events_pages_follow_and_verify(keys: Keys):
    with keys.http(keys.alice) as alice, keys.http(keys.bob) as bob, \
            keys.http(keys.admin) as admin:
        running = alice.post("/v1/responses", json={
            "model": "m", "input": LONG_INPUT, "background": True}).json()
        listed = alice.get("/v1/responses", params={"status": "in_progress"})
        queued = alice.get("/v1/responses", params={"status": "queued"})
        assert running["id"] in _ids(listed) + _ids(queued)
        # Followed live from the start: every event once, in order, to the terminal one.
        with alice.stream("GET", f"/v1/responses/{running['id']}/events",
                          params={"stream": "true"}) as stream:
            ids = [int(line[4:]) for line in stream.iter_lines() if line.startswith("id: ")]
        assert ids == list(range(len(ids))) and len(ids) > 10
        # Page by page, with stored times.
        seen, after = [], -1
        while True:
            page = alice.get(f"/v1/responses/{running['id']}/events",
                             params={"after": after, "limit": 50}).json()
            seen += page["data"]
            if not page["has_more"]:
                break
            after = page["last_sequence_number"]
        assert [e["sequence_number"] for e in seen] == ids
        assert seen[-1]["type"] == "response.completed"
        assert all(e["created_at"] <= time.time() for e in seen)
        assert seen[0]["event"]["response"]["id"] == running["id"]
        # Another tenant: 404, as for an unknown id; the admin reads it.
        for path in (f"/v1/responses/{running['id']}/events",
                     f"/v1/responses/{running['id']}/events?stream=true"):
            assert bob.get(path).status_code == 404
        assert admin.get(f"/v1/responses/{running['id']}/events").json()["tenant"] == "a"
        bad = alice.get(f"/v1/responses/{running['id']}/events", params={"after": "x"})
        assert bad.status_code == 400
        # Chains: one response, and a range.
        one = alice.get("/v1/audit/verify", params={"response_id": running["id"]}).json()
        assert one == {"object": "audit.verification", "checked": 1, "ok": True, "broken": [],
                       "has_more": False}
        assert bob.get("/v1/audit/verify",
                       params={"response_id": running["id"]}).status_code == 404
        assert alice.get("/v1/audit/verify").json()["checked"] >= 1
        assert bob.get("/v1/audit/verify", params={
            "created_after": running["created_at"] + 3600}).json()["checked"] == 0
        # Activity: counts per bucket, the tenant's own only.
        mine = alice.get("/v1/inspect/activity").json()
        assert sum(b["count"] for b in mine["buckets"]) >= 1
        everyone = admin.get("/v1/inspect/activity").json()
        assert sum(b["count"] for b in everyone["buckets"]) >= sum(
            b["count"] for b in mine["buckets"])


def test_inspector_page_ships_its_own_files(keys: Keys):
    page = httpx.get(keys.server.base_url + "/inspect", timeout=10)
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from elsewhere
    for name in ("app.js", "style.css"):
        asset = httpx.get(keys.server.base_url + "/inspect/static/" + name, timeout=10)
        assert asset.status_code == 200 and len(asset.content) > 100
        assert "//cdn" not in asset.text
