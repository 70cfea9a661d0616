"""Whatever a client sends, it gets OpenAI's error envelope with the right status, never a 500."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import MAX_BODY


@pytest.fixture
def http(server) -> httpx.Client:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield client


def _error(reply: httpx.Response, status: int) -> dict:
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    return body["error"]


def test_missing_model(http: httpx.Client):
    error = _error(http.post("/v1/responses", json={"input": "hi"}), 400)
    assert (error["param"], error["code"]) == ("model", "missing_required_parameter")
    assert error["type"] == "invalid_request_error"


def test_malformed_json(http: httpx.Client):
    reply = http.post(
        "/v1/responses",
        content=b'{"model": "m", "input": ',
        headers={"content-type": "application/json"},
    )
    assert _error(reply, 400)["code"] == "invalid_json"


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00", b"[]", b"null", b'"model"'])
def test_bodies_that_are_not_objects(http: httpx.Client, content: bytes):
    _error(http.post("/v1/responses", content=content), 400)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "temperature": "warm"}, "temperature"),
        ({"model": "m", "input": {"role": "user"}}, "input"),
        ({"model": "m", "input": [{"role": "user", "content": None}]}, "input[0].content"),
        ({"model": "m", "stream": "yes"}, "stream"),
        ({"model": "m", "metadata": {"a": "b" * 600}}, "metadata"),
        ({"model": "m", "background": True, "store": False}, "background"),
    ],
)
def test_wrong_values_name_the_param(http: httpx.Client, body: dict, param: str):
    assert _error(http.post("/v1/responses", json=body), 400)["param"] == param


def test_stream_request_validation_errors_are_plain_json(http: httpx.Client):
    reply = http.post("/v1/responses", json={"stream": True, "input": "x"})
    assert reply.headers["content-type"].startswith("application/json")
    _error(reply, 400)


def test_body_over_the_limit(http: httpx.Client):
    big = {"model": "m", "input": "x" * (int(MAX_BODY) + 10)}
    assert _error(http.post("/v1/responses", json=big), 413)["code"] == "request_too_large"


def test_unknown_fields_and_tools_are_ignored(http: httpx.Client):
    reply = http.post(
        "/v1/responses",
        json={
            "model": "m",
            "input": "ok",
            "client_metadata": {"a": 1},
            "prompt_cache_key": "k",
            "safety_identifier": "u1",
            "user": "u",
            "include": ["reasoning.encrypted_content"],
            "tools": [{"type": "web_search"}, {"type": "tool_search"}],
            "text": {"format": {"type": "json_object"}},
        },
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["output"][0]["content"][0]["text"] == "ok"
    assert body["prompt_cache_key"] == "k" and body["safety_identifier"] == "u1"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/responses/resp_missing",
        "/v1/responses/resp_missing/input_items",
        "/v1/responses/resp_missing?stream=true",
    ],
)
def test_unknown_ids_are_404(http: httpx.Client, path: str):
    error = _error(http.get(path), 404)
    assert "resp_missing" in error["message"]


def test_unknown_route_and_method(http: httpx.Client):
    _error(http.get("/v1/nothing-here"), 404)
    _error(http.put("/v1/responses"), 405)


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("stream=true&starting_after=abc", "starting_after"),
        ("stream=true&starting_after=-5", "starting_after"),
        ("stream=true&starting_after=99999999999999999999", "starting_after"),
    ],
)
def test_bad_resume_cursor(http: httpx.Client, query: str, param: str):
    created = http.post("/v1/responses", json={"model": "m", "input": "x"}).json()
    error = _error(http.get(f"/v1/responses/{created['id']}?{query}"), 400)
    assert error["param"] == param


@pytest.mark.parametrize(
    ("query", "param"),
    [("limit=0", "limit"), ("limit=101", "limit"), ("limit=x", "limit"), ("order=up", "order")],
)
def test_bad_list_params(http: httpx.Client, query: str, param: str):
    created = http.post("/v1/responses", json={"model": "m", "input": "x"}).json()
    error = _error(http.get(f"/v1/responses/{created['id']}/input_items?{query}"), 400)
    assert error["param"] == param


def test_failed_input_leaves_stored_responses_intact(http: httpx.Client):
    created = http.post("/v1/responses", json={"model": "m", "input": "keep me"}).json()
    for bad in (
        {"model": "m", "previous_response_id": created["id"], "input": 5},
        {"model": "m", "input": [{"role": "nobody"}]},
    ):
        _error(http.post("/v1/responses", json=bad), 400)
    assert http.get(f"/v1/responses/{created['id']}").json() == created


def test_health_and_docs(http: httpx.Client):
    assert http.get("/healthz").json()["status"] == "ok"
    schema = http.get("/docs/openapi.json")
    assert schema.status_code == 200
    assert "/v1/responses" in schema.json()["paths"]
    assert http.get("/docs/swagger").status_code == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m\u0000x", "input": "hi"}, "model"),
        ({"model": "m", "input": [{"role": "user", "content": "x", "id": "msg_\u0000"}]},
         "input[0].id"),
        ({"model": "m", "input": [{"role": "user", "content": "x", "id": "m" * 300}]},
         "input[0].id"),
        ({"model": "m", "input": [{"role": "user", "content": "x", "id": 5}]}, "input[0].id"),
    ],
)
def test_values_the_database_cannot_hold_are_rejected(http: httpx.Client, body: dict, param: str):
    assert _error(http.post("/v1/responses", json=body), 400)["param"] == param


def test_nul_in_ids_and_cursors(http: httpx.Client):
    _error(http.get("/v1/responses/resp_%00x"), 404)
    _error(http.get("/v1/responses/resp_%00x/input_items"), 404)
    created = http.post("/v1/responses", json={"model": "m", "input": "x"}).json()
    _error(http.get(f"/v1/responses/{created['id']}/input_items?after=%00"), 400)


def test_long_names_and_texts_are_stored(http: httpx.Client):
    model = "org/" + "m" * 400
    body = {"model": model, "input": [{"role": "user", "content": "é" * 5000, "id": "i" * 256}],
            "metadata": {"k": "v" * 512}}
    created = http.post("/v1/responses", json=body)
    assert created.status_code == 200, created.text
    fetched = http.get(f"/v1/responses/{created.json()['id']}").json()
    assert fetched["model"] == model and fetched["status"] == "completed"
    items = http.get(f"/v1/responses/{fetched['id']}/input_items").json()["data"]
    assert items[0]["id"] == "i" * 256


def test_conversation_endpoints_answer_in_the_envelope(http: httpx.Client):
    assert _error(http.get("/v1/conversations/conv_nope"), 404)["param"] == "conversation_id"
    assert _error(http.get("/v1/conversations/conv_nope/items"), 404)
    error = _error(http.post("/v1/conversations", json={"metadata": "x"}), 400)
    assert error["param"] == "metadata"
    error = _error(http.post("/v1/conversations", json={"items": [{"type": "function_call"}]}), 400)
    assert error["param"] == "items[0].call_id"
    created = http.post("/v1/conversations", json={}).json()
    many = {"items": [{"role": "user", "content": "x"}] * 21}
    assert (
        _error(http.post(f"/v1/conversations/{created['id']}/items", json=many), 400)["param"]
        == "items"
    )
    assert (
        _error(http.get(f"/v1/conversations/{created['id']}/items", params={"order": "up"}), 400)[
            "param"
        ]
        == "order"
    )
    assert _error(http.get(f"/v1/conversations/{created['id']}/items/msg_nope"), 404)
    assert _error(http.post(f"/v1/conversations/{created['id']}", json={}), 400)["param"] == (
        "metadata"
    )


def test_bad_tools_and_tool_inputs(http: httpx.Client):
    def post(**body):  # type: ignore[no-untyped-def]
        return http.post("/v1/responses", json={"model": "m", "input": "hi", **body})

    assert _error(post(tools=[{"type": "function"}]), 400)["param"] == "tools[0].name"
    assert _error(post(tools="x"), 400)["param"] == "tools"
    assert _error(post(tool_choice="sometimes"), 400)["param"] == "tool_choice"
    assert (
        _error(post(input=[{"type": "function_call_output", "call_id": "c1", "output": "x"}]), 400)[
            "param"
        ]
        == "input[0]"
    )
    assert _error(post(conversation={"nope": 1}), 400)["param"] == "conversation.id"
    assert _error(post(conversation="conv_x", store=False), 400)["param"] == "store"
    assert _error(http.get("/v1/audit/tool_calls", params={"limit": "0"}), 400)["param"] == (
        "limit"
    )
    assert (
        _error(http.get("/v1/audit/tool_calls", params={"created_after": "soon"}), 400)["param"]
        == "created_after"
    )


@pytest.mark.parametrize(
    ("path", "query", "param"),
    [
        ("/v1/responses/{response}", "stream=false&stream=true", "stream"),
        ("/v1/responses/{response}/input_items", "limit=1&limit=2", "limit"),
        ("/v1/conversations/{conversation}/items", "order=asc&order=desc", "order"),
        ("/v1/conversations/{conversation}/items", "after=a&after=b", "after"),
        ("/v1/audit/tool_calls", "limit=1&limit=2", "limit"),
        ("/v1/audit/tool_calls", "name=a&name=b", "name"),
        ("/v1/audit/tool_calls", "has_output=true&has_output=false", "has_output"),
    ],
)
def test_a_repeated_query_parameter_is_refused(
    http: httpx.Client, path: str, query: str, param: str
):
    response = http.post("/v1/responses", json={"model": "m", "input": "x"}).json()["id"]
    conversation = http.post("/v1/conversations", json={}).json()["id"]
    url = path.format(response=response, conversation=conversation)
    error = _error(http.get(f"{url}?{query}"), 400)
    assert (error["param"], error["code"]) == (param, "invalid_value")
    assert "single value" in error["message"]
