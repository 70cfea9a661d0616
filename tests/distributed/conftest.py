"""A cluster per module: PostgreSQL + Redis started by the fixtures, API and worker processes."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from tests.support.cluster import ROOT, Cluster

# Short leases so that a dead worker's responses move on within seconds.
CLUSTER_ARGS = (
    "--builtin-rate",
    "150",
    "--lease-s",
    "2",
    "--janitor-interval-s",
    "0.5",
    "--enqueue-grace-s",
    "1",
    "--keepalive-s",
    "1",
)


_REDIS_DBS = itertools.cycle(range(1, 16))


def start_cluster(
    request: pytest.FixtureRequest,
    workdir,
    redis_url: str,
    *,
    apis: int,  # type: ignore[no-untyped-def]
    workers: int,
    extra_env: dict[str, str] | None = None,
) -> Cluster:
    postgres = request.getfixturevalue("postgres_server")
    database_url = asyncio.run(postgres.create_database(f"d_{uuid.uuid4().hex[:12]}"))
    # Job streams live in one Redis database each, so clusters sharing a server stay apart.
    redis_url = redis_url.rsplit("/", 1)[0] + f"/{next(_REDIS_DBS)}"
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, **(extra_env or {})}
    subprocess.run(
        [sys.executable, "-m", "cli.main", "migrate"],
        check=True,
        cwd=ROOT,
        env={**__import__("os").environ, **env},
        capture_output=True,
    )
    cluster = Cluster(workdir, env, CLUSTER_ARGS)
    try:
        for index in range(workers):
            cluster.add_worker(f"worker-{index + 1}")
        for _ in range(apis):
            cluster.add_api()
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest, tmp_path_factory, redis_server) -> Iterator[Cluster]:  # type: ignore[no-untyped-def]
    running = start_cluster(
        request, tmp_path_factory.mktemp("cluster"), redis_server.url, apis=2, workers=2
    )
    yield running
    running.stop()
