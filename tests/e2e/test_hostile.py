"""Hostile input against a live server (SQLite and PostgreSQL): whatever arrives gets a clean
4xx in OpenAI's envelope, never a 500, and no error shows a trace, SQL or a path."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

LEAKS = re.compile(
    r"Traceback|File \"|\.py\b|sqlalchemy|sqlite|asyncpg|SELECT |INSERT |litestar|uvicorn"
    r"|/(?:home|root|tmp|usr|opt|srv)/|" + re.escape(str(Path(__file__).resolve().parents[2])),
    re.IGNORECASE,
)


@pytest.fixture
def http(server) -> Iterator[httpx.Client]:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client


def _clean(reply: httpx.Response, status: int) -> dict:
    assert reply.status_code == status, reply.text[:500]
    body = reply.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert not LEAKS.search(reply.text), reply.text[:500]
    return body["error"]


def _nested(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"1" + b"}" * (depth - 1)


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"model":"m","input":"x","z":' + b"[" * 2000 + b"]" * 2000 + b"}", "invalid_json"),
        (b'{"model":"m","input":"x","z":' + _nested(80) + b"}", "invalid_value"),
        (b'{"model":"m","tools":[{"type":"function","parameters":' + _nested(70) + b"}]}",
         "invalid_value"),
        (b'{"model":"m","input":"\xff\xfe bad utf-8"}', "invalid_json"),
        (b'{"model":"m","input":"\\ud800 lone surrogate"}', "invalid_json"),
        (b'{"model":"m","input":"x","temperature":NaN}', "invalid_json"),
        (b'{"model":"m","input":"x","max_tool_calls":1e999}', "invalid_json"),
        (b'{"model":"m","max_tool_calls":18446744073709551616}', "invalid_type"),
        (b'{"model":"m","input":[{"type":"function_call_output","output":[[1],{"text":5}]}],'
         b'"max_output_tokens":-1}', "invalid_value"),
        (b"\x00\x01\x02", "invalid_json"),
    ],
)
def test_malformed_and_abusive_bodies(http: httpx.Client, raw: bytes, code: str):
    assert _clean(http.post("/v1/responses", content=raw, headers=JSON), 400)["code"] == code


def test_nesting_at_the_limit_is_accepted(http: httpx.Client):
    raw = b'{"model":"m","input":"x","client_metadata":' + _nested(63) + b"}"
    assert http.post("/v1/responses", content=raw, headers=JSON).status_code == 200


def test_odd_but_valid_values_are_served(http: httpx.Client):
    for body in (
        {"model": "m" * 20_000, "input": "long model name"},
        {"model": "m", "input": "ω" * 50_000},
        {"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f",
                                  "arguments": "{}"},
                                 {"type": "function_call_output", "call_id": "c",
                                  "output": [[1], {"text": 5}, None]}, {"role": "user",
                                                                        "content": "ok"}]},
        {"model": "m", "input": "x", "max_tool_calls": 2**64 - 1, "instructions": "\u0000"},
        {"model": "m", "input": "x", "metadata": {"\u0000": "\u0000"}},
    ):
        reply = http.post("/v1/responses", json=body)
        assert reply.status_code == 200, reply.text[:300]
        assert http.get(f"/v1/responses/{reply.json()['id']}").json() == reply.json()


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("multipart/form-data; boundary=x", 415),
        ("application/xml", 415),
        ("application/json; charset=utf-8", 200),
        ("application/merge-patch+json", 200),
        (None, 200),
    ],
)
def test_content_types(http: httpx.Client, content_type: str | None, status: int):
    headers = {"content-type": content_type} if content_type else {}
    reply = http.post("/v1/responses", content=b'{"model":"m","input":"x"}', headers=headers)
    if status == 200:
        assert reply.status_code == 200, reply.text
    else:
        assert _clean(reply, status)["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    ("query", "headers", "param"),
    [
        ("stream=maybe", {}, "stream"),
        ("stream=", {}, "stream"),
        ("stream=true&starting_after=", {}, "starting_after"),
        ("stream=true&starting_after=1.5", {}, "starting_after"),
        ("stream=true&starting_after=-2", {}, "starting_after"),
        ("stream=true&starting_after=1&starting_after=2", {}, "starting_after"),
        ("starting_after=abc", {}, "starting_after"),
        ("stream=true", {"Last-Event-ID": "abc"}, "Last-Event-ID"),
        ("stream=true", {"Last-Event-ID": "9" * 30}, "Last-Event-ID"),
        ("stream=true&stream=false", {}, "stream"),
    ],
)
def test_malformed_stream_parameters(http: httpx.Client, query: str, headers: dict, param: str):
    created = http.post("/v1/responses", json={"model": "m", "input": "x"}).json()
    reply = http.get(f"/v1/responses/{created['id']}?{query}", headers=headers)
    assert _clean(reply, 400)["param"] == param


@pytest.mark.parametrize("query", ["limit=", "limit=1&limit=2", "order=", "order=sideways"])
def test_malformed_list_parameters(http: httpx.Client, query: str):
    created = http.post("/v1/responses", json={"model": "m", "input": "x"}).json()
    _clean(http.get(f"/v1/responses/{created['id']}/input_items?{query}"), 400)


def test_a_resume_past_the_end_of_a_finished_stream_ends(http: httpx.Client):
    created = http.post("/v1/responses", json={"model": "m", "input": "x"}).json()
    for cursor in ("100", str(2**31 - 1)):
        reply = http.get(f"/v1/responses/{created['id']}?stream=true&starting_after={cursor}")
        assert reply.status_code == 200
        assert reply.text == "data: [DONE]\n\n"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/responses/" + "x" * 8000,
        "/v1/responses/%00%01",
        "/v1/responses/resp_%E2%80%AE/input_items",
        "/v1/responses/..%2F..%2Fetc%2Fpasswd",
        "/v1/responses/resp_x/input_items?after=" + "a" * 5000,
    ],
)
def test_odd_paths_are_404_without_internals(http: httpx.Client, path: str):
    _clean(http.get(path), 404)
    if not path.endswith("input_items") and "?" not in path:
        _clean(http.delete(path), 404)


def test_wrong_methods_are_405_in_the_envelope(http: httpx.Client):
    for method, path in (("PUT", "/v1/responses"), ("PATCH", "/v1/responses/resp_x"),
                         ("GET", "/v1/responses/resp_x/cancel")):
        _clean(http.request(method, path), 405)


def test_conversation_bodies_follow_the_same_rules(http: httpx.Client):
    deep = b'{"metadata":' + _nested(200) + b"}"
    assert _clean(http.post("/v1/conversations", content=deep, headers=JSON), 400)
    items = b'{"items":[{"type":"function_call_output","call_id":"c","output":' + _nested(
        300) + b"}]}"
    created = http.post("/v1/conversations", json={}).json()
    reply = http.post(f"/v1/conversations/{created['id']}/items", content=items, headers=JSON)
    assert _clean(reply, 400)
