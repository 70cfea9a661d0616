"""GET /v1/audit/tool_calls: the tool-call audit, filtered, in cursor pages."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State

from api.auth import principal
from api.routes import _int_param, _json, _runtime
from domain.errors import InvalidRequest
from storage.audit_store import ToolCallFilter


def _bool_param(value: str | None, name: str) -> bool | None:
    if value is None or value == "":
        return None
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidRequest(
        f"Invalid '{name}': expected true or false.", param=name, code="invalid_value"
    )


def _time_param(value: str | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise InvalidRequest(
            f"Invalid '{name}': expected Unix seconds, but got '{value[:50]}'.",
            param=name,
            code="invalid_type",
        ) from None


def _text_param(value: str | None, name: str) -> str | None:
    if value is not None and "\x00" in value:
        raise InvalidRequest(
            f"Invalid '{name}': no NUL characters.", param=name, code="invalid_value"
        )
    return value or None


def tool_call_filter(query: Any, owner: str | None) -> ToolCallFilter:
    return ToolCallFilter(
        owner=owner,
        name=_text_param(query.get("name"), "name"),
        response_id=_text_param(query.get("response_id"), "response_id"),
        conversation_id=_text_param(query.get("conversation_id"), "conversation_id"),
        status=_text_param(query.get("status"), "status"),
        has_output=_bool_param(query.get("has_output"), "has_output"),
        since=_time_param(query.get("created_after"), "created_after"),
        until=_time_param(query.get("created_before"), "created_before"),
    )


@get(
    "/v1/audit/tool_calls",
    summary="List recorded tool calls",
    description="Filters: name, response_id, conversation_id, status, has_output, "
    "created_after / created_before (Unix seconds). Oldest first; `after` = the last id of "
    "the previous page, `limit` 1..100 (default 20).",
    tags=["audit"],
)
async def list_tool_calls(request: Request[Any, Any, State], state: State) -> Response[bytes]:
    query = request.query_params
    limit = _int_param(query.get("limit"), "limit", minimum=1, maximum=100) or 20
    who = principal(request)
    # An admin key reads the audit of every tenant; any other key only its own.
    where = tool_call_filter(query, None if who.admin else who.tenant)
    page = await _runtime(state).audit.tool_calls(
        where, after=_text_param(query.get("after"), "after"), limit=limit
    )
    return _json(page)
