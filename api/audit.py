"""GET /v1/audit/tool_calls: the tool-call audit, filtered, in cursor pages."""

from __future__ import annotations

import math
from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.datastructures import State
from pydantic import AfterValidator, Field

from api.auth import principal
from api.http import json_reply, runtime
from api.openapi import reply
from api.params import Flag, Params, QueryModel, Text
from api.schema import ToolCallPage
from domain.ports import ToolCallFilter


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("expected Unix seconds")
    return value


UnixTime = Annotated[float | None, AfterValidator(_finite)]


class ToolCallParams(QueryModel):
    name: Text = Field(None, description="Calls of this tool only.")
    response_id: Text = Field(None, description="Calls made by this response only.")
    conversation_id: Text = Field(None, description="Calls made in this conversation only.")
    status: Text = Field(None, description="Calls with this item status only.")
    has_output: Flag | None = Field(None, description="Whether an output was sent back.")
    created_after: UnixTime = Field(None, description="Unix seconds, inclusive.")
    created_before: UnixTime = Field(None, description="Unix seconds, exclusive.")
    after: Text = Field(None, description="The id of the last call of the previous page.")
    limit: int = Field(20, ge=1, le=100, description="How many calls a page holds.")

    def where(self, owner: str | None) -> ToolCallFilter:
        return ToolCallFilter(
            owner=owner,
            name=self.name,
            response_id=self.response_id,
            conversation_id=self.conversation_id,
            status=self.status,
            has_output=self.has_output,
            since=self.created_after,
            until=self.created_before,
        )


@get(
    "/v1/audit/tool_calls",
    operation_id="listToolCalls",
    summary="List recorded tool calls (an admin key reads every tenant's)",
    description="Oldest first; `after` = the last id of the previous page.",
    tags=["audit"],
    responses={200: reply(ToolCallPage, "A page of tool-call records.")},
)
async def list_tool_calls(
    params: Params[ToolCallParams], request: Request[Any, Any, State], state: State
) -> Response[bytes]:
    who = principal(request)
    # An admin key reads the audit of every tenant; any other key only its own.
    where = params.where(None if who.admin else who.tenant)
    page = await runtime(state).audit.tool_calls(where, after=params.after, limit=params.limit)
    return json_reply(page)
