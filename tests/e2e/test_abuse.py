"""Abuse limits against a live server: a flood of wrong keys is throttled per client address
(429 with Retry-After) while valid keys keep working."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.keys import create_key
from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def guarded(tmp_path_factory) -> Iterator[tuple[ServerProcess, str]]:  # type: ignore[no-untyped-def]
    workdir: Path = tmp_path_factory.mktemp("abuse")
    env = {"RESPONSED_DATA_DIR": str(workdir / "data"), "DATABASE_URL": ""}
    key = create_key(env, "acme")
    server = ServerProcess.start(
        # Refilled once in 1000 s: no token comes back while the test runs, however slowly.
        workdir, "--auth", "required", "--auth-failure-burst", "10",
        "--auth-failure-rate", "0.001", env=env,
    )
    yield server, key
    server.stop()


def _client(server: ServerProcess, address: str, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url, timeout=30, headers={"Authorization": f"Bearer {key}"},
        transport=httpx.HTTPTransport(local_address=address),
    )


def test_failed_keys_are_throttled_per_address_and_valid_keys_are_not(guarded) -> None:  # type: ignore[no-untyped-def]
    server, key = guarded
    body = {"model": "m", "input": "hello"}
    with _client(server, "127.0.0.1", key) as good:
        assert good.post("/v1/responses", json=body).status_code == 200  # known, and cached
    statuses = []
    for i in range(200):
        with _client(server, "127.0.0.1", f"rsd_{i:012d}{'x' * 43}") as bad:
            reply = bad.get("/v1/responses/resp_x")
        statuses.append(reply.status_code)
        if reply.status_code == 429:
            assert int(reply.headers["Retry-After"]) >= 1
            error = reply.json()["error"]
            assert error["type"] == "rate_limit_error" and error["code"] == "too_many_auth_failures"
    assert statuses[:10] == [401] * 10  # the burst is answered as usual
    assert set(statuses[10:]) == {429}  # then refused before any key lookup
    # Another address is not held back by this one's failures, and valid keys keep working.
    with _client(server, "127.0.0.2", key) as other:
        assert other.post("/v1/responses", json=body).status_code == 200
    with _client(server, "127.0.0.2", "rsd_wrongwrongwr" + "x" * 43) as other_bad:
        assert other_bad.get("/v1/responses/resp_x").status_code == 401
    with _client(server, "127.0.0.1", key) as good:
        assert good.post("/v1/responses", json=body).status_code == 200
