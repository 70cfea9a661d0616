"""JSON request bodies: the media type, the parse and the nesting limit, in one place.

A handler that takes a body types one argument `payload: Body[SomeModel]` (or
`OptionalBody[SomeModel]` when an empty body is allowed); the app's `payload` dependency fills it
with the parsed JSON. The model is what the OpenAPI document shows for the body; validating the
JSON against the real rules stays with the use case (the domain models name every field that is
wrong in OpenAI's words).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Generic, TypeVar, get_origin

import orjson
from litestar import Request
from litestar.handlers import BaseRouteHandler
from litestar.params import Dependency
from pydantic import BaseModel

from domain.errors import InvalidRequest, UnsupportedMediaType
from domain.limits import check_depth

JSON = "application/json"
B = TypeVar("B", bound=BaseModel)
# A body larger than this is parsed and walked in a thread.
_INLINE_PARSE_BYTES = 1024 * 1024


class JsonBody(Generic[B]):
    """The parsed JSON of a request body that `B` documents."""

    __slots__ = ("json",)
    required = True

    def __init__(self, json: Any) -> None:
        self.json = json


class OptionalJsonBody(JsonBody[B]):
    """A body that may be left empty: it then reads as `{}`."""

    required = False


Body = Annotated[JsonBody[B], Dependency(skip_validation=True)]
OptionalBody = Annotated[OptionalJsonBody[B], Dependency(skip_validation=True)]


def check_json_type(request: Request[Any, Any, Any]) -> None:
    """JSON bodies only; a missing Content-Type is read as JSON, as curl users expect."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type != JSON and not (
        content_type.startswith("application/") and content_type.endswith("+json")
    ):
        raise UnsupportedMediaType(
            f"Unsupported Content-Type '{content_type[:100]}': send the body as application/json.",
            code="unsupported_media_type",
        )


def parse_json(raw: bytes) -> Any:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly.)",
            code="invalid_json",
        ) from None
    check_depth(body)
    return body


async def parse_json_off_loop(raw: bytes) -> Any:
    """`parse_json`; a body of megabytes takes a while to parse and walk, so in a thread: the
    event loop keeps every running stream flowing meanwhile."""
    if len(raw) > _INLINE_PARSE_BYTES:
        return await asyncio.to_thread(parse_json, raw)
    return parse_json(raw)


def body_kind(handler: BaseRouteHandler) -> tuple[type[JsonBody[Any]], type[BaseModel]] | None:
    """(JsonBody or OptionalJsonBody, the documenting model) of a handler's `payload`."""
    field = handler.parsed_fn_signature.parameters.get("payload")
    if field is None:
        return None
    kind = get_origin(field.annotation) or field.annotation
    args = field.inner_types
    if not (isinstance(kind, type) and issubclass(kind, JsonBody) and args):
        raise TypeError(f"{handler}: `payload` must be typed Body[<a model>] or OptionalBody[...]")
    return kind, args[0].annotation


async def provide_body(request: Request[Any, Any, Any]) -> JsonBody[Any]:
    """The `payload` dependency: the request's JSON, checked for media type, syntax and depth."""
    described = body_kind(request.route_handler)
    assert described is not None  # Litestar provides `payload` only to handlers that take it
    kind = described[0]
    if kind.required:
        check_json_type(request)
        return kind(await parse_json_off_loop(await request.body()))
    raw = await request.body()
    if not raw.strip():
        return kind({})
    check_json_type(request)
    return kind(await parse_json_off_loop(raw))
