"""Access control end to end: keys made with the CLI, a server that requires them, and every
route tried with another tenant's key (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import BACKENDS
from tests.e2e.conftest import backend_env
from tests.support.keys import create_key, responsed, revoke_key
from tests.support.server import ServerProcess

LONG_INPUT = " ".join(f"w{i}" for i in range(3000))  # about 8 s at the rate below


@dataclass
class Secured:
    server: ServerProcess
    env: dict[str, str]
    alice: str  # tenant a
    bob: str  # tenant b
    admin: str  # tenant c, admin

    def http(self, key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.server.base_url, headers=headers, timeout=30)


@pytest.fixture(scope="module", params=BACKENDS)
def secured(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Secured]:  # type: ignore[no-untyped-def]
    workdir: Path = tmp_path_factory.mktemp("secured")
    env = backend_env(request.param, request, workdir)
    keys = [create_key(env, "a"), create_key(env, "b"), create_key(env, "c", admin=True)]
    server = ServerProcess.start(
        workdir, "--auth", "required", "--auth-cache-s", "0.2", "--builtin-rate", "400",
        "--keepalive-s", "1", env=env,
    )
    yield Secured(server, env, *keys)
    server.stop()


def _error(reply: httpx.Response, status: int) -> dict:
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


PROTECTED = [
    ("POST", "/v1/responses"),
    ("GET", "/v1/responses/resp_x"),
    ("GET", "/v1/responses/resp_x?stream=true"),
    ("GET", "/v1/responses/resp_x/input_items"),
    ("POST", "/v1/responses/resp_x/cancel"),
    ("DELETE", "/v1/responses/resp_x"),
    ("POST", "/v1/responses/input_tokens"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_api_route_needs_a_key(secured: Secured, method: str, path: str):
    with secured.http(None) as http:
        reply = http.request(method, path, json={"model": "m", "input": "x"})
    error = _error(reply, 401)
    assert error["code"] == "missing_api_key"
    assert reply.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer rsd_000000000000_" + "A" * 43,  # well-formed, unknown
        "Bearer sk-test",
        "Basic dXNlcjpwYXNz",
        "Token abc",
        "bearer rsd_0",
    ],
)
def test_wrong_keys_are_401_in_the_error_envelope(secured: Secured, header: str):
    with httpx.Client(base_url=secured.server.base_url, timeout=10) as http:
        reply = http.get("/v1/responses/resp_x", headers={"Authorization": header})
    error = _error(reply, 401)
    assert error["type"] == "invalid_request_error"
    assert error["code"] in ("invalid_api_key", "missing_api_key")
    assert header.split(" ", 1)[-1] not in error["message"]  # nothing of the key comes back


def test_a_forged_secret_for_a_real_key_id_is_refused(secured: Secured):
    forged = secured.alice[:-4] + ("AAAA" if not secured.alice.endswith("AAAA") else "BBBB")
    with secured.http(forged) as http:
        assert _error(http.get("/v1/responses/resp_x"), 401)["code"] == "invalid_api_key"


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/docs",
                                  "/docs/openapi.json", "/docs/swagger"])
def test_operational_routes_stay_open(secured: Secured, path: str):
    with secured.http(None) as http:
        assert http.get(path).status_code == 200


def test_the_docs_page_loads_everything_from_this_server(secured: Secured):
    """Swagger UI ships in the package: every script, style and the document come from here."""
    with secured.http(None) as http:
        page = http.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        references = re.findall(r'(?:src|href|url)\s*[:=]\s*"([^"]+)"', page.text)
        assert {"/docs/assets/swagger-ui-bundle.js", "/docs/openapi.json"} <= set(references)
        assert not re.search(r"(?:https?:)?//", page.text), "the page names another host"
        for reference in references:
            assert http.get(reference).status_code == 200, reference  # open, and served


def test_the_sdk_works_with_a_key_and_fails_cleanly_without(secured: Secured):
    base = secured.server.base_url + "/v1"
    with OpenAI(base_url=base, api_key=secured.alice, max_retries=0) as sdk:
        response = sdk.responses.create(model="m", input="hello keys")
        assert response.output_text == "hello keys"
        assert sdk.responses.retrieve(response.id).status == "completed"
    with OpenAI(base_url=base, api_key="sk-nope", max_retries=0) as sdk, pytest.raises(
        openai.AuthenticationError
    ):
        sdk.responses.create(model="m", input="x")


def test_a_revoked_key_stops_working_within_the_cache_time(secured: Secured):
    key = create_key(secured.env, "a", "short-lived")
    with secured.http(key) as http:
        assert http.post("/v1/responses", json={"model": "m", "input": "x"}).status_code == 200
        revoke_key(secured.env, key)
        # The server caches lookups for 0.2 s: the key must be refused soon after.
        for _ in range(100):
            reply = http.get("/v1/responses/resp_x")
            if reply.status_code == 401:
                break
            time.sleep(0.05)
        assert _error(reply, 401)["code"] == "invalid_api_key"
    listing = responsed(secured.env, "keys", "list", "--tenant", "a").stdout
    line = next(row for row in listing.splitlines() if row.startswith(key[4:16]))
    assert line.split("\t")[-1] != "-"  # shown as revoked


def test_keys_never_reach_the_log(secured: Secured):
    log = secured.server.log_path.read_text(errors="replace")
    for key in (secured.alice, secured.bob, secured.admin):
        assert key not in log and key[17:] not in log


# -- tenant isolation -------------------------------------------------------------------------


def _same_as_unknown(theirs: httpx.Response, unknown: httpx.Response, their_id: str) -> None:
    """Another tenant's id answers exactly as an id that never existed."""
    assert theirs.status_code == unknown.status_code
    assert theirs.text.replace(their_id, "ID") == unknown.text.replace("resp_" + "0" * 48, "ID")


def test_another_tenant_gets_404_on_every_route(secured: Secured):
    unknown_id = "resp_" + "0" * 48
    with secured.http(secured.alice) as alice, secured.http(secured.bob) as bob, \
            secured.http(secured.admin) as admin:
        done = alice.post("/v1/responses", json={
            "model": "m", "input": [{"role": "user", "content": "alice's secret words"}]}).json()
        running = alice.post("/v1/responses", json={
            "model": "m", "input": LONG_INPUT, "background": True}).json()
        first_item = alice.get(f"/v1/responses/{done['id']}/input_items").json()["data"][0]
        output_item = done["output"][0]

        routes = [
            ("GET", "/v1/responses/{id}", {}),
            ("GET", "/v1/responses/{id}?stream=true", {}),
            ("GET", "/v1/responses/{id}?stream=true&starting_after=3", {}),
            ("GET", "/v1/responses/{id}?stream=true", {"Last-Event-ID": "3"}),
            ("GET", "/v1/responses/{id}/input_items", {}),
            ("GET", "/v1/responses/{id}/input_items?order=asc&limit=1&after=" + first_item["id"],
             {}),
            ("POST", "/v1/responses/{id}/cancel", {}),
            ("DELETE", "/v1/responses/{id}", {}),
        ]
        for target in (done["id"], running["id"]):
            for method, path, headers in routes:
                for other in (bob, admin):
                    theirs = other.request(method, path.format(id=target), headers=headers)
                    unknown = other.request(method, path.format(id=unknown_id), headers=headers)
                    assert theirs.status_code == 404, (method, path, theirs.text)
                    _same_as_unknown(theirs, unknown, target)

        # previous_response_id: as unknown as an id that never existed.
        theirs = bob.post("/v1/responses", json={
            "model": "m", "input": "x", "previous_response_id": done["id"]})
        unknown = bob.post("/v1/responses", json={
            "model": "m", "input": "x", "previous_response_id": unknown_id})
        assert _error(theirs, 400)["code"] == "previous_response_not_found"
        _same_as_unknown(theirs, unknown, done["id"])

        # item_reference to another tenant's items brings none of their content along.
        for item_id in (first_item["id"], output_item["id"]):
            reply = bob.post("/v1/responses", json={
                "model": "m", "input": [{"type": "item_reference", "id": item_id},
                                        {"role": "user", "content": "mine"}]})
            assert reply.status_code in (200, 400, 404), reply.text
            assert "alice's secret words" not in reply.text
            if reply.status_code == 200:
                items = bob.get(f"/v1/responses/{reply.json()['id']}/input_items").text
                assert "alice's secret words" not in items

        # Nothing the others tried touched alice's responses: she still has them all.
        assert alice.get(f"/v1/responses/{done['id']}").json() == done
        assert alice.get(f"/v1/responses/{running['id']}").json()["status"] in (
            "queued", "in_progress")
        follow_up = alice.post("/v1/responses", json={
            "model": "m", "input": "again", "previous_response_id": done["id"]})
        assert follow_up.status_code == 200, follow_up.text
        cancelled = alice.post(f"/v1/responses/{running['id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        with alice.stream("GET", f"/v1/responses/{done['id']}?stream=true") as stream:
            assert "response.completed" in stream.read().decode()
        assert alice.delete(f"/v1/responses/{done['id']}").json()["deleted"] is True
        _error(alice.get(f"/v1/responses/{done['id']}"), 404)


def test_conversations_and_the_audit_are_per_tenant(secured: Secured):
    tool = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}
    unknown_id = "conv_" + "0" * 48
    with secured.http(secured.alice) as alice, secured.http(secured.bob) as bob, \
            secured.http(secured.admin) as admin:
        conversation = alice.post("/v1/conversations", json={
            "items": [{"role": "user", "content": "alice's private note"}]}).json()
        item = alice.get(f"/v1/conversations/{conversation['id']}/items").json()["data"][0]
        called = alice.post("/v1/responses", json={
            "model": "m", "input": "call lookup", "tools": [tool], "tool_choice": "required",
            "conversation": conversation["id"]}).json()
        assert called["output"][-1]["type"] == "function_call"

        routes = [
            ("GET", "/v1/conversations/{id}", None),
            ("POST", "/v1/conversations/{id}", {"metadata": {"k": "v"}}),
            ("GET", "/v1/conversations/{id}/items", None),
            ("POST", "/v1/conversations/{id}/items",
             {"items": [{"role": "user", "content": "bob was here"}]}),
            ("GET", "/v1/conversations/{id}/items/" + item["id"], None),
            ("DELETE", "/v1/conversations/{id}/items/" + item["id"], None),
            ("DELETE", "/v1/conversations/{id}", None),
        ]
        for method, path, body in routes:
            for other in (bob, admin):
                theirs = other.request(method, path.format(id=conversation["id"]), json=body)
                unknown = other.request(method, path.format(id=unknown_id), json=body)
                assert theirs.status_code == 404, (method, path, theirs.text)
                assert theirs.text.replace(conversation["id"], "ID") == unknown.text.replace(
                    unknown_id, "ID")
        # A response of bob's cannot join alice's conversation.
        joined = bob.post("/v1/responses", json={
            "model": "m", "input": "x", "conversation": conversation["id"]})
        assert joined.status_code == 404 and "private note" not in joined.text

        # The audit: bob sees none of alice's calls, the admin key sees every tenant's.
        def calls(client: httpx.Client) -> list[str]:
            page = client.get("/v1/audit/tool_calls", params={"response_id": called["id"]})
            assert page.status_code == 200, page.text
            return [row["call_id"] for row in page.json()["data"]]

        assert calls(bob) == []
        assert calls(alice) == [called["output"][-1]["call_id"]]
        assert calls(admin) == [called["output"][-1]["call_id"]]
        # alice's conversation is untouched by the others' attempts.
        items = alice.get(f"/v1/conversations/{conversation['id']}/items").text
        assert "alice's private note" in items and "bob was here" not in items


# -- when keys are required -------------------------------------------------------------------


def test_keys_are_required_by_default_off_loopback_and_not_on_it(tmp_path: Path):
    data = str(tmp_path / "data")
    exposed = ServerProcess.start(tmp_path, "--host", "0.0.0.0", "--data-dir", data)
    try:
        with httpx.Client(base_url=exposed.base_url, timeout=10) as http:
            assert http.get("/healthz").status_code == 200
            reply = http.post("/v1/responses", json={"model": "m", "input": "x"})
            assert _error(reply, 401)["code"] == "missing_api_key"
            schema = http.get("/docs/openapi.json").json()
            assert schema["security"] == [{"bearer": []}]
    finally:
        exposed.stop()
    local = ServerProcess.start(tmp_path, "--data-dir", data)
    try:
        with httpx.Client(base_url=local.base_url, timeout=10) as http:
            created = http.post("/v1/responses", json={"model": "m", "input": "x"})
            assert created.status_code == 200
            # No key, one tenant: any bearer token is ignored and all see the same responses.
            other = http.get(f"/v1/responses/{created.json()['id']}",
                             headers={"Authorization": "Bearer whatever"})
            assert other.status_code == 200
            assert "security" not in http.get("/docs/openapi.json").json()
    finally:
        local.stop()
