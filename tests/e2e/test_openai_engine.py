"""responsed in front of a Chat Completions engine (the fake one, in vLLM's format)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from openai import OpenAI

from tests.e2e.conftest import ROOT
from tests.support.ports import free_port
from tests.support.protocol import check_event_order
from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def engine_url() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_engine", "--port", "0", "--tokens", "24"],
        stdout=subprocess.PIPE, cwd=ROOT, text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("listening on "), line
    yield line.split()[-1].rstrip("/") + "/v1"
    process.terminate()
    process.wait(timeout=10)


def _start(tmp_path_factory, *args: str) -> ServerProcess:  # type: ignore[no-untyped-def]
    workdir = tmp_path_factory.mktemp("openai-engine")
    return ServerProcess.start(workdir, "--data-dir", str(workdir / "data"), "--engine", "openai",
                               *args)


@pytest.fixture(scope="module")
def client(engine_url: str, tmp_path_factory) -> Iterator[OpenAI]:  # type: ignore[no-untyped-def]
    server = _start(tmp_path_factory, "--engine-url", engine_url, "--engine-read-timeout", "1")
    with OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0) as sdk:
        yield sdk
    server.stop()


def _events(client: OpenAI, **request) -> list[dict]:
    with client.responses.create(stream=True, input="alpha beta", **request) as stream:
        events = [e.model_dump(mode="json", exclude_unset=True) for e in stream]
    check_event_order(events)
    return events


def test_text_with_engine_usage(client: OpenAI):
    with client.responses.stream(model="served", input="alpha beta") as stream:
        final = stream.get_final_response()
    assert final.output_text.split() == ["alpha", "beta"] * 12
    assert final.usage.output_tokens == 24 and final.usage.input_tokens == 2


def test_reasoning_content_becomes_a_reasoning_item(client: OpenAI):
    events = _events(client, model="fake-reasoning")
    output = events[-1]["response"]["output"]
    assert [item["type"] for item in output] == ["reasoning", "message"]
    assert output[0]["content"][0]["text"].startswith("think0 think1")


def test_tool_calls_become_function_call_items(client: OpenAI):
    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
    events = _events(client, model="fake-tools", tools=[tool])
    streamed = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    final = events[-1]["response"]["output"]
    assert [i["call_id"] for i in final] == [i["call_id"] for i in streamed]
    assert final[0]["name"] == "get_weather" and final[0]["arguments"] == '{"city": "Paris"}'
    assert final[0]["call_id"].startswith("call_")


def test_length_means_incomplete(client: OpenAI):
    response = client.responses.create(model="served", input="alpha", max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage.output_tokens == 16


def test_content_filter_means_incomplete(client: OpenAI):
    response = client.responses.create(model="fake-refusal", input="x")
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "content_filter"


@pytest.mark.parametrize(("model", "needle"), [("fake-error", "HTTP 500"),
                                               ("fake-hang", "sent nothing"),
                                               ("fake-midstream-error", "")])
def test_engine_trouble_ends_in_response_failed(client: OpenAI, model: str, needle: str):
    events = _events(client, model=model)
    assert events[-1]["type"] == "response.failed"
    error = events[-1]["response"]["error"]
    assert error["code"] == "server_error" and needle in error["message"]
    assert client.responses.retrieve(events[0]["response"]["id"]).status == "failed"


def test_engine_down_fails_fast(tmp_path_factory):  # type: ignore[no-untyped-def]
    port = free_port()
    server = _start(tmp_path_factory, "--engine-url", f"http://127.0.0.1:{port}/v1")
    try:
        with OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0) as sdk:
            response = sdk.responses.create(model="m", input="hello")
            streamed = [e.model_dump_json() for e in sdk.responses.create(
                model="m", input="hello", stream=True)]
        assert response.status == "failed"
        assert "Could not connect" in response.error.message
        # Where the engine lives is the operator's business: logged, never sent to clients.
        for seen in (response.model_dump_json(), *streamed):
            assert str(port) not in seen and "127.0.0.1" not in seen
        assert str(port) in server.log_path.read_text()
    finally:
        server.stop()
