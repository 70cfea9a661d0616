"""`client.responses.input_tokens.count(...)` against a live server: the built-in engine's own
count (the same as a create's usage), vLLM's /tokenize (the fake engine's), and the estimate."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai import OpenAI

from bench.fake_engine import FakeEngine
from tests.support.server import ServerProcess

TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


def _count(client: OpenAI, **request) -> int:  # type: ignore[no-untyped-def]
    counted = client.responses.input_tokens.count(**request)
    assert counted.object == "response.input_tokens"
    return counted.input_tokens


def test_the_builtin_engine_counts_what_a_create_reports(client: OpenAI):
    request = {"input": "one two three four", "instructions": "answer in five words"}
    created = client.responses.create(model="m", **request)
    assert created.usage is not None
    assert _count(client, model="m", **request) == created.usage.input_tokens == 8


def test_previous_response_and_conversation_history_are_counted(client: OpenAI):
    first = client.responses.create(model="m", input="alpha beta gamma")
    counted = _count(client, model="m", input="delta", previous_response_id=first.id)
    follow_up = client.responses.create(model="m", input="delta", previous_response_id=first.id)
    assert follow_up.usage is not None
    assert counted == follow_up.usage.input_tokens == 3 + 3 + 1  # input, its echo, the new one

    conversation = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "red green blue yellow"}]
    )
    counted = _count(client, input="white", conversation=conversation.id)
    assert counted == 5
    # Counting does not take the conversation: a create right after it runs.
    created = client.responses.create(model="m", input="white", conversation=conversation.id)
    assert created.usage is not None and created.usage.input_tokens == counted


def test_tools_and_no_model_are_accepted(client: OpenAI):
    counted = _count(client, input="call get_weather please", tools=TOOLS)
    created = client.responses.create(model="m", input="call get_weather please", tools=TOOLS)
    assert created.usage is not None and counted == created.usage.input_tokens == 3


@pytest.mark.parametrize(
    ("request_body", "status", "code"),
    [
        ({"input": "x", "previous_response_id": "resp_missing"}, 400,
         "previous_response_not_found"),
        ({"input": "x", "conversation": "conv_missing"}, 404, None),
        ({"input": "x", "conversation": "conv_a", "previous_response_id": "resp_b"}, 400,
         "mutually_exclusive_parameters"),
        ({"input": 7}, 400, "invalid_type"),
        ({"input": [{"type": "function_call_output", "call_id": "nope", "output": "1"}]}, 400,
         None),
    ],
)
def test_bad_requests_are_openai_shaped_errors(server: ServerProcess, request_body, status, code):  # type: ignore[no-untyped-def]
    reply = httpx.post(server.base_url + "/v1/responses/input_tokens", json=request_body)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if code is not None:
        assert error["code"] == code


def test_a_body_that_is_not_json_is_a_400(server: ServerProcess):
    reply = httpx.post(
        server.base_url + "/v1/responses/input_tokens", content=b"{",
        headers={"content-type": "application/json"},
    )
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "invalid_json"


# -- an engine with a tokenizer, and one without ----------------------------------------------


@pytest.fixture(scope="module")
def fake_engine() -> Iterator[FakeEngine]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    engine = FakeEngine(tokens=8)
    asyncio.run_coroutine_threadsafe(engine.start(), loop).result(10)
    yield engine
    asyncio.run_coroutine_threadsafe(engine.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def _engine_server(tmp_path_factory, engine: FakeEngine) -> ServerProcess:  # type: ignore[no-untyped-def]
    workdir = tmp_path_factory.mktemp("count-engine")
    return ServerProcess.start(
        workdir, "--data-dir", str(workdir / "data"), "--engine", "openai",
        "--engine-url", engine.base_url, "--engine-model-map", "*=served-model",
    )


def test_an_engine_with_tokenize_counts_with_its_own_tokenizer(tmp_path_factory, fake_engine):  # type: ignore[no-untyped-def]
    server = _engine_server(tmp_path_factory, fake_engine)
    try:
        with OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0) as sdk:
            reply = sdk.responses.input_tokens.with_raw_response.count(
                model="m", input="alpha beta gamma", instructions="be brief", tools=TOOLS
            )
    finally:
        server.stop()
    assert reply.headers["x-token-count-source"] == "engine"
    # The fake engine's tokenizer: words of every message plus 3 a message.
    assert reply.parse().input_tokens == (2 + 3) + (3 + 3)
    sent = fake_engine.tokenize_requests[-1]
    assert sent["model"] == "served-model" and sent["add_generation_prompt"] is True
    assert sent["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "alpha beta gamma"},
    ]
    assert sent["tools"][0]["function"]["name"] == "get_weather"


def test_without_tokenize_the_count_is_an_estimate(tmp_path_factory, fake_engine):  # type: ignore[no-untyped-def]
    fake_engine.tokenize = False
    server = _engine_server(tmp_path_factory, fake_engine)
    try:
        with OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0) as sdk:
            reply = sdk.responses.input_tokens.with_raw_response.count(input="a" * 400)
            with pytest.raises(openai.BadRequestError):  # checked as a create is, all the same
                sdk.responses.input_tokens.count(input=[{"role": "user", "content": 5}])  # type: ignore[list-item]
    finally:
        fake_engine.tokenize = True
        server.stop()
    assert reply.headers["x-token-count-source"] == "estimate"
    # 400 characters at 4 a token, one message (4), the reply's start (3).
    assert reply.parse().input_tokens == 100 + 4 + 3
