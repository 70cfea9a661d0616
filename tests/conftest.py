"""Shared fixtures: storage backends (SQLite and a real PostgreSQL), live servers."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from service.runtime import Stores, memory_stores, open_stores, sql_event_store
from storage.database import sqlite_url
from storage.migrate import upgrade
from storage.sql_store import SqlEventStore
from tests.support.postgres import PostgresServer, find_pg_bin
from tests.support.redis_server import RedisServer, find_redis_server

BACKENDS = ["sqlite", "postgres"]
# Every implementation of the store ports: the in-memory one and the two databases.
ALL_BACKENDS = ["memory", *BACKENDS]


def _missing(what: str) -> None:
    # In CI every backend must run: a missing server binary is a failure, not a skip.
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI but is not installed")
    pytest.skip(f"{what} is not installed")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if find_pg_bin() is None:
        _missing("PostgreSQL (pg_ctl, initdb)")
    server = PostgresServer.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    if find_redis_server() is None:
        _missing("redis-server")
    server = RedisServer.start()
    yield server
    server.stop()


async def make_database_url(backend: str, request: pytest.FixtureRequest, tmp_dir) -> str:  # type: ignore[no-untyped-def]
    if backend == "sqlite":
        url = sqlite_url(tmp_dir)
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = await server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    await upgrade(url)
    return url


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    return await make_database_url(request.param, request, tmp_path)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlEventStore]:
    event_store = sql_event_store(database_url)
    yield event_store
    await event_store.close()


async def open_backend(backend: str, request: pytest.FixtureRequest, tmp_dir) -> Stores:  # type: ignore[no-untyped-def]
    if backend == "memory":
        return memory_stores()
    return await open_stores(await make_database_url(backend, request, tmp_dir))


@pytest.fixture(params=ALL_BACKENDS)
async def stores(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Stores]:  # type: ignore[no-untyped-def]
    """Every store port, on each of its implementations in turn."""
    opened = await open_backend(request.param, request, tmp_path)
    yield opened
    await opened.close()
