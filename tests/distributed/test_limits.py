"""A tenant's in-flight limit holds across API processes: they count its running rows in the
shared database. Distributed mode on PostgreSQL + Redis, as real processes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.distributed.conftest import start_cluster
from tests.support.cluster import Cluster

LONG = " ".join(f"w{i}" for i in range(3000))  # about 20 s at the cluster's rate


@pytest.fixture(scope="module")
def limited(request: pytest.FixtureRequest, tmp_path_factory, redis_server) -> Iterator[Cluster]:  # type: ignore[no-untyped-def]
    cluster = start_cluster(
        request, tmp_path_factory.mktemp("limited"), redis_server.url, apis=2, workers=1,
        extra_env={"RESPONSED_MAX_INFLIGHT_PER_TENANT": "2"},
    )
    yield cluster
    cluster.stop()


def _background(api: str) -> httpx.Response:
    return httpx.post(api + "/v1/responses", timeout=30,
                      json={"model": "m", "input": LONG, "background": True})


def test_the_in_flight_limit_holds_across_api_processes(limited: Cluster):
    api1, api2 = (api.base_url for api in limited.apis)
    first = _background(api1)
    assert first.status_code == 200, first.text
    assert _background(api2).status_code == 200
    for api in (api1, api2):
        refused = _background(api)
        assert refused.status_code == 429, refused.text
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["type"] == "rate_limit_error"
        # A compact call is a response run like a create: refused as well.
        compact = httpx.post(api + "/v1/responses/compact", timeout=30,
                             json={"model": "m", "input": "plan the release"})
        assert compact.status_code == 429, compact.text
        assert compact.json()["error"]["code"] == "too_many_in_flight"
    # Cancelled on one process: the other admits the tenant again at once (the row has ended).
    cancelled = httpx.post(f"{api1}/v1/responses/{first.json()['id']}/cancel", timeout=60)
    assert cancelled.json()["status"] == "cancelled"
    assert _background(api2).status_code == 200
    assert _background(api1).status_code == 429
