"""Query-string (and header) parameters, declared once as a model and read strictly.

A handler names the parameters it reads by typing one argument `params: Params[SomeModel]`;
that model's fields are both what the request is checked against and what the OpenAPI document
lists (api.openapi). Each parameter takes one value: sent twice, it is a 400, not a guess.
An empty value of a text parameter means "not given"; unknown parameters are ignored.
A field read from a header instead says so with `Field(alias=..., json_schema_extra=IN_HEADER)`.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal, TypeVar

import annotated_types
from litestar import Request
from litestar.handlers import BaseRouteHandler
from litestar.params import Dependency
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
)

from domain.errors import InvalidRequest

IN_HEADER: dict[str, Any] = {"in": "header"}
MAX_CURSOR = 2**31 - 1


def idempotency_key(description: str) -> Any:
    """The `Idempotency-Key` header field of an operation that takes one."""
    return Field(
        None,
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        json_schema_extra=IN_HEADER,
        description=description,
    )


class QueryModel(BaseModel):
    """The parameters one operation reads; subclass it and declare each as a field."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


M = TypeVar("M", bound=QueryModel)
# The handler's argument: the app's `params` dependency fills it from the request.
Params = Annotated[M, Dependency(skip_validation=True)]


def _empty_is_none(value: Any) -> Any:
    return None if value == "" else value


def _no_nul(value: str | None) -> str | None:
    # NUL cannot be stored in (or compared with) a PostgreSQL text column.
    if value is not None and "\x00" in value:
        raise ValueError("no NUL characters")
    return value


# A free-text parameter (an id, a name, a cursor): empty means absent, NUL is refused.
Text = Annotated[str | None, BeforeValidator(_empty_is_none), AfterValidator(_no_nul)]
Order = Literal["asc", "desc"]
_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _flag(value: Any) -> Any:
    return _FLAGS.get(value.lower(), value) if isinstance(value, str) else value


# A boolean parameter: true/1/yes or false/0/no, any case; any other word is refused.
Flag = Annotated[bool, Strict(), BeforeValidator(_flag)]


class PageParams(QueryModel):
    """Cursor paging, as every list endpoint of the API takes it."""

    after: Text = Field(None, description="The id of the last item of the previous page.")
    limit: int = Field(20, ge=1, le=100, description="How many items a page holds.")
    order: Order = Field("desc", description="`asc`: oldest first; `desc`: newest first.")


def location(model: type[QueryModel], name: str) -> str:
    extra = model.model_fields[name].json_schema_extra
    return str(extra.get("in", "query")) if isinstance(extra, dict) else "query"


@functools.cache
def _keys(model: type[QueryModel]) -> tuple[tuple[str, bool], ...]:
    """(the name a parameter is sent under, whether it is a header) for each field."""
    return tuple(
        (field.alias or name, location(model, name) == "header")
        for name, field in model.model_fields.items()
    )


def parse_params(model: type[M], request: Request[Any, Any, Any]) -> M:
    """The model filled from the request's query string and headers, or an InvalidRequest."""
    raw: dict[str, str] = {}
    query = request.query_params
    for key, in_header in _keys(model):
        values = (request.headers if in_header else query).getall(key, ())
        if len(values) > 1:
            raise InvalidRequest(
                f"Invalid '{key}': expected a single value, but got {len(values)}.",
                param=key,
                code="invalid_value",
            )
        if values:
            raw[key] = values[0]
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise _refusal(model, error) from None


def _bounds(model: type[QueryModel], key: str) -> tuple[Any, Any]:
    field = next(f for n, f in model.model_fields.items() if (f.alias or n) == key)
    low = next((m.ge for m in field.metadata if isinstance(m, annotated_types.Ge)), None)
    high = next((m.le for m in field.metadata if isinstance(m, annotated_types.Le)), None)
    return low, high


_EXPECTED = {
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "bool_parsing": "a boolean",
    "bool_type": "a boolean",
}


def _refusal(model: type[QueryModel], error: ValidationError) -> InvalidRequest:
    first = error.errors(include_url=False)[0]
    key = str(first["loc"][0])
    kind = first["type"]
    given = str(first.get("input", ""))[:50]
    expected = _EXPECTED.get(kind)
    if expected is not None:
        return InvalidRequest(
            f"Invalid '{key}': expected {expected}, but got '{given}'.",
            param=key,
            code="invalid_type",
        )
    message: str
    if kind in ("greater_than_equal", "less_than_equal"):
        low, high = _bounds(model, key)
        message = f"expected a value between {low} and {high}"
    elif kind == "literal_error":
        message = f"expected {first['ctx']['expected']}"
    else:
        message = str(first["msg"]).removeprefix("Value error, ")
    return InvalidRequest(f"Invalid '{key}': {message}.", param=key, code="invalid_value")


def provide_params(request: Request[Any, Any, Any]) -> QueryModel:
    """The `params` dependency: the model the handler's signature names, filled strictly."""
    model = params_model(request.route_handler)
    assert model is not None  # Litestar provides `params` only to handlers that take it
    return parse_params(model, request)


def params_model(handler: BaseRouteHandler) -> type[QueryModel] | None:
    """The QueryModel a handler's `params` argument is typed with, if it takes one."""
    field = handler.parsed_fn_signature.parameters.get("params")
    if field is None:
        return None
    model = field.annotation
    if not (isinstance(model, type) and issubclass(model, QueryModel)):
        raise TypeError(f"{handler}: `params` must be typed Params[<a QueryModel>]")
    return model
