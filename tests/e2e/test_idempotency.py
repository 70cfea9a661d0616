"""Idempotency-Key on POST /v1/responses and /v1/responses/compact, driven with the official
SDK (`extra_headers`).

The openai SDK keeps a request's headers across its own retries (it sends no idempotency
header of its own), so a key given once covers every automatic retry of that call.
"""

from __future__ import annotations

import re
import uuid

import httpx
import openai
import pytest
from openai import OpenAI

from tests.distributed.streams import parse_frames
from tests.support.keys import create_key
from tests.support.server import ServerProcess


def _counter(server: ServerProcess, name: str) -> float:
    text = httpx.get(server.base_url + "/metrics").text
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def _runs(server: ServerProcess) -> float:
    return _counter(server, "responsed_responses_total")


def _key() -> dict[str, str]:
    return {"Idempotency-Key": f"test-{uuid.uuid4()}"}


def test_a_repeat_answers_the_same_response_without_generating_again(server, client):  # type: ignore[no-untyped-def]
    key = _key()
    first = client.responses.create(model="m", input="once only", extra_headers=key)
    runs = _runs(server)
    again = client.responses.create(model="m", input="once only", extra_headers=key)
    assert again.id == first.id and again.output_text == "once only"
    assert again.model_dump() == first.model_dump()
    assert _runs(server) == runs, "the repeat generated nothing"
    # Another key, or none: a new response.
    other = client.responses.create(model="m", input="once only", extra_headers=_key())
    assert other.id != first.id


def test_the_same_key_with_another_body_is_a_400(client):  # type: ignore[no-untyped-def]
    key = _key()
    client.responses.create(model="m", input="body one", extra_headers=key)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input="body two", extra_headers=key)
    error = caught.value.body
    assert error["code"] == "idempotency_key_reused" and error["param"] == "Idempotency-Key"


def test_bad_keys_and_store_false_are_refused(client):  # type: ignore[no-untyped-def]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input="x", extra_headers={"Idempotency-Key": "a" * 300})
    assert caught.value.body["param"] == "Idempotency-Key"
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input="x", store=False, extra_headers=_key())
    assert caught.value.body["param"] == "Idempotency-Key"


def test_a_repeated_stream_reattaches_from_the_start(server):  # type: ignore[no-untyped-def]
    key = _key()
    body = {"model": "m", "input": " ".join(f"w{i}" for i in range(300)), "stream": True}
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        with http.stream("POST", "/v1/responses", json=body, headers=key) as reply:
            seen = b""
            for chunk in reply.iter_raw():
                seen += chunk
                if seen.count(b"\n\n") > 20:
                    break  # the client drops off midway; the response goes on
        first = parse_frames(seen)
        runs = _runs(server)
        repeated = parse_frames(http.post("/v1/responses", json=body, headers=key).content)
        response_id = first[0].data["response"]["id"]
        stored = parse_frames(
            http.get(f"/v1/responses/{response_id}", params={"stream": "true"}).content
        )
    assert repeated[0].data["response"]["id"] == response_id
    assert [f.raw for f in repeated] == [f.raw for f in stored]
    assert [f.raw for f in first] == [f.raw for f in repeated[: len(first)]]
    assert repeated[-1].type == "response.completed"
    assert _runs(server) <= runs + 1  # at most the first run finishing meanwhile


class _ReplyLost(httpx.BaseTransport):
    """Delivers the first POST to the server, then drops its reply, as a reset would."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.bodies: list[bytes] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if request.method == "POST":
            response.read()
            self.bodies.append(response.content)
            if len(self.bodies) == 1:
                response.close()
                raise httpx.ReadError("connection reset by peer", request=request)
        return response


def test_the_sdk_retry_of_a_lost_reply_gets_the_first_response(server):  # type: ignore[no-untyped-def]
    transport = _ReplyLost()
    with OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=2,
                http_client=httpx.Client(transport=transport, timeout=30)) as sdk:
        runs = _runs(server)
        response = sdk.responses.create(model="m", input="retried", extra_headers=_key())
    assert len(transport.bodies) == 2, "the SDK retried once"
    lost = httpx.Response(200, content=transport.bodies[0]).json()
    assert response.id == lost["id"], "the retry answered the response the lost reply carried"
    assert _runs(server) == runs + 1, "generated once"


def test_keys_belong_to_a_tenant(tmp_path):  # type: ignore[no-untyped-def]
    env = {"RESPONSED_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": ""}
    own = ServerProcess.start(tmp_path, "--auth", "required", env=env)
    try:
        keys = [create_key(env, tenant) for tenant in ("acme", "globex")]
        header = _key()
        answers = []
        for api_key in keys:
            with OpenAI(base_url=own.base_url + "/v1", api_key=api_key, max_retries=0) as sdk:
                answers.append(sdk.responses.create(model="m", input="mine", extra_headers=header))
        assert answers[0].id != answers[1].id  # one key name, two tenants: two responses
    finally:
        own.stop()


def test_concurrent_repeats_make_one_response(server):  # type: ignore[no-untyped-def]
    import concurrent.futures

    key = _key()
    body = {"model": "m", "input": " ".join(f"c{i}" for i in range(80))}

    def post() -> dict:  # type: ignore[type-arg]
        reply = httpx.post(server.base_url + "/v1/responses", json=body, headers=key, timeout=60)
        assert reply.status_code == 200, reply.text
        return reply.json()  # type: ignore[no-any-return]

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: post(), range(4)))
    assert len({a["id"] for a in answers}) == 1
    assert all(a["status"] == "completed" for a in answers)


def test_a_repeated_compact_call_compacts_once(server, client):  # type: ignore[no-untyped-def]
    key = _key()
    history = [
        {"role": "user", "content": "Plan a trip to Lisbon."},
        {"role": "assistant", "content": "Three days: Alfama, Belem, Sintra."},
    ]
    before = _counter(server, "responsed_compactions_compact_total")
    first = client.responses.compact(model="m", input=history, extra_headers=key)
    assert _counter(server, "responsed_compactions_compact_total") == before + 1
    again = client.responses.compact(model="m", input=history, extra_headers=key)
    assert again.id == first.id
    assert again.model_dump() == first.model_dump()
    assert _counter(server, "responsed_compactions_compact_total") == before + 1, "compacted once"
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.compact(model="m", input="another history", extra_headers=key)
    assert caught.value.body["code"] == "idempotency_key_reused"
    # The same key on the create endpoint is bound to the compact call: refused, not answered.
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input=history, extra_headers=key)  # type: ignore[arg-type]
    assert caught.value.body["code"] == "idempotency_key_reused"
    other = client.responses.compact(model="m", input=history, extra_headers=_key())
    assert other.id != first.id
