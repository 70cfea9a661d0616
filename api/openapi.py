"""The OpenAPI document, generated from the app's routes and the models their handlers name.

How an endpoint gets into the document (nothing else to edit):

1. Register its handler with the app (api.app), as every route is.
2. Path parameters come from the route path (`/{response_id:str}`); summary, description, tags
   and operationId from the route decorator (`summary=`, `description=`, `tags=` or the
   controller's, `operation_id=`; without one the id is made from the method and path).
3. Query-string and header parameters: type an argument `params: Params[SomeQuery]` with a
   `api.params.QueryModel` (the same model checks the request, so the two cannot disagree).
4. A JSON body: type an argument `payload: Body[SomeModel]` (or `OptionalBody[...]`,
   api.body); the model is the body's schema.
5. The reply: `responses={200: reply(SomeModel, "what it is")}` in the decorator
   (`reply(..., streams=True)` when `stream` makes it text/event-stream); any error status
   beyond the derived ones: `responses={429: refusal("why", retry_after=True)}`.
6. `opt={OPEN: True}` (api.auth) marks a route that needs no key: `security: []`, no 401.

A handler that declares no reply stops the app from starting; tests/unit/test_openapi.py fails
when a route, a parameter, an event type or a raised error code is missing from the document.
WebSocket routes are not HTTP operations and stay out of the document. A new reply shape is a
pydantic model in api.schema (a page: subclass `Page` with a typed `data`); a new event type is
a member of domain.events.EventType; a new error code an entry of api.errors.ERROR_CODES.

Derived without being written: 400 for an operation with parameters or a body, 401 and 429
(failed authentications throttled) when keys are required, 404 when the path names something,
413 and 415 with a body; event types from domain.events; error codes from
api.errors.ERROR_CODES; the limits from the models' fields and from this deployment's settings.
Written by hand here: the document's title and introduction, the default wording of the derived
errors, and the two settings-dependent bounds of a create request (`input` items,
`max_output_tokens`), which no model field holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.routes import HTTPRoute
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.auth import OPEN
from api.body import body_kind
from api.errors import ERROR_CODES
from api.params import QueryModel, location, params_model
from api.schema import Error, ResponseStreamEvent, ServerSentEvent
from api.websocket import OPENAPI_DESCRIPTION as WEBSOCKET_MODE
from service.settings import Settings

Schema = dict[str, Any]
_REF = "#/components/schemas/{model}"


@dataclass
class Reply(ResponseSpec):
    """The success reply: its model, and whether `stream` turns it into an event stream."""

    streams: bool = False


@dataclass
class Refusal(ResponseSpec):
    """An error reply an operation gives beyond the derived ones."""

    retry_after: bool = False


def reply(
    model: type[BaseModel], description: str, *, streams: bool = False,
    media_type: str = "application/json",
) -> Reply:
    return Reply(model, description=description, streams=streams, media_type=media_type)


def refusal(description: str, *, retry_after: bool = False) -> Refusal:
    return Refusal(Error, description=description, retry_after=retry_after)


_DERIVED_ERRORS = {
    400: "Invalid request; `param` names the field or parameter.",
    401: "Missing, unknown or revoked API key.",
    404: "Nothing of that id for this tenant (another tenant's ids answer the same).",
    413: "The body is over {max_body_bytes} bytes.",
    415: "The body was not sent as application/json.",
    429: "Too many failed authentications from this client address; retry after Retry-After "
    "seconds.",
    503: "A storage dependency (the database, Redis) is unavailable; retry after Retry-After "
    "seconds.",
}
_RETRY_AFTER = {
    "Retry-After": {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}
}
_PATH_PARAM = re.compile(r"\{(\w+):\w+\}")


@dataclass
class _Operation:
    path: str
    method: str
    handler: HTTPRouteHandler
    path_params: list[str]


def _operations(app: Litestar) -> Iterator[_Operation]:
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            path = _PATH_PARAM.sub(r"{\1}", route.path)
            for method in sorted(handler.http_methods):
                yield _Operation(path, method.lower(), handler, list(route.path_parameters))


class _Models:
    """Every model the operations name, turned into components in one pass at the end."""

    def __init__(self) -> None:
        self._models: list[type[BaseModel]] = [Error]

    def ref(self, model: type[BaseModel]) -> Schema:
        if model not in self._models:
            self._models.append(model)
        return {"$ref": _REF.format(model=model.__name__)}

    def components(self) -> dict[str, Schema]:
        keys, schema = models_json_schema(
            [(model, "validation") for model in self._models], ref_template=_REF
        )
        components: dict[str, Schema] = schema.get("$defs", {})
        for (model, _), ref in keys.items():
            name = ref["$ref"].rsplit("/", 1)[-1]
            if name != model.__name__:  # pydantic names a clash apart; the document must not
                raise ValueError(f"two models are named {model.__name__}")
        return components


def _parameters(model: type[QueryModel], models: _Models) -> list[Schema]:
    schema = model.model_json_schema(ref_template=_REF)
    required = set(schema.get("required", []))
    out = []
    for name, field_info in model.model_fields.items():
        key = field_info.alias or name
        spec = dict(schema["properties"][key])
        description = spec.pop("description", None)
        spec.pop("title", None)
        parameter: Schema = {"name": key, "in": location(model, name),
                             "required": key in required, "schema": spec}
        if description:
            parameter["description"] = description
        out.append(parameter)
    return out


def _operation_id(op: _Operation) -> str:
    if op.handler.operation_id and isinstance(op.handler.operation_id, str):
        return op.handler.operation_id
    words = re.findall(r"[A-Za-z0-9]+", op.path.replace("{", "by_").replace("}", ""))
    return op.method + "".join(word[:1].upper() + word[1:] for word in words)


def _error(description: str, headers: Schema | None = None) -> Schema:
    reply: Schema = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}},
    }
    if headers:
        reply["headers"] = headers
    return reply


def _replies(op: _Operation, settings: Settings, models: _Models, *, has_input: bool,
             has_body: bool) -> Schema:
    handler = op.handler
    declared = dict(handler.responses or {})
    success = declared.pop(handler.status_code, None)
    model = success.data_container if isinstance(success, Reply) else None
    if not (isinstance(success, Reply) and isinstance(model, type)
            and issubclass(model, BaseModel)):
        raise TypeError(f"{op.method.upper()} {op.path}: declare its reply with "
                        f"responses={{{handler.status_code}: reply(Model, ...)}}")
    content: Schema = {str(success.media_type): {"schema": models.ref(model)}}
    if success.streams:
        content["text/event-stream"] = {"schema": models.ref(ServerSentEvent)}
        models.ref(ResponseStreamEvent)  # the frames' `data`, referenced from ServerSentEvent
    replies: Schema = {str(handler.status_code): {"description": success.description,
                                                  "content": content}}
    derived = {
        400: has_input,
        401: settings.auth_required and not handler.opt.get(OPEN, False),
        404: bool(op.path_params),
        413: has_body,
        415: has_body,
    }
    for status, applies in derived.items():
        if applies:
            text = _DERIVED_ERRORS[status].format(max_body_bytes=settings.max_body_bytes)
            replies[str(status)] = _error(text)
    if derived[401]:  # failed authentications are throttled per address (api.auth)
        replies["429"] = _error(_DERIVED_ERRORS[429], _RETRY_AFTER)
    if op.path.startswith("/v1/"):  # every use case needs the store (api.errors: outages)
        replies["503"] = _error(_DERIVED_ERRORS[503], _RETRY_AFTER)
    for status, spec in sorted(declared.items()):
        headers = _RETRY_AFTER if isinstance(spec, Refusal) and spec.retry_after else None
        if spec.data_container is Error:
            description = spec.description
            if status == 429 and derived[401]:
                description += " Or: " + _DERIVED_ERRORS[429]
            replies[str(status)] = _error(description, headers)
        else:
            assert isinstance(spec.data_container, type)
            replies[str(status)] = {
                "description": spec.description,
                "content": {str(spec.media_type): {"schema": models.ref(spec.data_container)}},
            }
    return dict(sorted(replies.items()))


def _operation(op: _Operation, settings: Settings, models: _Models) -> Schema:
    handler = op.handler
    spec: Schema = {"operationId": _operation_id(op), "tags": sorted(handler.resolve_tags())}
    if handler.summary:
        spec["summary"] = handler.summary
    if handler.description:
        spec["description"] = handler.description
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in op.path_params
    ]
    query = params_model(handler)
    if query is not None:
        parameters += _parameters(query, models)
    if parameters:
        spec["parameters"] = parameters
    body = body_kind(handler)
    if body is not None:
        kind, model = body
        spec["requestBody"] = {
            "required": kind.required,
            "content": {"application/json": {"schema": models.ref(model)}},
        }
    if handler.opt.get(OPEN, False):
        spec["security"] = []
    spec["responses"] = _replies(op, settings, models, has_input=bool(parameters) or
                                 body is not None, has_body=body is not None)
    return spec


def _deployment_limits(components: dict[str, Schema], settings: Settings) -> None:
    """Bounds of a create request that come from this deployment's settings, not the model."""
    create = components["CreateResponse"]["properties"]
    for branch in create["input"]["anyOf"]:
        if branch.get("type") == "array":
            branch["maxItems"] = settings.max_input_items
    for branch in create["max_output_tokens"]["anyOf"]:
        if branch.get("type") == "integer":
            branch["maximum"] = settings.max_output_tokens_ceiling


def _error_codes(components: dict[str, Schema]) -> None:
    table = "\n".join(f"- `{code}`: {meaning}" for code, meaning in ERROR_CODES.items())
    components["Error"]["description"] = (
        "Every failure: OpenAI's error envelope. The codes `error.code` takes:\n" + table
    )


def build_openapi(app: Litestar, settings: Settings) -> dict[str, Any]:
    models = _Models()
    paths: dict[str, Schema] = {}
    for op in _operations(app):
        paths.setdefault(op.path, {})[op.method] = _operation(op, settings, models)
    components = models.components()
    if "CreateResponse" in components:
        _deployment_limits(components, settings)
    _error_codes(components)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "responsed",
            "version": "0.1.0",
            "description": "An event-sourced server for the OpenAI Responses API. Errors always "
            'come as `{"error": {message, type, param, code}}`. Query parameters not listed '
            "here (such as `include[]`) are accepted and ignored.",
        },
        "paths": paths,
        "components": {"schemas": components},
        "x-websocket": WEBSOCKET_MODE,
    }
    if settings.auth_required:
        document["components"]["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key made by `responsed keys create` (rsd_…).",
            }
        }
        document["security"] = [{"bearer": []}]
    return document
