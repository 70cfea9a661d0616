"""HTTP routes: parse, call a use case, encode. Nothing else happens here."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.response import Stream

from api import sse
from api.auth import OPEN, principal
from domain.errors import InvalidRequest, UnsupportedMediaType
from domain.limits import check_depth
from service import metrics
from service.runtime import Runtime

JSON = "application/json"


def _runtime(state: State) -> Runtime:
    return state.runtime  # type: ignore[no-any-return]


def _owner(request: Request[Any, Any, Any]) -> str:
    """The tenant the request acts for (api.auth): it owns what it creates and reads only that."""
    return principal(request).tenant


def _json(content: bytes | dict[str, Any], status: int = 200) -> Response[bytes]:
    body = content if isinstance(content, bytes) else orjson.dumps(content)
    return Response(body, media_type=JSON, status_code=status)


_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def _flag(value: str | None, name: str = "stream") -> bool:
    if value is None:
        return False
    lowered = value.lower()
    if lowered not in _TRUE and lowered not in _FALSE:
        raise InvalidRequest(
            f"Invalid '{name}': expected a boolean, but got '{lowered[:50]}'.",
            param=name,
            code="invalid_type",
        )
    return lowered in _TRUE


def _json_body_type(request: Request[Any, Any, Any]) -> None:
    """JSON bodies only; a missing Content-Type is read as JSON, as curl users expect."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type != JSON and not (
        content_type.startswith("application/") and content_type.endswith("+json")
    ):
        raise UnsupportedMediaType(
            f"Unsupported Content-Type '{content_type[:100]}': send the body as application/json.",
            code="unsupported_media_type",
        )


def _query(request: Request[Any, Any, Any], name: str) -> str | None:
    """A query parameter that takes one value: sent twice, it is a 400, not a guess."""
    values = request.query_params.getall(name, [])
    if len(values) > 1:
        raise InvalidRequest(
            f"Invalid '{name}': expected a single value, but got {len(values)}.",
            param=name,
            code="invalid_value",
        )
    return values[0] if values else None


def _int_param(value: str | None, name: str, *, minimum: int, maximum: int) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise InvalidRequest(
            f"Invalid '{name}': expected an integer, but got '{value[:50]}'.",
            param=name,
            code="invalid_type",
        ) from None
    if not minimum <= number <= maximum:
        raise InvalidRequest(
            f"Invalid '{name}': expected a value between {minimum} and {maximum}.",
            param=name,
            code="invalid_value",
        )
    return number


_INLINE_PARSE_BYTES = 1024 * 1024


def _parse(raw: bytes) -> Any:
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


def _event_stream(events) -> Stream:  # type: ignore[no-untyped-def]
    return Stream(sse.encode(events), media_type="text/event-stream", headers=sse.HEADERS)


class ResponsesController(Controller):
    path = "/v1/responses"
    tags = ["responses"]

    @post(
        "/",
        status_code=200,
        summary="Create a response",
        description="Body: the Responses create request. `stream:true` answers text/event-stream.",
    )
    async def create(self, request: Request[Any, Any, State], state: State) -> Response[Any]:
        _json_body_type(request)
        raw = await request.body()
        # A body of megabytes takes a while to parse and walk: in a thread, so the event loop
        # keeps every running stream flowing meanwhile.
        body = await asyncio.to_thread(_parse, raw) if len(raw) > _INLINE_PARSE_BYTES else (
            _parse(raw))
        runtime = _runtime(state)
        created = await runtime.responses.create(body, _owner(request))
        if created.events is None:  # background without stream: answer at once
            return _json(created.response)
        if created.request.stream:
            return _event_stream(created.events)
        return _json(await runtime.responses.final_response(created.events))

    @get(
        "/{response_id:str}",
        summary="Retrieve a response, or stream its events",
        description="`stream=true` replays the stored events after `starting_after` (or the "
        "`Last-Event-ID` header) and follows the live ones to the end.",
    )
    async def retrieve(
        self, response_id: str, request: Request[Any, Any, State], state: State
    ) -> Response[Any]:
        responses = _runtime(state).responses
        # Cursors are checked even when not streaming: a malformed one is always a 400.
        header = request.headers.get("last-event-id")
        cursor = _int_param(header, "Last-Event-ID", minimum=-1, maximum=2**31 - 1)
        after = _int_param(
            _query(request, "starting_after"), "starting_after", minimum=-1, maximum=2**31 - 1
        )
        if not _flag(_query(request, "stream")):
            return _json(await responses.retrieve(response_id, _owner(request)))
        if cursor is None:
            cursor = after
        events = await responses.stream(
            response_id, _owner(request), -1 if cursor is None else cursor
        )
        return _event_stream(events)

    @post(
        "/{response_id:str}/cancel",
        status_code=200,
        summary="Cancel a background response",
        description="Queued or in-progress background responses end with status "
        "`cancelled`; a repeated cancel answers the same object.",
    )
    async def cancel(
        self, response_id: str, request: Request[Any, Any, State], state: State
    ) -> Response[bytes]:
        return _json(await _runtime(state).responses.cancel(response_id, _owner(request)))

    @delete("/{response_id:str}", status_code=200, summary="Delete a response")
    async def remove(
        self, response_id: str, request: Request[Any, Any, State], state: State
    ) -> Response[bytes]:
        return _json(await _runtime(state).responses.delete(response_id, _owner(request)))

    @get("/{response_id:str}/input_items", summary="List a response's input items")
    async def input_items(
        self, response_id: str, request: Request[Any, Any, State], state: State
    ) -> Response[bytes]:
        limit = _int_param(_query(request, "limit"), "limit", minimum=1, maximum=100) or 20
        order = _query(request, "order")
        order = "desc" if order is None else order
        if order not in ("asc", "desc"):
            raise InvalidRequest(
                "Invalid 'order': expected 'asc' or 'desc'.", param="order", code="invalid_value"
            )
        page = await _runtime(state).responses.input_items(
            response_id, _owner(request), after=_query(request, "after") or None, limit=limit,
            order=order,
        )
        return _json(page)


@get("/healthz", summary="Liveness, with each dependency's state", opt={OPEN: True})
async def healthz(state: State) -> Response[bytes]:
    runtime = _runtime(state)
    checks = await runtime.ready()
    return _json(
        {
            "status": "ok",
            "role": runtime.role,
            "engine": runtime.settings.engine,
            "running": runtime.dispatcher.running,
            "dependencies": checks,
        }
    )


@get("/readyz", summary="Readiness: 200 when every dependency answers, else 503",
     opt={OPEN: True})
async def readyz(state: State) -> Response[bytes]:
    checks = await _runtime(state).ready()
    ready = all(checks.values())
    return _json(
        {"status": "ready" if ready else "unavailable", "dependencies": checks},
        status=200 if ready else 503,
    )


@get("/metrics", summary="Prometheus metrics", media_type="text/plain; version=0.0.4",
     opt={OPEN: True})
async def prometheus_metrics() -> Response[str]:
    return Response(metrics.render(), media_type="text/plain; version=0.0.4")
