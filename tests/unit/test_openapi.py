"""The OpenAPI document: generated from the app, it lists every route, parameter, event type and
error code the server has; every schema in it is valid, and what the server produces
(Responses, events, errors) matches it."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from litestar import Litestar, Response, get, post
from litestar.di import Provide
from litestar.routes import HTTPRoute
from pydantic import BaseModel, Field

from api.app import create_app
from api.body import Body, provide_body
from api.errors import error_response
from api.openapi import build_openapi, refusal, reply
from api.params import Params, QueryModel, location, params_model, provide_params
from api.schema import ItemPage
from domain.builder import ResponseBuilder
from domain.errors import ResponsedError
from domain.events import EventType
from domain.request import parse_create_request
from domain.response import new_response, usage
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("api", "domain", "service", "storage", "worker", "cli")
SECURED = Settings(auth="required")
OPEN = Settings()
# What a handler may take besides its documented `params` and `payload`: Litestar's own.
UNDOCUMENTED_ARGUMENTS = {"self", "request", "state", "params", "payload"}


class ThingQuery(QueryModel):
    kind: str | None = Field(None, description="Things of this kind only.")
    limit: int = Field(20, ge=1, le=50)


class NewThing(BaseModel):
    name: str = Field(max_length=10)


@get("/v1/things", responses={200: reply(ItemPage, "A page of things.")})
async def list_things(params: Params[ThingQuery]) -> Response[bytes]:
    raise NotImplementedError


@post("/v1/things", status_code=200, responses={
    200: reply(ItemPage, "The thing."), 409: refusal("It exists.")})
async def add_thing(payload: Body[NewThing]) -> Response[bytes]:
    raise NotImplementedError


@get("/v1/undocumented")
async def undocumented() -> Response[bytes]:
    raise NotImplementedError


def _app(*handlers: Any) -> Litestar:
    return Litestar(list(handlers), openapi_config=None, dependencies={
        "params": Provide(provide_params, sync_to_thread=False),
        "payload": Provide(provide_body)})


def test_a_new_endpoint_is_documented_from_its_types_alone():
    document = build_openapi(_app(list_things, add_thing), SECURED)
    listing, adding = (document["paths"]["/v1/things"][m] for m in ("get", "post"))
    assert listing["parameters"] == [
        {"name": "kind", "in": "query", "required": False,
         "description": "Things of this kind only.",
         "schema": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}},
        {"name": "limit", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 1, "maximum": 50, "default": 20}},
    ]
    # 429: failed authentications are throttled; 503: every /v1 use case
    assert set(listing["responses"]) == {"200", "400", "401", "429", "503"}
    assert adding["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NewThing"}
    assert set(adding["responses"]) == {
        "200", "400", "401", "409", "413", "415", "429", "503"}
    assert document["components"]["schemas"]["NewThing"]["properties"]["name"]["maxLength"] == 10


def test_a_handler_that_does_not_declare_its_reply_stops_the_app():
    with pytest.raises(TypeError, match="declare its reply"):
        build_openapi(_app(undocumented), OPEN)


def _document(settings: Settings) -> dict[str, Any]:
    return create_app(settings).state.openapi  # type: ignore[no-any-return]


def _validator(document: dict[str, Any], name: str) -> Any:
    root = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema_rs.Draft202012Validator(root)


def _sources() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text())) for folder in PRODUCT
            for path in sorted((ROOT / folder).rglob("*.py"))]


def _served() -> list[tuple[str, str, Any, Any]]:
    app = create_app(OPEN)
    return [
        (method.lower(), re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path), route, handler)
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if handler.resolve_include_in_schema()
        for method in handler.http_methods
    ]


def test_every_route_and_every_parameter_it_reads_is_documented():
    paths = _document(SECURED)["paths"]
    served = _served()
    assert {(m, p) for m, p, _, _ in served} == {
        (m, p) for p, item in paths.items() for m in item}
    for method, path, route, handler in served:
        documented = {(x["in"], x["name"]) for x in paths[path][method].get("parameters", [])}
        for name in route.path_parameters:
            assert ("path", name) in documented, (method, path, name)
        # A parameter Litestar would read straight from the signature is not in the document.
        extra = set(handler.parsed_fn_signature.parameters) - UNDOCUMENTED_ARGUMENTS
        assert extra <= set(route.path_parameters), (method, path, extra)
        model = params_model(handler)
        for name, field in (model.model_fields.items() if model else ()):
            assert (location(model, name), field.alias or name) in documented, (path, name)


def test_no_handler_reads_the_query_string_or_body_by_hand():
    """Reading them through api.params / api.body is what makes them strict and documented."""
    readers = {"params.py", "body.py"}
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path, tree in _sources() if path.parent.name == "api" and path.name not in readers
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in ("query_params", "body", "json")
        and isinstance(node.value, ast.Name) and node.value.id == "request"
    ]
    assert offenders == []


# Names shaped like event types that are not server events: WebSocket client messages, and
# the object an input token count is.
NOT_EVENTS = {"response.create", "response.processed", "response.steer", "response.input_tokens"}


def _event_literals() -> set[str]:
    found = {
        node.value
        for _, tree in _sources()
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        and re.fullmatch(r"response\.[a-z_]+(\.[a-z_]+)?", node.value)
    }
    return found - NOT_EVENTS


def test_every_event_type_the_server_knows_is_documented():
    document = _document(OPEN)
    documented = set(document["components"]["schemas"]["EventType"]["enum"])
    assert documented == {e.value for e in EventType}
    assert {"response.custom_tool_call_input.delta", "response.custom_tool_call_input.done"} <= (
        documented)
    # A type written out anywhere else in the product must be one of them too (the compacted
    # response's `object`, "response.compaction", looks like one and is not an event).
    assert _event_literals() - {"response.compaction"} <= documented


def _codes_in(node: ast.AST | None) -> set[str]:
    if node is None:
        return set()
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)}


def _error_makers(trees: list[ast.Module]) -> dict[str, int | None]:
    """Callables that make an error envelope -> the position of their `code` argument (None:
    keyword only): the ResponsedError classes, error_response, and helpers returning one."""
    classes, todo = set(), [ResponsedError]
    while todo:
        cls = todo.pop()
        classes.add(cls.__name__)
        todo += cls.__subclasses__()
    makers: dict[str, int | None] = {name: 1 for name in classes} | {"error_response": None}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and ast.unparse(node.returns or ast.Pass()) in (
                classes
            ):
                names = [a.arg for a in node.args.args]
                makers[node.name] = names.index("code") if "code" in names else None
    return makers


def _raised_codes() -> set[str]:
    """Every error code written in the product: the `code` argument of whatever makes an error
    envelope, and what is assigned to a `code` variable (passed on to one)."""
    trees = [tree for _, tree in _sources()]
    makers = _error_makers(trees)
    codes: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                if name not in makers:
                    continue
                codes |= set().union(*(_codes_in(k.value) for k in node.keywords
                                       if k.arg == "code"))
                slot = makers[name]
                if slot is not None and name[0].islower() and slot < len(node.args):
                    codes |= _codes_in(node.args[slot])
            elif isinstance(node, ast.FunctionDef) and node.name in makers:
                names = [a.arg for a in node.args.args]
                defaults = dict(zip(names[::-1], node.args.defaults[::-1], strict=False))
                codes |= _codes_in(defaults.get("code"))
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id == "code":
                        codes |= _codes_in(node.value)
                    elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                        for t, v in zip(target.elts, node.value.elts, strict=False):
                            if isinstance(t, ast.Name) and t.id == "code":
                                codes |= _codes_in(v)
    return codes


def test_every_error_code_the_server_raises_is_documented():
    document = _document(OPEN)
    code = document["components"]["schemas"]["ErrorDetail"]["properties"]["code"]
    documented = set(next(b["enum"] for b in code["anyOf"] if "enum" in b))
    raised = _raised_codes()
    assert {"invalid_api_key", "too_many_in_flight", "not_found", "invalid_type"} <= raised
    missing = raised - documented
    assert not missing, f"error codes raised but not in api.errors.ERROR_CODES: {missing}"
    assert documented == raised, f"documented but never raised: {documented - raised}"


def test_every_reference_resolves_and_every_schema_is_valid():
    document = _document(SECURED)
    text = json.dumps(document)
    for ref in set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', text)):
        assert ref in document["components"]["schemas"], ref
    for name in document["components"]["schemas"]:
        _validator(document, name)  # compiles: a malformed schema raises here
    jsonschema_rs.meta.validate(document["components"]["schemas"]["CreateResponse"])


def test_the_create_bounds_are_the_models_and_the_deployments():
    settings = Settings(max_input_items=7, max_output_tokens_ceiling=99)
    create = _document(settings)["components"]["schemas"]["CreateResponse"]["properties"]
    assert {"type": "array", "items": {}, "maxItems": 7} in create["input"]["anyOf"]
    assert {"type": "integer", "minimum": 1, "maximum": 99} in create["max_output_tokens"]["anyOf"]
    assert {"type": "number", "minimum": 0, "maximum": 2} in create["temperature"]["anyOf"]
    assert any(b.get("maxProperties") == 16 for b in create["metadata"]["anyOf"])


def test_protected_operations_document_401_and_open_ones_need_no_key():
    secured = _document(SECURED)
    assert secured["security"] == [{"bearer": []}]
    for path, item in secured["paths"].items():
        for method, operation in item.items():
            if path.startswith("/v1/"):
                assert "401" in operation["responses"], (method, path)
                assert "security" not in operation  # the document-wide bearer applies
            else:
                assert operation["security"] == []
    unsecured = _document(OPEN)
    assert "security" not in unsecured and "securitySchemes" not in unsecured["components"]
    assert all("401" not in op["responses"] for item in unsecured["paths"].values()
               for op in item.values())


def test_both_variants_of_create_and_retrieve_are_documented():
    paths = _document(OPEN)["paths"]
    for operation in (paths["/v1/responses"]["post"], paths["/v1/responses/{response_id}"]["get"]):
        assert set(operation["responses"]["200"]["content"]) == {
            "application/json", "text/event-stream"}


def test_paging_parameters_are_one_definition():
    paths = _document(OPEN)["paths"]
    pages = [paths["/v1/responses/{response_id}/input_items"]["get"],
             paths["/v1/conversations/{conversation_id}/items"]["get"]]
    query = [[p for p in op["parameters"] if p["in"] == "query"] for op in pages]
    assert query[0] == query[1]
    limit = next(p for p in query[0] if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}


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
    document = _document(OPEN)
    responses = _validator(document, "Response")
    events = _validator(document, "ResponseStreamEvent")
    frames = _validator(document, "ServerSentEvent")
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
    builder.tool_call(1, "call_2", "patch", '{"input": "*** Begin Patch"}')
    if ending == "complete":
        builder.complete(usage(1, 2, 1, 0))
    elif ending == "incomplete":
        builder.incomplete("max_output_tokens", usage(1, 2))
    elif ending == "fail":
        builder.fail("server_error", "boom")
    else:
        builder.cancel()
    log = json.loads(json.dumps(builder.drain()))
    for event in log:
        events.validate(event)
        frames.validate({"id": str(event["sequence_number"]), "event": event["type"],
                         "data": json.dumps(event)})
    responses.validate(log[-1]["response"])
    if request.tools:
        assert "response.custom_tool_call_input.done" in {e["type"] for e in log}
    assert not events.is_valid({**log[0], "type": "response.unheard_of"})


def test_error_envelopes_match_the_document():
    document = _document(OPEN)
    validator = _validator(document, "Error")
    for status, param, code in ((400, "model", "invalid_value"), (404, None, None),
                                (429, None, "too_many_in_flight"), (401, None, "invalid_api_key")):
        reply = error_response(status, "message", param=param, code=code)
        validator.validate(json.loads(json.dumps(reply.content)))
    assert not validator.is_valid({"error": {"message": "m", "type": "t", "param": None}})
    assert not validator.is_valid(
        {"error": {"message": "m", "type": "t", "param": None, "code": "no_such_code"}})
