"""The OpenAPI document: it lists exactly the routes the app has, every schema in it is valid,
and what the server produces (Responses, events, errors) matches it."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema_rs
import pytest

from api.app import create_app
from api.errors import error_response
from api.openapi import STREAM_EVENT_TYPES, build_openapi
from domain.builder import ResponseBuilder
from domain.request import parse_create_request
from domain.response import new_response, usage
from service.settings import Settings

SECURED = Settings(auth="required")
OPEN = Settings()


def _validator(document: dict[str, Any], name: str) -> Any:
    root = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema_rs.Draft202012Validator(root)


def _operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }


def test_the_document_lists_exactly_the_routes_the_app_serves(tmp_path):  # type: ignore[no-untyped-def]
    app = create_app(Settings(data_dir=str(tmp_path)))
    served = {
        (method, re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path))
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if handler.include_in_schema
        for method in handler.http_methods
    }
    assert served == _operations(build_openapi(OPEN))


def test_every_reference_resolves_and_every_schema_is_valid():
    document = build_openapi(SECURED)
    text = json.dumps(document)
    for ref in set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', text)):
        assert ref in document["components"]["schemas"], ref
    for name in document["components"]["schemas"]:
        _validator(document, name)  # compiles: a malformed schema raises here
    jsonschema_rs.meta.validate(document["components"]["schemas"]["CreateResponse"])


def test_protected_operations_document_401_and_open_ones_need_no_key():
    secured = build_openapi(SECURED)
    assert secured["security"] == [{"bearer": []}]
    for path, item in secured["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            if path.startswith("/v1/"):
                assert "401" in operation["responses"], (method, path)
                assert "security" not in operation  # the document-wide bearer applies
            else:
                assert operation["security"] == []
    unsecured = build_openapi(OPEN)
    assert "security" not in unsecured and "securitySchemes" not in unsecured["components"]
    assert all("401" not in op["responses"] for item in unsecured["paths"].values()
               for method, op in item.items() if method != "parameters")


def test_both_variants_of_create_and_retrieve_are_documented():
    paths = build_openapi(OPEN)["paths"]
    for operation in (paths["/v1/responses"]["post"], paths["/v1/responses/{response_id}"]["get"]):
        assert set(operation["responses"]["200"]["content"]) == {
            "application/json", "text/event-stream"}


@pytest.mark.parametrize("request_body", [
    {},
    {"background": True, "store": True},
    {"tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}},
               {"type": "custom", "name": "patch"}, {"type": "web_search"}],
     "tool_choice": {"type": "function", "name": "f"}, "metadata": {"a": "b"},
     "text": {"format": {"type": "json_schema", "name": "x", "schema": {}, "strict": True}},
     "reasoning": {"effort": "low"}, "instructions": "hi", "max_output_tokens": 5,
     "previous_response_id": "resp_x", "user": "u", "temperature": 0.5, "top_p": 1},
])
@pytest.mark.parametrize("ending", ["complete", "incomplete", "fail", "cancel"])
def test_the_responses_and_events_the_builder_makes_match_the_document(
    request_body: dict[str, Any], ending: str
):
    document = build_openapi(OPEN)
    responses = _validator(document, "Response")
    events = _validator(document, "ResponseStreamEvent")
    request = parse_create_request({"model": "m", **request_body})
    builder = ResponseBuilder(new_response("resp_x", request, 1))
    builder.start()
    if request.background:
        builder.begin()
    builder.reasoning("hmm")
    builder.text("hello")
    builder.refusal("no")
    builder.tool_call(0, "call_1", "f", '{"a":')
    builder.tool_call(0, None, None, "1}")
    if ending == "complete":
        builder.complete(usage(1, 2, 1, 0))
    elif ending == "incomplete":
        builder.incomplete("max_output_tokens", usage(1, 2))
    elif ending == "fail":
        builder.fail("server_error", "boom")
    else:
        builder.cancel()
    log = json.loads(json.dumps(builder.drain()))
    assert {e["type"] for e in log} <= set(STREAM_EVENT_TYPES)
    for event in log:
        events.validate(event)
    responses.validate(log[-1]["response"])


def test_error_envelopes_match_the_document():
    document = build_openapi(OPEN)
    validator = _validator(document, "Error")
    for status, param, code in ((400, "model", "invalid_value"), (404, None, None),
                                (429, None, "too_many_in_flight"), (401, None, "x")):
        reply = error_response(status, "message", param=param, code=code)
        validator.validate(json.loads(json.dumps(reply.content)))
    assert not validator.is_valid({"error": {"message": "m", "type": "t", "param": None}})
