"""Live servers for end-to-end tests: `responsed serve` on 127.0.0.1, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from tests.conftest import BACKENDS
from tests.support.server import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
# Slow enough that a test can drop a stream midway, fast enough to keep the suite quick.
BUILTIN_RATE = "400"
MAX_BODY = "200000"


def backend_env(backend: str, request: pytest.FixtureRequest, workdir: Path) -> dict[str, str]:
    if backend == "sqlite":
        return {"RESPONSED_DATA_DIR": str(workdir / "data"), "DATABASE_URL": ""}
    postgres = request.getfixturevalue("postgres_server")
    url = asyncio.run(postgres.create_database(f"e2e_{uuid.uuid4().hex[:12]}"))
    env = {"DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "-m", "cli.main", "migrate"],
        check=True,
        cwd=ROOT,
        env={**_os_env(), **env},
        capture_output=True,
    )
    return env


def _os_env() -> dict[str, str]:
    import os

    return dict(os.environ)


@pytest.fixture(scope="module", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[ServerProcess]:  # type: ignore[no-untyped-def]
    workdir = tmp_path_factory.mktemp("server")
    env = backend_env(request.param, request, workdir)
    process = ServerProcess.start(
        workdir,
        "--builtin-rate",
        BUILTIN_RATE,
        "--max-body-bytes",
        MAX_BODY,
        "--keepalive-s",
        "1",
        env=env,
    )
    yield process
    process.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[OpenAI]:
    with OpenAI(
        base_url=server.base_url + "/v1", api_key="sk-test", max_retries=0, timeout=30
    ) as sdk:
        yield sdk
