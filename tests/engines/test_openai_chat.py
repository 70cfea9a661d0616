"""The Chat Completions adapter against a local fake engine speaking vLLM's chunk format."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from bench.fake_engine import FakeEngine
from domain.engine import (
    EngineRequest,
    Finish,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
)
from domain.errors import EngineError
from tests.support.ports import free_port
from worker.engines.openai_chat import OpenAIChatEngine, parse_model_map


@pytest.fixture
async def fake() -> AsyncIterator[FakeEngine]:
    async with FakeEngine(rate=0, tokens=12) as engine:
        yield engine


def _request(model: str = "m", **fields) -> EngineRequest:
    return EngineRequest(model=model, messages=[{"role": "user", "content": "one two three"}],
                         **fields)


async def _collect(engine: OpenAIChatEngine, request: EngineRequest) -> list:
    try:
        return [chunk async for chunk in engine.stream(request)]
    finally:
        await engine.close()


async def test_text_and_usage(fake: FakeEngine):
    chunks = await _collect(OpenAIChatEngine([fake.base_url]), _request())
    text = "".join(c.text for c in chunks if isinstance(c, TextDelta))
    assert text.split() == ["one", "two", "three", "one", "two", "three"] * 2
    finish = chunks[-1]
    assert isinstance(finish, Finish) and finish.reason == "stop"
    assert (finish.input_tokens, finish.output_tokens) == (3, 12)


async def test_streams_reuse_the_engine_connection(fake: FakeEngine):
    engine = OpenAIChatEngine([fake.base_url])
    try:
        for _ in range(3):
            chunks = [chunk async for chunk in engine.stream(_request())]
            assert isinstance(chunks[-1], Finish)
    finally:
        await engine.close()
    assert len(fake.requests) == 3
    assert fake.connections_opened == 1


async def test_a_body_left_open_after_done_still_finishes(fake: FakeEngine):
    import asyncio

    # Without a bound on reading past [DONE], this waits for the 300 s read timeout.
    chunks = await asyncio.wait_for(
        _collect(OpenAIChatEngine([fake.base_url]), _request("fake-linger")), 10
    )
    assert isinstance(chunks[-1], Finish) and chunks[-1].reason == "stop"
    text = "".join(c.text for c in chunks if isinstance(c, TextDelta))
    assert text.split() == ["one", "two", "three", "one", "two", "three"] * 2


async def test_request_body_sends_one_token_cap(fake: FakeEngine):
    engine = OpenAIChatEngine([fake.base_url], model_map=parse_model_map("m=served-model"))
    request = _request(max_tokens=5, temperature=0.2,
                       response_format={"type": "json_object"})
    chunks = await _collect(engine, request)
    [body] = fake.requests
    assert body["model"] == "served-model"
    assert body["max_tokens"] == 5 and "max_completion_tokens" not in body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["response_format"] == {"type": "json_object"} and body["temperature"] == 0.2
    assert "top_p" not in body  # unset by the client: the engine's defaults apply
    assert chunks[-1].reason == "length" and chunks[-1].output_tokens == 5


async def test_reasoning_content_is_not_doubled(fake: FakeEngine):
    chunks = await _collect(OpenAIChatEngine([fake.base_url]), _request("fake-reasoning"))
    reasoning = [c.text for c in chunks if isinstance(c, ReasoningDelta)]
    assert len(reasoning) == 8 and reasoning[0] == "think0"
    first_text = next(i for i, c in enumerate(chunks) if isinstance(c, TextDelta))
    assert all(isinstance(c, ReasoningDelta) for c in chunks[:first_text])


async def test_tool_call_fragments(fake: FakeEngine):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    chunks = await _collect(OpenAIChatEngine([fake.base_url]), _request("fake-tools", tools=tools))
    calls = [c for c in chunks if isinstance(c, ToolCallDelta)]
    assert calls[0].name == "lookup" and calls[0].call_id
    assert orjson.loads("".join(c.arguments for c in calls)) == {"city": "Paris"}
    assert chunks[-1].reason == "tool_calls"


async def test_content_filter_finish(fake: FakeEngine):
    chunks = await _collect(OpenAIChatEngine([fake.base_url]), _request("fake-refusal"))
    assert chunks[-1].reason == "content_filter"
    assert not any(isinstance(c, RefusalDelta) for c in chunks)


@pytest.mark.parametrize(
    ("model", "message"),
    [("fake-error", "HTTP 500"), ("fake-400", "HTTP 400"), ("fake-midstream-error", "")],
)
async def test_engine_errors_raise(fake: FakeEngine, model: str, message: str):
    with pytest.raises(EngineError) as info:
        await _collect(OpenAIChatEngine([fake.base_url]), _request(model))
    assert message in info.value.message


async def test_silence_past_the_read_timeout(fake: FakeEngine):
    engine = OpenAIChatEngine([fake.base_url], read_timeout=0.3)
    with pytest.raises(EngineError) as info:
        await _collect(engine, _request("fake-hang"))
    assert "sent nothing" in info.value.message


async def test_connection_refused():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(EngineError) as info:
        await _collect(OpenAIChatEngine([url], connect_timeout=1), _request())
    assert "Could not connect" in info.value.message


async def test_requests_rotate_over_engine_urls():
    async with FakeEngine(tokens=2) as a, FakeEngine(tokens=2) as b:
        engine = OpenAIChatEngine([a.base_url, b.base_url])
        for _ in range(4):
            [c async for c in engine.stream(_request())]
        await engine.close()
        assert (len(a.requests), len(b.requests)) == (2, 2)


def test_model_map_parsing():
    assert parse_model_map("gpt-4o=Qwen/Qwen3-8B, *=fallback,,bad") == {
        "gpt-4o": "Qwen/Qwen3-8B", "*": "fallback"}


async def test_continuation_asks_the_engine_to_continue_the_partial_reply(fake: FakeEngine):
    request = _request(assistant_prefix="one two")
    await _collect(OpenAIChatEngine([fake.base_url]), request)
    [body] = fake.requests
    assert body["messages"][-1] == {"role": "assistant", "content": "one two"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False


def test_reasoning_sent_back_is_renamed_or_dropped_for_the_engine():
    from worker.engines.openai_chat import _body

    messages = [{"role": "user", "content": "q"},
                {"role": "assistant", "content": "a", "reasoning_content": "thought"}]
    request = EngineRequest(model="m", messages=messages)
    assert _body(request, "m")["messages"][1]["reasoning_content"] == "thought"
    assert _body(request, "m", "reasoning")["messages"][1] == {
        "role": "assistant", "content": "a", "reasoning": "thought"}
    assert "reasoning_content" not in _body(request, "m", "")["messages"][1]
    assert messages[1]["reasoning_content"] == "thought"  # the request itself is untouched


async def test_a_continued_run_renames_the_reasoning_sent_back_too(fake: FakeEngine):
    messages = [{"role": "user", "content": "q"},
                {"role": "assistant", "content": "a", "reasoning_content": "thought"},
                {"role": "user", "content": "again"}]
    request = EngineRequest(model="m", messages=messages, assistant_prefix="one two")
    await _collect(OpenAIChatEngine([fake.base_url], reasoning_field="reasoning"), request)
    [body] = fake.requests
    assert body["messages"][1] == {"role": "assistant", "content": "a", "reasoning": "thought"}
    assert body["messages"][-1] == {"role": "assistant", "content": "one two"}
    assert messages[1]["reasoning_content"] == "thought"  # the request itself is untouched
