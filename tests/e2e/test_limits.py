"""Configured limits over HTTP: OpenAI's error envelope, the right status, param and headers."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from openai import OpenAI

from tests.support.server import ServerProcess

SLOW = " ".join(f"w{i}" for i in range(400))  # 20 s at 20 tokens/s


@pytest.fixture(scope="module")
def limited(tmp_path_factory) -> Iterator[ServerProcess]:  # type: ignore[no-untyped-def]
    workdir = tmp_path_factory.mktemp("limited")
    server = ServerProcess.start(
        workdir, "--data-dir", str(workdir / "data"), "--builtin-rate", "20",
        "--max-input-items", "5", "--max-output-tokens-ceiling", "50",
        "--max-inflight-per-tenant", "1", "--max-subscribers-per-response", "1",
    )
    yield server
    server.stop()


@pytest.fixture
def http(limited: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=limited.base_url, timeout=30) as client:
        yield client


def _error(reply: httpx.Response, status: int) -> dict:
    assert reply.status_code == status, reply.text
    return reply.json()["error"]


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"input": ["x"] * 6}, "input", "array_above_max_length"),
        ({"max_output_tokens": 51}, "max_output_tokens", "integer_above_max_value"),
        ({"max_output_tokens": 0}, "max_output_tokens", "invalid_value"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "invalid_value"),
        ({"metadata": {"k" * 65: "v"}}, "metadata", "invalid_value"),
    ],
)
def test_request_ceilings(http: httpx.Client, body: dict, param: str, code: str):
    error = _error(http.post("/v1/responses", json={"model": "m", **body}), 400)
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")


def test_limits_at_the_ceiling_are_accepted(http: httpx.Client):
    reply = http.post("/v1/responses", json={
        "model": "m", "input": [{"role": "user", "content": "a b c d e f g"}] * 5,
        "max_output_tokens": 50, "metadata": {f"k{i}": "v" * 512 for i in range(16)}})
    assert reply.status_code == 200, reply.text


def test_in_flight_and_reader_limits_answer_429_with_retry_after(limited: ServerProcess,
                                                                  http: httpx.Client):
    running = http.post("/v1/responses", json={"model": "m", "input": SLOW, "background": True})
    assert running.status_code == 200
    response_id = running.json()["id"]
    refused = http.post("/v1/responses", json={"model": "m", "input": "x"})
    error = _error(refused, 429)
    assert (error["type"], error["code"]) == ("rate_limit_error", "too_many_in_flight")
    assert refused.headers["retry-after"] == "1"
    with OpenAI(base_url=limited.base_url + "/v1", api_key="x", max_retries=0) as sdk, \
            pytest.raises(openai.RateLimitError):
        sdk.responses.create(model="m", input="x")
    # A compact call is a response run like a create: it takes a slot too.
    compact = http.post("/v1/responses/compact", json={"model": "m", "input": "x"})
    assert _error(compact, 429)["code"] == "too_many_in_flight"
    assert compact.headers["retry-after"] == "1"

    with http.stream("GET", f"/v1/responses/{response_id}?stream=true") as reader:
        assert reader.status_code == 200
        chunks = reader.iter_bytes()  # held: dropping the iterator would close the stream
        assert b"response.created" in next(chunks)  # the first reader is streaming now
        second = http.get(f"/v1/responses/{response_id}?stream=true")
        assert _error(second, 429)["code"] == "too_many_subscribers"
        assert second.headers["retry-after"] == "1"
    assert http.post(f"/v1/responses/{response_id}/cancel").json()["status"] == "cancelled"


def test_the_openapi_document_carries_the_configured_limits(http: httpx.Client):
    schema = http.get("/docs/openapi.json").json()["components"]["schemas"]["CreateResponse"]
    assert schema["properties"]["input"]["anyOf"][1]["maxItems"] == 5
    ceiling = schema["properties"]["max_output_tokens"]["anyOf"][0]
    assert (ceiling["type"], ceiling["maximum"]) == ("integer", 50)
