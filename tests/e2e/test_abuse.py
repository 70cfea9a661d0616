"""Abuse limits against a live server: a flood of wrong keys is throttled per client address
(429 with Retry-After) while valid keys keep working; headers are bounded and slow clients
timed out. (Huge bodies off the loop: tests/contract/test_sqlite_wal.py and
tests/engines/test_builtin.py.)"""

from __future__ import annotations

import socket
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


@pytest.fixture(scope="module")
def bounded(tmp_path_factory) -> Iterator[ServerProcess]:  # type: ignore[no-untyped-def]
    workdir: Path = tmp_path_factory.mktemp("bounded")
    server = ServerProcess.start(
        workdir, "--data-dir", str(workdir / "data"), "--max-headers", "50",
        "--max-header-bytes", "16384", "--header-timeout-s", "1", "--body-timeout-s", "1",
    )
    yield server
    server.stop()


def _exchange(server: ServerProcess, raw: bytes) -> bytes:
    """Send raw bytes and read until the server closes the connection (30 s at most: a
    server that never gives up on a slow client fails here, however loaded the machine)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(raw)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                pytest.fail(f"the server kept a stalled connection open: {received[:200]!r}")
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk


def test_too_many_headers_are_refused(bounded: ServerProcess) -> None:
    headers = "".join(f"x-h{i}: v\r\n" for i in range(60))
    reply = _exchange(bounded, f"GET /healthz HTTP/1.1\r\nhost: x\r\n{headers}\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:200]


def test_headers_too_large_are_refused(bounded: ServerProcess) -> None:
    raw = f"GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {'a' * 20000}\r\n\r\n".encode()
    reply = _exchange(bounded, raw)
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:200]


def test_headers_within_the_bounds_are_served(bounded: ServerProcess) -> None:
    headers = "".join(f"x-h{i}: v\r\n" for i in range(40))
    reply = _exchange(
        bounded, f"GET /healthz HTTP/1.1\r\nhost: x\r\n{headers}connection: close\r\n\r\n".encode()
    )
    assert reply.startswith(b"HTTP/1.1 200 "), reply[:200]


def test_slow_headers_time_out(bounded: ServerProcess) -> None:
    reply = _exchange(bounded, b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ")  # and no more
    assert reply.startswith(b"HTTP/1.1 408 "), reply[:200]


def test_a_connection_that_sends_nothing_times_out(bounded: ServerProcess) -> None:
    assert _exchange(bounded, b"").startswith(b"HTTP/1.1 408 ")


def test_a_slow_body_times_out(bounded: ServerProcess) -> None:
    raw = (b"POST /v1/responses HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
           b"content-length: 1000\r\n\r\n{\"model\": \"m\", ")  # and the rest never comes
    reply = _exchange(bounded, raw)
    assert b"200 OK" not in reply

