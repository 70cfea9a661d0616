"""Two API processes and two workers on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import random
import signal

import httpx
import openai
import pytest
from openai import OpenAI

from tests.distributed.conftest import start_cluster
from tests.distributed.streams import FrameReader, check_contiguous, parse_frames
from tests.support.cluster import Cluster
from tests.support.protocol import check_event_order
from tests.support.redis_server import RedisServer


def _words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


def _post_stream(api_url: str, prompt: str, **extra) -> httpx.Response:  # type: ignore[no-untyped-def]
    client = httpx.Client(timeout=60)
    request = client.build_request(
        "POST",
        api_url + "/v1/responses",
        json={"model": "m", "input": prompt, "stream": True, **extra},
    )
    return client.send(request, stream=True)


def _get_stream(api_url: str, response_id: str, last_event_id: int | None = None) -> bytes:
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    with httpx.stream(
        "GET", f"{api_url}/v1/responses/{response_id}?stream=true", headers=headers, timeout=60
    ) as reply:
        assert reply.status_code == 200, reply.read()
        return reply.read()


def test_resume_on_another_api_process_is_byte_exact(cluster: Cluster):
    api1, api2 = cluster.apis
    reply = _post_stream(api1.base_url, _words(300))
    first = []
    for frame in FrameReader(reply):
        first.append(frame)
        if len(first) == 40:
            break
    reply.close()  # the client drops off API 1 midway
    response_id = first[0].data["response"]["id"]
    rest = parse_frames(_get_stream(api2.base_url, response_id, last_event_id=first[-1].seq))
    uninterrupted = parse_frames(_get_stream(api2.base_url, response_id))
    assert [f.raw for f in first + rest] == [f.raw for f in uninterrupted]
    check_contiguous(uninterrupted)
    assert uninterrupted[-1].data["response"]["output"][0]["content"][0]["text"] == _words(300)


def test_worker_metrics_endpoint(request, tmp_path_factory, redis_server):  # type: ignore[no-untyped-def]
    from tests.support.ports import free_port

    port = free_port()
    own = start_cluster(request, tmp_path_factory.mktemp("probe"), redis_server.url, apis=1,
                        workers=0)
    try:
        own.args = (*own.args, "--metrics-port", str(port))
        own.add_worker("probed")
        with OpenAI(base_url=own.apis[0].base_url + "/v1", api_key="x", max_retries=0) as sdk:
            sdk.responses.create(model="m", input="count me")
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert "responsed_ttft_seconds_count 1" in scraped
        assert "responsed_responses_total 1" in scraped
        health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
        assert health["role"] == "worker" and health["dependencies"]["redis"] is True
    finally:
        own.stop()


def test_the_api_never_generates(cluster: Cluster):
    health = [httpx.get(api.base_url + "/healthz").json() for api in cluster.apis]
    assert {h["role"] for h in health} == {"api"}
    ready = httpx.get(cluster.apis[0].base_url + "/readyz")
    assert ready.status_code == 200
    assert ready.json()["dependencies"] == {"database": True, "redis": True}
    with OpenAI(base_url=cluster.apis[0].base_url + "/v1", api_key="x", max_retries=0) as sdk:
        response = sdk.responses.create(model="m", input="hello cluster")
    assert response.output_text == "hello cluster"
    assert all(httpx.get(api.base_url + "/healthz").json()["running"] == 0 for api in cluster.apis)
    metrics = httpx.get(cluster.apis[0].base_url + "/metrics").text
    assert "responsed_events_appended_total" in metrics


@pytest.mark.timeout(600)  # 120 responses; slow on a loaded machine, and nothing waits on time
def test_the_job_stream_stays_bounded_over_many_responses(cluster: Cluster):
    """Finished jobs are acknowledged and deleted: the stream holds only what still runs, and
    its memory does not grow with the number of responses served."""
    import time

    import redis

    from storage.redis_jobs import GROUP, STREAM

    async def wave(index: int) -> None:
        async with httpx.AsyncClient(base_url=cluster.apis[index % 2].base_url, timeout=60) as c:
            replies = await asyncio.gather(*(
                c.post("/v1/responses", json={"model": "m", "input": f"wave {index} n{n}"})
                for n in range(20)
            ))
        assert all(r.status_code == 200 for r in replies), [r.text for r in replies][:3]

    queue = redis.Redis.from_url(cluster.env["REDIS_URL"])
    lengths, memory = [], []
    try:
        for index in range(6):
            asyncio.run(wave(index))
            deadline = time.monotonic() + 30
            while (queue.xlen(STREAM) or queue.xpending(STREAM, GROUP)["pending"]) and (
                time.monotonic() < deadline
            ):
                time.sleep(0.05)
            lengths.append(queue.xlen(STREAM))
            memory.append(queue.memory_usage(STREAM) or 0)
            if lengths[-1]:
                break  # this wave's entries stayed
    finally:
        queue.close()
    # 120 responses served; every wave's entries are gone once it has finished.
    assert lengths == [0] * 6, lengths
    assert max(memory) < 16 * 1024, memory
    assert memory[-1] <= memory[0] + 4096, memory


async def _reader(api_url: str, response_id: str, cursor: int) -> list:  # type: ignore[type-arg]
    async with httpx.AsyncClient(timeout=60) as client:
        reply = await client.get(
            f"{api_url}/v1/responses/{response_id}?stream=true&starting_after={cursor}"
        )
        assert reply.status_code == 200
        return parse_frames(reply.content)


def test_readers_joining_anywhere_with_lossy_publishes(request, tmp_path_factory, redis_server):  # type: ignore[no-untyped-def]
    lossy = start_cluster(
        request,
        tmp_path_factory.mktemp("lossy"),
        redis_server.url,
        apis=2,
        workers=2,
        extra_env={"RESPONSED_TEST_DROP_PUBLISH": "0.02"},
    )
    try:
        asyncio.run(_lossy_readers(lossy))
    finally:
        lossy.stop()


async def _lossy_readers(cluster: Cluster) -> None:
    rng = random.Random(11)
    async with httpx.AsyncClient(timeout=60) as client:
        ids = []
        for _ in range(4):
            created = await client.post(
                cluster.apis[0].base_url + "/v1/responses",
                json={"model": "m", "input": _words(300), "background": True},
            )
            ids.append(created.json()["id"])
    readers = []
    for _ in range(200):
        await asyncio.sleep(rng.random() * 0.01)
        response_id = rng.choice(ids)
        cursor = rng.randint(-1, 250)
        api = rng.choice(cluster.apis).base_url
        readers.append((cursor, asyncio.create_task(_reader(api, response_id, cursor))))
    for cursor, reader in readers:
        frames = await reader
        check_contiguous(frames, first=cursor + 1)
        assert frames[-1].type == "response.completed"


def _holder(cluster: Cluster, response_id: str) -> str:
    """Which worker holds the response's lease, straight from the database."""
    import asyncpg

    dsn = cluster.env["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")

    async def query() -> str:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval("SELECT worker FROM responses WHERE id = $1", response_id)
        finally:
            await conn.close()

    return asyncio.run(query())


def test_sigkill_a_worker_mid_stream(cluster: Cluster):
    api = cluster.apis[0]
    prompt = _words(500)  # ~3.3 s at the cluster's rate
    reply = _post_stream(api.base_url, prompt)
    frames = []
    killed = None
    for frame in FrameReader(reply):
        frames.append(frame)
        if len(frames) == 60:
            killed = _holder(cluster, frames[0].data["response"]["id"])
            cluster.workers[killed].stop(signal.SIGKILL)
    reply.close()
    assert killed is not None
    check_contiguous(frames)
    check_event_order([f.data for f in frames])
    final = frames[-1].data["response"]
    # Another worker continued the reply where the dead one stopped: one uninterrupted text.
    assert final["status"] == "completed"
    assert final["output"][0]["content"][0]["text"] == prompt
    cluster.add_worker(killed)


def test_a_paused_worker_is_fenced_out(cluster: Cluster):
    """A worker frozen past its lease (GC pause, VM stall) wakes up to find its response taken
    over: its late appends are refused, and the client sees no duplicate or reordering."""
    prompt = _words(450)
    reply = _post_stream(cluster.apis[0].base_url, prompt)
    frames, paused = [], None
    for frame in FrameReader(reply):
        frames.append(frame)
        if len(frames) == 40:
            paused = _holder(cluster, frames[0].data["response"]["id"])
            cluster.workers[paused].process.send_signal(signal.SIGSTOP)
        if paused and len(frames) == 120:
            assert _holder(cluster, frames[0].data["response"]["id"]) != paused
            cluster.workers[paused].process.send_signal(signal.SIGCONT)
    reply.close()
    assert paused is not None
    check_contiguous(frames)
    assert frames[-1].data["response"]["output"][0]["content"][0]["text"] == prompt
    response_id = frames[0].data["response"]["id"]
    assert [f.raw for f in parse_frames(_get_stream(cluster.apis[1].base_url, response_id))] == [
        f.raw for f in frames]


def test_a_stopping_worker_hands_its_responses_over(cluster: Cluster):
    prompt = _words(500)
    reply = _post_stream(cluster.apis[1].base_url, prompt)
    frames = []
    stopped = None
    for frame in FrameReader(reply):
        frames.append(frame)
        if len(frames) == 60:
            stopped = _holder(cluster, frames[0].data["response"]["id"])
            cluster.workers[stopped].stop(signal.SIGTERM)  # graceful: a deploy, a scale-down
    reply.close()
    assert stopped is not None
    check_contiguous(frames)
    final = frames[-1].data["response"]
    assert final["status"] == "completed"
    assert final["output"][0]["content"][0]["text"] == prompt
    cluster.add_worker(stopped)


def test_kill_an_api_process_mid_stream(request, tmp_path_factory, redis_server):  # type: ignore[no-untyped-def]
    own = start_cluster(
        request, tmp_path_factory.mktemp("apikill"), redis_server.url, apis=2, workers=1
    )
    try:
        api1, api2 = own.apis
        reply = _post_stream(api1.base_url, _words(300))
        frames = []
        try:
            for frame in FrameReader(reply):
                frames.append(frame)
                if len(frames) == 30:
                    api1.stop(signal.SIGKILL)
        except httpx.HTTPError:
            pass  # the connection died with the process
        response_id = frames[0].data["response"]["id"]
        rest = parse_frames(_get_stream(api2.base_url, response_id, frames[-1].seq))
        check_contiguous(frames + rest)
        assert rest[-1].type == "response.completed"
    finally:
        own.stop()


def test_restart_redis_mid_stream(request, tmp_path_factory):  # type: ignore[no-untyped-def]
    redis = RedisServer.start()
    own = start_cluster(
        request, tmp_path_factory.mktemp("redisrestart"), redis.url, apis=1, workers=1
    )
    try:
        reply = _post_stream(own.apis[0].base_url, _words(600))  # ~4 s
        frames = []
        for frame in FrameReader(reply):
            frames.append(frame)
            if len(frames) == 30:
                redis.kill()  # subscribers fall back to the store; the worker keeps appending
            if len(frames) == 200:
                redis.launch()  # back, empty: fan-out resumes
        check_contiguous(frames)
        assert frames[-1].type == "response.completed"
        assert frames[-1].data["response"]["output"][0]["content"][0]["text"] == _words(600)
        # Redis came back empty: new work still flows (the job group is made again).
        with OpenAI(base_url=own.apis[0].base_url + "/v1", api_key="x", max_retries=0) as sdk:
            assert sdk.responses.create(model="m", input="after the restart").output_text == (
                "after the restart"
            )
    finally:
        own.stop()
        redis.stop()


def test_background_create_poll_stream_cancel_with_the_sdk(cluster: Cluster):
    with OpenAI(base_url=cluster.apis[1].base_url + "/v1", api_key="x", max_retries=0) as sdk:
        queued = sdk.responses.create(model="m", input="poll me", background=True)
        assert queued.status == "queued" and queued.background is True
        polled = sdk.responses.retrieve(queued.id)
        while polled.status in ("queued", "in_progress"):
            polled = sdk.responses.retrieve(queued.id)
        assert polled.status == "completed" and polled.output_text == "poll me"

        with sdk.responses.create(
            model="m", input=_words(20), background=True, stream=True
        ) as stream:
            events = [e.model_dump(mode="json", exclude_unset=True) for e in stream]
        check_event_order(events)
        assert [e["type"] for e in events[:3]] == [
            "response.created",
            "response.queued",
            "response.in_progress",
        ]
        with sdk.responses.stream(response_id=events[0]["response"]["id"]) as replay:
            assert replay.get_final_response().output_text == _words(20)

        slow = sdk.responses.create(model="m", input=_words(2000), background=True)
        with pytest.raises(openai.BadRequestError):
            sdk.responses.delete(slow.id)  # still running
        cancelled = sdk.responses.cancel(slow.id)
        assert cancelled.status == "cancelled"
        assert sdk.responses.cancel(slow.id).model_dump() == cancelled.model_dump()
        assert sdk.responses.retrieve(slow.id).status == "cancelled"
        with sdk.responses.stream(response_id=slow.id) as replay:
            kinds = [e.type for e in replay]
        assert kinds[-1] == "response.failed"  # a cancel ends with response.failed

        with pytest.raises(openai.BadRequestError):
            sdk.responses.cancel(polled.id)  # finished
        synchronous = sdk.responses.create(model="m", input="sync")
        with pytest.raises(openai.BadRequestError) as info:
            sdk.responses.cancel(synchronous.id)
        assert "synchronous" in info.value.message
        with pytest.raises(openai.NotFoundError):
            sdk.responses.cancel("resp_nope")


def test_store_false_is_generated_by_the_api_and_kept_nowhere(cluster: Cluster):
    with OpenAI(base_url=cluster.apis[0].base_url + "/v1", api_key="x", max_retries=0) as sdk:
        with sdk.responses.stream(model="m", input=_words(50), store=False) as stream:
            final = stream.get_final_response()
        assert final.output_text == _words(50)
        with pytest.raises(openai.NotFoundError):
            sdk.responses.retrieve(final.id)
        plain = sdk.responses.create(model="m", input="not kept", store=False)
        assert plain.output_text == "not kept"


def test_conversations_and_tool_calls_across_processes(cluster: Cluster):
    tool = {"type": "function", "name": "get_weather", "strict": True,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"], "additionalProperties": False}}
    with OpenAI(base_url=cluster.apis[0].base_url + "/v1", api_key="x", max_retries=0) as one, \
            OpenAI(base_url=cluster.apis[1].base_url + "/v1", api_key="x", max_retries=0) as two:
        conversation = one.conversations.create()
        first = one.responses.create(model="m", input="call get_weather please", tools=[tool],
                                     tool_choice="required", conversation=conversation.id)
        call = next(item for item in first.output if item.type == "function_call")
        second = two.responses.create(
            model="m", tools=[tool], conversation=conversation.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
        assert second.status == "completed" and second.output_text
        items = list(two.conversations.items.list(conversation.id, order="asc"))
        assert [i.type for i in items][:3] == ["message", "function_call", "function_call_output"]
    audit = httpx.get(cluster.apis[1].base_url + "/v1/audit/tool_calls",
                      params={"response_id": first.id}).json()
    assert [row["call_id"] for row in audit["data"]] == [call.call_id]
    assert audit["data"][0]["output"] == "sunny"


def test_an_idempotency_key_holds_across_api_processes(cluster: Cluster):
    import uuid

    key = {"Idempotency-Key": str(uuid.uuid4())}
    answers = []
    for api in cluster.apis:
        with OpenAI(base_url=api.base_url + "/v1", api_key="x", max_retries=0) as sdk:
            answers.append(sdk.responses.create(model="m", input="one of", extra_headers=key))
    assert answers[0].id == answers[1].id and answers[1].output_text == "one of"
