"""Query and header parameters read strictly from their one declaration (api.params)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from litestar.datastructures import Headers, MultiDict

from api.audit import ToolCallParams
from api.params import PageParams, parse_params
from api.routes import RetrieveParams
from domain.errors import InvalidRequest


def _request(query: list[tuple[str, str]], headers: dict[str, str] | None = None) -> Any:
    return SimpleNamespace(query_params=MultiDict(query), headers=Headers(headers or {}))


def _refusal(model: Any, query: list[tuple[str, str]], **headers: str) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse_params(model, _request(query, headers))
    return caught.value


def test_defaults_and_values():
    assert parse_params(PageParams, _request([])) == PageParams(after=None, limit=20, order="desc")
    page = parse_params(PageParams, _request([("after", "msg_1"), ("limit", "5"),
                                              ("order", "asc"), ("include[]", "x")]))
    assert (page.after, page.limit, page.order) == ("msg_1", 5, "asc")
    assert parse_params(PageParams, _request([("after", "")])).after is None


@pytest.mark.parametrize(("query", "param", "code", "message"), [
    ([("limit", "1"), ("limit", "2")], "limit", "invalid_value", "expected a single value"),
    ([("limit", "x")], "limit", "invalid_type", "expected an integer, but got 'x'"),
    ([("limit", "")], "limit", "invalid_type", "expected an integer"),
    ([("limit", "0")], "limit", "invalid_value", "expected a value between 1 and 100"),
    ([("limit", "101")], "limit", "invalid_value", "expected a value between 1 and 100"),
    ([("order", "up")], "order", "invalid_value", "expected 'asc' or 'desc'"),
    ([("after", "a\x00b")], "after", "invalid_value", "no NUL characters"),
])
def test_page_refusals_name_the_parameter(
    query: list[tuple[str, str]], param: str, code: str, message: str
):
    error = _refusal(PageParams, query)
    assert (error.param, error.code) == (param, code)
    assert message in error.message and error.message.startswith(f"Invalid '{param}'")


def test_cursors_from_the_query_and_the_header():
    params = parse_params(RetrieveParams, _request([("stream", "true"), ("starting_after", "3")],
                                                   {"last-event-id": "7"}))
    assert (params.stream, params.starting_after, params.last_event_id) == (True, 3, 7)
    error = _refusal(RetrieveParams, [("starting_after", "-5")])
    assert error.param == "starting_after" and "between -1 and 2147483647" in error.message
    assert _refusal(RetrieveParams, [], **{"Last-Event-ID": "x"}).param == "Last-Event-ID"
    assert _refusal(RetrieveParams, [("stream", "maybe")]).code == "invalid_type"
    for word in ("on", "off", "t", ""):  # pydantic's lax booleans are not the README's
        assert _refusal(RetrieveParams, [("stream", word)]).param == "stream"
    assert parse_params(RetrieveParams, _request([("stream", "YES")])).stream is True


@pytest.mark.parametrize(("query", "param"), [
    ([("has_output", "maybe")], "has_output"),
    ([("created_after", "soon")], "created_after"),
    ([("created_before", "nan")], "created_before"),
    ([("name", "a"), ("name", "b")], "name"),
])
def test_audit_filters_are_as_strict(query: list[tuple[str, str]], param: str):
    assert _refusal(ToolCallParams, query).param == param


def test_audit_filters_fill_the_store_filter():
    params = parse_params(ToolCallParams, _request([("name", "lookup"), ("has_output", "false"),
                                                    ("created_after", "10.5")]))
    where = params.where("tenant")
    assert (where.owner, where.name, where.has_output, where.since) == (
        "tenant", "lookup", False, 10.5)
