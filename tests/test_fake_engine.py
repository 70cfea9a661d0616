"""The fake engine speaks vLLM's Chat Completions dialect; the load generator counts it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bench.fake_engine import FakeEngine
from bench.loadgen import Target, run_level
from bench.stream_client import Gaps, Mode, StreamConnection, StreamResult


@pytest.fixture
async def engine() -> AsyncIterator[FakeEngine]:
    async with FakeEngine(rate=0, tokens=6) as fake:
        yield fake


@pytest.fixture
async def client(engine: FakeEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=engine.base_url, timeout=5) as http:
        yield http


def chat(model: str = "fake", text: str = "alpha beta gamma", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


async def stream_chunks(client: httpx.AsyncClient, body: dict[str, Any]) -> list[Any]:
    """The decoded `data:` payloads of a streamed reply; "[DONE]" stays a string."""
    async with client.stream("POST", "/chat/completions", json={**body, "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = (await r.aread()).decode()
    assert raw.endswith("\n\n")
    events = raw[:-2].split("\n\n")
    assert all(e.startswith("data: ") for e in events)
    return [e[6:] if e == "data: [DONE]" else json.loads(e[6:]) for e in events]


def deltas(chunks: list[Any]) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in chunks[:-1] if c["choices"]]


async def test_stream_has_vllm_chunk_format(client: httpx.AsyncClient) -> None:
    chunks = await stream_chunks(client, chat())
    assert chunks[-1] == "[DONE]"
    first, *content = chunks[:-1]
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    for chunk in chunks[:-1]:
        assert chunk["id"].startswith("chatcmpl-")
        assert chunk["id"] == first["id"]
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == "fake"
        assert abs(chunk["created"] - time.time()) < 60
        [choice] = chunk["choices"]
        assert choice["index"] == 0
        assert choice["logprobs"] is None
    text = "".join(c["choices"][0]["delta"]["content"] for c in content)
    assert text == "alpha beta gamma alpha beta gamma"
    assert [c["choices"][0]["finish_reason"] for c in content] == [None] * 5 + ["stop"]
    assert "usage" not in chunks[-2]


async def test_include_usage_adds_a_final_usage_chunk(client: httpx.AsyncClient) -> None:
    body = chat(stream_options={"include_usage": True})
    chunks = await stream_chunks(client, body)
    usage_chunk = chunks[-2]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9}
    assert chunks[-3]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("key", ["max_tokens", "max_completion_tokens"])
async def test_max_tokens_truncates_with_length(client: httpx.AsyncClient, key: str) -> None:
    chunks = await stream_chunks(client, chat(**{key: 2}))
    content = deltas(chunks)[1:]
    assert [d["content"] for d in content] == ["alpha", " beta"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"

    long = await stream_chunks(client, chat(**{key: 100}))
    assert len(deltas(long)) == 1 + 6
    assert long[-2]["choices"][0]["finish_reason"] == "stop"


async def test_empty_prompt_yields_numbered_tokens(client: httpx.AsyncClient) -> None:
    chunks = await stream_chunks(client, chat(text="", max_tokens=3))
    assert [d["content"] for d in deltas(chunks)[1:]] == ["tok0", " tok1", " tok2"]


async def test_tool_call_fragments_concatenate_to_json(client: httpx.AsyncClient) -> None:
    tools = [
        {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
        for name in ("lookup", "book")
    ]
    chunks = await stream_chunks(client, chat("fake-tools", tools=tools))
    calls: dict[int, dict[str, str]] = {}
    for delta in deltas(chunks)[1:]:
        [fragment] = delta["tool_calls"]
        call = calls.setdefault(fragment["index"], {"arguments": ""})
        if "id" in fragment:
            assert fragment["id"].startswith("call_")
            assert fragment["type"] == "function"
            call.update(id=fragment["id"], name=fragment["function"]["name"])
        call["arguments"] += fragment["function"]["arguments"]
    assert [calls[i]["name"] for i in sorted(calls)] == ["lookup", "book"]
    assert all(json.loads(c["arguments"]) == {"city": "Paris"} for c in calls.values())
    assert len(deltas(chunks)) > 1 + 2 * 2  # arguments arrive in several fragments
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_tool_call_defaults_to_get_weather(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat/completions", json=chat("fake-tools"))
    choice = response.json()["choices"][0]
    [call] = choice["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert choice["finish_reason"] == "tool_calls"


async def test_reasoning_comes_before_content(client: httpx.AsyncClient) -> None:
    chunks = await stream_chunks(client, chat("fake-reasoning"))
    reasoning = [d for d in deltas(chunks)[1:] if "reasoning_content" in d]
    content = [d for d in deltas(chunks)[1:] if "content" in d]
    assert deltas(chunks)[1 : 1 + len(reasoning)] == reasoning
    assert all(d["reasoning"] == d["reasoning_content"] for d in reasoning)
    assert "".join(d["reasoning_content"] for d in reasoning).startswith("think0 think1")
    assert "".join(d["content"] for d in content).startswith("alpha beta")


async def test_refusal_finishes_with_content_filter(client: httpx.AsyncClient) -> None:
    chunks = await stream_chunks(client, chat("fake-refusal"))
    assert "".join(d["content"] for d in deltas(chunks)[1:]) == "I can't help with that."
    assert chunks[-2]["choices"][0]["finish_reason"] == "content_filter"


async def test_non_streamed_completion(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat/completions", json=chat(max_tokens=4))
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "alpha beta gamma alpha"
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


async def test_errors(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat/completions", json=chat("fake-error", stream=True))
    assert response.status_code == 500
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}

    response = await client.post("/chat/completions", json=chat("fake-400", stream=True))
    assert response.status_code == 400
    body = response.json()
    assert body["object"] == "error"
    assert body["type"] == "BadRequestError"
    assert body["code"] == 400
    assert body["param"] is None

    response = await client.post("/chat/completions", json={"model": "fake", "messages": []})
    assert response.status_code == 400
    response = await client.post("/chat/completions", content=b"{not json")
    assert response.status_code == 400


async def test_midstream_error_cuts_the_connection(client: httpx.AsyncClient) -> None:
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):
        body = chat("fake-midstream-error", stream=True)
        async with client.stream("POST", "/chat/completions", json=body) as response:
            async for piece in response.aiter_raw():
                received += piece
    assert received.count(b'"content":"') == 1 + 3
    assert b"[DONE]" not in received


async def test_hang_sends_only_the_first_chunk(engine: FakeEngine) -> None:
    timeout = httpx.Timeout(5, read=0.3)
    async with httpx.AsyncClient(base_url=engine.base_url, timeout=timeout) as client:
        body = chat("fake-hang", stream=True)
        async with client.stream("POST", "/chat/completions", json=body) as response:
            lines = response.aiter_lines()
            first = await anext(lines)
            assert json.loads(first[6:])["choices"][0]["delta"]["role"] == "assistant"
            with pytest.raises(httpx.ReadTimeout):
                async for _ in lines:
                    pass


async def test_requests_are_recorded_and_keep_alive(
    engine: FakeEngine, client: httpx.AsyncClient
) -> None:
    for i in range(3):
        await stream_chunks(client, chat(text=f"ask {i}"))
    assert [r["messages"][0]["content"] for r in engine.requests] == ["ask 0", "ask 1", "ask 2"]
    assert len(engine._connections) == 1


async def test_models_and_health(engine: FakeEngine, client: httpx.AsyncClient) -> None:
    models = (await client.get("/models")).json()
    assert "fake-tools" in {m["id"] for m in models["data"]}
    health = await client.get(f"http://{engine.host}:{engine.port}/health")
    assert health.status_code == 200
    assert (await client.get("/nowhere")).status_code == 404


async def test_rate_paces_tokens() -> None:
    async with (
        FakeEngine(rate=200, tokens=20) as engine,
        httpx.AsyncClient(base_url=engine.base_url, timeout=5) as client,
    ):
        started = time.perf_counter()
        chunks = await stream_chunks(client, chat())
        elapsed = time.perf_counter() - started
    assert len(deltas(chunks)) == 1 + 20
    assert 0.09 <= elapsed < 1.0  # 20 tokens at 200/s take 0.1 s


async def test_concurrent_streams_and_disconnects(engine: FakeEngine) -> None:
    async with httpx.AsyncClient(base_url=engine.base_url, timeout=5) as client:
        # A client that walks away mid-stream must not disturb the others.
        async with client.stream("POST", "/chat/completions", json=chat(stream=True)) as r:
            await anext(r.aiter_raw())
        results = await asyncio.gather(*(stream_chunks(client, chat()) for _ in range(20)))
    assert all(len(deltas(chunks)) == 7 for chunks in results)


# -- the load generator, which must count every delta whatever the framing -----------------


class _Transport:
    def __init__(self) -> None:
        self.written = b""

    def write(self, data: bytes) -> None:
        self.written += data

    def abort(self) -> None:
        pass


def _chunked(payload: bytes, size: int) -> bytes:
    parts = [payload[i : i + size] for i in range(0, len(payload), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def _responses_stream(deltas: int, terminal: str, sep: bytes) -> bytes:
    def event(name: str, data: dict[str, Any], event_id: int) -> bytes:
        lines = [f"id: {event_id}", f"event: {name}", "data: " + json.dumps(data)]
        return sep.join(line.encode() for line in lines) + sep + sep

    body = event("response.created", {"type": "response.created"}, 0)
    body += b": keep-alive" + sep + sep
    for i in range(deltas):
        data = {"type": "response.output_text.delta", "delta": f" w{i}\n\n"}
        body += event("response.output_text.delta", data, i + 1)
    body += event(terminal, {"type": terminal}, deltas + 1)
    return body + b"data: [DONE]" + sep + sep


async def _feed(mode: Mode, response: bytes, step: int) -> StreamResult:
    connection = StreamConnection(mode, Gaps())
    connection.connection_made(_Transport())  # type: ignore[arg-type]
    pending = asyncio.create_task(connection.request(b"POST / HTTP/1.1\r\n\r\n", 5))
    await asyncio.sleep(0)
    for i in range(0, len(response), step):
        connection.data_received(response[i : i + step])
    return await pending


@pytest.mark.parametrize("sep", [b"\n", b"\r\n"])
@pytest.mark.parametrize(("terminal", "ok"), [("response.completed", True), ("error", False)])
@pytest.mark.parametrize("step", [1, 7, 100_000])
async def test_responses_deltas_counted_across_any_split(
    sep: bytes, terminal: str, ok: bool, step: int
) -> None:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    response = head + _chunked(_responses_stream(40, terminal, sep), 37)
    result = await _feed("responses", response, step)
    assert (result.ok, result.deltas) == (ok, 40)


async def test_responses_without_terminal_event_fail() -> None:
    body = b"event: response.output_text.delta\ndata: {}\n\ndata: [DONE]\n\n"
    response = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    result = await _feed("responses", response, 5)
    assert (result.ok, result.deltas, result.error) == (False, 1, "stream ended with [DONE]")


async def test_loadgen_counts_the_fake_engine_deltas(engine: FakeEngine) -> None:
    target = Target.build(engine.base_url, "engine", max_tokens=50, words=10)
    result = await run_level(target, concurrency=4, requests=12)
    assert (result.ok, result.failed) == (12, 0)
    assert result.deltas == 12 * 6  # the engine's natural length is 6 tokens
    assert len(result.ttfts) == 12 and len(result.gaps) == 12 * 5


async def test_loadgen_reports_failed_streams(engine: FakeEngine) -> None:
    for model, error in [
        ("fake-midstream-error", "connection closed mid-response"),
        ("fake-400", "HTTP 400"),
    ]:
        target = Target.build(engine.base_url, "engine", model=model)
        result = await run_level(target, concurrency=2, requests=4)
        assert (result.ok, result.failed) == (0, 4)
        assert result.errors == {error: 4}
    target = Target.build(engine.base_url, "engine", model="fake-hang")
    result = await run_level(target, concurrency=1, requests=1, stream_limit_s=0.2)
    assert result.errors == {"timeout after 0.2 s": 1}
