"""The inspector's API: list responses, page or follow a response's event log, check hash
chains, recent activity; and the web UI's page and static files at /inspect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State

from api.audit import _bool_param, _text_param, _time_param
from api.auth import OPEN, principal
from api.routes import _event_stream, _flag, _int_param, _json, _query, _runtime
from domain.errors import InvalidRequest, NotFound
from service.inspect import InspectService, reader_scope
from storage.inspect_store import ResponseFilter

UI = Path(__file__).with_name("inspector_ui")
# The page loads only its own files: no CDN, no inline script, nothing from elsewhere.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
_MAX_SEQ = 2**31 - 1


def _inspect(state: State) -> InspectService:
    inspect = _runtime(state).inspect
    assert inspect is not None  # every API process has one
    return inspect


def _order(request: Request[Any, Any, Any]) -> str:
    order = _query(request, "order") or "desc"
    if order not in ("asc", "desc"):
        raise InvalidRequest(
            "Invalid 'order': expected 'asc' or 'desc'.", param="order", code="invalid_value"
        )
    return order


def _typed(request: Request[Any, Any, Any], name: str) -> str | None:
    """A typed parameter (boolean, number, enum): sent empty, it is malformed, not absent."""
    value = _query(request, name)
    if value == "":
        raise InvalidRequest(f"Invalid '{name}': empty.", param=name, code="invalid_value")
    return value


def response_filter(request: Request[Any, Any, Any]) -> ResponseFilter:
    def text(name: str) -> str | None:
        return _text_param(_query(request, name), name)

    return ResponseFilter(
        owner=reader_scope(principal(request), _text_param(_query(request, "tenant"), "tenant")),
        status=_text_param(_typed(request, "status"), "status"),
        model=text("model"),
        conversation_id=text("conversation_id"),
        previous_response_id=text("previous_response_id"),
        since=_time_param(_typed(request, "created_after"), "created_after"),
        until=_time_param(_typed(request, "created_before"), "created_before"),
        has_tool_calls=_bool_param(_typed(request, "has_tool_calls"), "has_tool_calls"),
        text=text("q"),
    )


@get(
    "/v1/responses",
    summary="List responses",
    description="Newest first by default. Filters: status, model, conversation_id, "
    "previous_response_id, created_after / created_before (Unix seconds), has_tool_calls, q "
    "(text in the input or output); an admin key reads every tenant and may filter by "
    "`tenant`. `after` = the last id of the previous page, `limit` 1..100 (default 20), "
    "`order` asc | desc (by created_at, whole seconds, then id).",
    tags=["responses"],
)
async def list_responses(request: Request[Any, Any, State], state: State) -> Response[bytes]:
    limit = _int_param(_query(request, "limit"), "limit", minimum=1, maximum=100) or 20
    who = principal(request)
    page = await _inspect(state).list_responses(
        response_filter(request), after=_text_param(_query(request, "after"), "after"),
        limit=limit, order=_order(request), with_tenant=who.admin,
    )
    return _json(page)


@get(
    "/v1/responses/{response_id:str}/events",
    summary="Page through a response's event log, or follow it",
    description="Events with sequence_number > `after` (default -1), `limit` 1..1000 "
    "(default 100), each with the time it was stored. `stream=true` answers "
    "text/event-stream: the stored events after `after`, then the live ones to the end. An "
    "admin key reads any tenant's response.",
    tags=["responses"],
)
async def response_events(
    response_id: str, request: Request[Any, Any, State], state: State
) -> Response[Any]:
    who = principal(request)
    owner = None if who.admin else who.tenant
    after = _int_param(_query(request, "after"), "after", minimum=-1, maximum=_MAX_SEQ)
    after = -1 if after is None else after
    if _flag(_typed(request, "stream")):
        return _event_stream(await _inspect(state).follow(response_id, owner, after))
    limit = _int_param(_query(request, "limit"), "limit", minimum=1, maximum=1000) or 100
    return _json(await _inspect(state).events(response_id, owner, after=after, limit=limit))


@get(
    "/v1/audit/verify",
    summary="Check the event hash chains of chosen responses",
    description="The responses the filters of GET /v1/responses choose (response_id for "
    "one), oldest first, `limit` 1..1000 (default 100).",
    tags=["audit"],
)
async def verify_chains(request: Request[Any, Any, State], state: State) -> Response[bytes]:
    where = response_filter(request)
    limit = _int_param(_query(request, "limit"), "limit", minimum=1, maximum=1000) or 100
    where.response_id = _text_param(_query(request, "response_id"), "response_id")
    return _json(await _inspect(state).verify(where, limit=limit))


@get(
    "/v1/inspect/activity",
    summary="Responses created per time bucket and status, and the running ones by worker",
    description="`window_s` 60..86400 (default 3600), `bucket_s` 10..3600 (default 60). "
    "An admin key counts every tenant unless `tenant` is given. `viewer` says whose key it is.",
    tags=["inspect"],
)
async def activity(request: Request[Any, Any, State], state: State) -> Response[bytes]:
    who = principal(request)
    owner = reader_scope(who, _text_param(_query(request, "tenant"), "tenant"))
    window = _int_param(_query(request, "window_s"), "window_s", minimum=60, maximum=86400)
    bucket = _int_param(_query(request, "bucket_s"), "bucket_s", minimum=10, maximum=3600)
    found = await _inspect(state).activity(owner, window_s=window or 3600, bucket_s=bucket or 60)
    # Who the key is: the inspector shows it, and offers the tenant filter to admins only.
    return _json({**found, "viewer": {"tenant": who.tenant, "admin": who.admin}})


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
