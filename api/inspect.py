"""The inspector's API: list responses, page or follow a response's event log, check hash
chains, recent activity; and the web UI's page and static files at /inspect."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.response import Stream
from pydantic import Field

from api import sse
from api.audit import UnixTime
from api.auth import OPEN, principal
from api.http import json_reply, runtime
from api.openapi import refusal, reply
from api.params import MAX_CURSOR, Flag, PageParams, Params, QueryModel, Text
from api.schema import Activity, ChainVerification, EventPage, ResponsePage
from domain.errors import NotFound
from domain.ports import ResponseFilter
from service.inspect import InspectService, reader_scope

UI = Path(__file__).with_name("inspector_ui")
# The page loads only its own files: no CDN, no inline script, nothing from elsewhere.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
_OTHER_TENANT = refusal("A tenant other than the key's own, asked for by a non-admin key.")
Status = Literal["queued", "in_progress", "completed", "failed", "cancelled", "incomplete"]


def _inspect(state: State) -> InspectService:
    inspect = runtime(state).inspect
    assert inspect is not None  # every API process has one
    return inspect


class ResponseFilterParams(QueryModel):
    status: Status | None = Field(None, description="Responses in this status only.")
    model: Text = Field(None, description="Responses of this model only.")
    conversation_id: Text = Field(None, description="Responses in this conversation only.")
    previous_response_id: Text = Field(None, description="The responses that continue this one.")
    created_after: UnixTime = Field(None, description="Unix seconds, inclusive.")
    created_before: UnixTime = Field(None, description="Unix seconds, exclusive.")
    has_tool_calls: Flag | None = Field(None, description="Whether the response called tools.")
    q: Text = Field(None, description="Text in the input items or the output, any case.")
    tenant: Text = Field(None, description="An admin key: only this tenant. Another key: its "
                         "own only (a different tenant is a 403).")

    def where(self, request: Request[Any, Any, Any]) -> ResponseFilter:
        return ResponseFilter(
            owner=reader_scope(principal(request), self.tenant),
            status=self.status,
            model=self.model,
            conversation_id=self.conversation_id,
            previous_response_id=self.previous_response_id,
            since=self.created_after,
            until=self.created_before,
            has_tool_calls=self.has_tool_calls,
            text=self.q,
        )


class ListResponsesParams(ResponseFilterParams, PageParams):
    pass


class EventsParams(QueryModel):
    after: int = Field(-1, ge=-1, le=MAX_CURSOR,
                       description="Events with a greater sequence_number (-1: from the start).")
    limit: int = Field(100, ge=1, le=1000, description="How many events a page holds.")
    stream: Flag = Field(False, description="true: text/event-stream, the stored events after "
                         "`after`, then the live ones to the end.")


class VerifyParams(ResponseFilterParams):
    response_id: Text = Field(None, description="Check this response only.")
    limit: int = Field(100, ge=1, le=1000, description="How many responses to check.")


class ActivityParams(QueryModel):
    tenant: Text = Field(None, description="An admin key: only this tenant (default every "
                         "tenant). Another key: its own only.")
    window_s: int = Field(3600, ge=60, le=86400, description="How far back, in seconds.")
    bucket_s: int = Field(60, ge=10, le=3600, description="The width of a bucket, in seconds.")


@get(
    "/v1/responses",
    operation_id="listResponses",
    summary="List responses (an admin key reads every tenant's)",
    description="Newest first by default, by created_at (whole seconds) then id; `after` = "
    "the last id of the previous page.",
    tags=["responses"],
    responses={200: reply(ResponsePage, "A page of responses."), 403: _OTHER_TENANT},
)
async def list_responses(
    params: Params[ListResponsesParams], request: Request[Any, Any, State], state: State
) -> Response[bytes]:
    page = await _inspect(state).list_responses(
        params.where(request), after=params.after, limit=params.limit, order=params.order,
        with_tenant=principal(request).admin,
    )
    return json_reply(page)


@get(
    "/v1/responses/{response_id:str}/events",
    operation_id="listResponseEvents",
    summary="Page through a response's event log, or follow it",
    description="Each event with the time it was stored. An admin key reads any tenant's "
    "response.",
    tags=["responses"],
    responses={200: reply(EventPage, "A page of the log, or its events as they happen.",
                          streams=True)},
)
async def response_events(
    response_id: str, params: Params[EventsParams], request: Request[Any, Any, State],
    state: State,
) -> Response[Any]:
    who = principal(request)
    owner = None if who.admin else who.tenant
    if params.stream:
        events = await _inspect(state).follow(response_id, owner, params.after)
        return Stream(sse.encode(events), media_type="text/event-stream", headers=sse.HEADERS)
    return json_reply(
        await _inspect(state).events(response_id, owner, after=params.after, limit=params.limit)
    )


@get(
    "/v1/audit/verify",
    operation_id="verifyChains",
    summary="Check the event hash chains of chosen responses",
    description="The responses the filters of GET /v1/responses choose (`response_id` for "
    "one), oldest first.",
    tags=["audit"],
    responses={200: reply(ChainVerification, "What was checked and what is broken."),
               403: _OTHER_TENANT,
               404: refusal("`response_id` names no response of this tenant.")},
)
async def verify_chains(
    params: Params[VerifyParams], request: Request[Any, Any, State], state: State
) -> Response[bytes]:
    where = params.where(request)
    where.response_id = params.response_id
    return json_reply(await _inspect(state).verify(where, limit=params.limit))


@get(
    "/v1/inspect/activity",
    operation_id="inspectActivity",
    summary="Responses created per time bucket and status, and the running ones by worker",
    description="An admin key counts every tenant unless `tenant` is given. `viewer` says "
    "whose key it is.",
    tags=["inspect"],
    responses={200: reply(Activity, "Recent activity."), 403: _OTHER_TENANT},
)
async def activity(
    params: Params[ActivityParams], request: Request[Any, Any, State], state: State
) -> Response[bytes]:
    who = principal(request)
    owner = reader_scope(who, params.tenant)
    found = await _inspect(state).activity(
        owner, window_s=params.window_s, bucket_s=params.bucket_s
    )
    # Who the key is: the inspector shows it, and offers the tenant filter to admins only.
    return json_reply({**found, "viewer": {"tenant": who.tenant, "admin": who.admin}})


@get(["/inspect", "/inspect/"], include_in_schema=False, opt={OPEN: True},
     sync_to_thread=False)
def inspector_page() -> Response[bytes]:
    return Response(
        (UI / "index.html").read_bytes(),
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-cache",
                 "Referrer-Policy": "no-referrer"},
    )


_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
# The files the page may load: exactly those shipped beside it, nothing found by path.
_FILES = {path.name: path for path in UI.iterdir() if path.suffix in _TYPES}


@get("/inspect/static/{name:str}", include_in_schema=False, opt={OPEN: True},
     sync_to_thread=False)
def inspector_files(name: str) -> Response[bytes]:
    path = _FILES.get(name)
    if path is None:
        raise NotFound(f"No inspector file '{name[:100]}'.", code="not_found")
    return Response(path.read_bytes(), media_type=_TYPES[path.suffix],
                    headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})
