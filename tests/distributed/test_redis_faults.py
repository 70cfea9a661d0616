"""Redis pub/sub faults under load: subscribers killed over and over, the server paused.

Creates, resumes and full replays run while a chaos task kills every pub/sub client
(`CLIENT KILL TYPE pubsub`) and pauses the server (`CLIENT PAUSE`). No request may answer a
5xx, and every stream must be complete and byte-exact against the stored log.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

import httpx
import pytest
import redis

from tests.distributed.conftest import start_cluster
from tests.distributed.streams import check_contiguous, parse_frames
from tests.support.redis_server import RedisServer

RESPONSES = int(os.environ.get("RESPONSED_FAULT_RESPONSES", "48"))  # more: a longer soak
CONCURRENCY = 8


def _words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


class Chaos:
    """Kills the pub/sub clients every `every_s` and, every third round, pauses the server."""

    def __init__(self, url: str, every_s: float = 0.25) -> None:
        self._client = redis.Redis.from_url(url)
        self._every_s = every_s
        self._stop = threading.Event()
        self.kills = 0
        self.pauses = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Chaos:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._client.close()

    def _run(self) -> None:
        round_ = 0
        while not self._stop.wait(self._every_s):
            round_ += 1
            try:
                self.kills += int(self._client.client_kill_filter(_type="pubsub") or 0)
                if round_ % 3 == 0:
                    self._client.execute_command("CLIENT", "PAUSE", 300)
                    self.pauses += 1
            except redis.RedisError:
                pass


async def _one(api: str, index: int, failures: list[str]) -> tuple[list, list, list]:  # type: ignore[type-arg]
    prompt = _words(60 + index % 40)
    async with httpx.AsyncClient(base_url=api, timeout=60) as client:
        async with client.stream(
            "POST", "/v1/responses", json={"model": "m", "input": prompt, "stream": True}
        ) as reply:
            body = await reply.aread()
        if reply.status_code >= 500:
            failures.append(f"create {reply.status_code}: {body[:300]!r}")
            return [], [], []
        created = parse_frames(body)
        response_id = created[0].data["response"]["id"]
        cursor = created[len(created) // 3].seq
        resumed = await client.get(
            f"/v1/responses/{response_id}", params={"stream": "true", "starting_after": cursor}
        )
        replayed = await client.get(f"/v1/responses/{response_id}", params={"stream": "true"})
        for name, answer in (("resume", resumed), ("replay", replayed)):
            if answer.status_code >= 500:
                failures.append(f"{name} {answer.status_code}: {answer.text[:300]}")
                return [], [], []
        assert created[-1].data["response"]["output"][0]["content"][0]["text"] == prompt
        return created, parse_frames(resumed.content), parse_frames(replayed.content)


async def _run_all(api: str, failures: list[str]) -> list[tuple[list, list, list]]:  # type: ignore[type-arg]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def limited(index: int):  # type: ignore[no-untyped-def]
        async with gate:
            return await _one(api, index, failures)

    return await asyncio.gather(*(limited(i) for i in range(RESPONSES)))


@pytest.fixture
def own_redis():  # type: ignore[no-untyped-def]
    server = RedisServer.start()
    yield server
    server.stop()


@pytest.mark.timeout(600)
def test_pubsub_kills_and_pauses_never_give_a_5xx_nor_a_torn_stream(
    request, tmp_path_factory, own_redis
):  # type: ignore[no-untyped-def]
    cluster = start_cluster(
        request, tmp_path_factory.mktemp("pubsubchaos"), own_redis.url, apis=1, workers=1
    )
    failures: list[str] = []
    try:
        api = cluster.apis[0].base_url
        started = time.monotonic()
        with Chaos(own_redis.url) as chaos:
            results = asyncio.run(_run_all(api, failures))
        assert chaos.kills > 0 and chaos.pauses > 0, "the chaos did happen"
        assert not failures, failures[:5]
        for created, resumed, replayed in results:
            check_contiguous(replayed)
            assert [f.raw for f in created] == [f.raw for f in replayed]
            first = created[len(created) // 3].seq + 1
            assert [f.raw for f in resumed] == [f.raw for f in replayed[first:]]
        log = cluster.apis[0].log_path.read_text(errors="replace")
        assert "Task exception was never retrieved" not in log
        assert "unhandled error" not in log, log[-3000:]
        print(f"{RESPONSES * 3} streams, {chaos.kills} pub/sub kills, {chaos.pauses} pauses, "
              f"{time.monotonic() - started:.1f} s")
    finally:
        cluster.stop()
