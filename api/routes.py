"""HTTP routes: parse, call a use case, encode. Nothing else happens here."""

from __future__ import annotations

from typing import Any

import orjson
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.response import Stream

from api import sse
from domain.errors import InvalidRequest
from service import metrics
from service.runtime import Runtime

JSON = "application/json"


def _runtime(state: State) -> Runtime:
    return state.runtime  # type: ignore[no-any-return]


def _owner(state: State) -> str:
    return _runtime(state).settings.owner


def _json(content: bytes | dict[str, Any], status: int = 200) -> Response[bytes]:
    body = content if isinstance(content, bytes) else orjson.dumps(content)
    return Response(body, media_type=JSON, status_code=status)


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1", "yes")


def _int_param(value: str | None, name: str, *, minimum: int, maximum: int) -> int | None:
    if value is None or value == "":
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
        raw = await request.body()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidRequest(
                "We could not parse the JSON body of your request. (HINT: This likely means you "
                "aren't using your HTTP library correctly.)",
                code="invalid_json",
            ) from None
        runtime = _runtime(state)
        created = await runtime.responses.create(body, _owner(state))
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
        query = request.query_params
        if not _flag(query.get("stream")):
            return _json(await responses.retrieve(response_id, _owner(state)))
        header = request.headers.get("last-event-id")
        cursor = _int_param(header, "Last-Event-ID", minimum=-1, maximum=2**31 - 1)
        if cursor is None:
            cursor = _int_param(
                query.get("starting_after"), "starting_after", minimum=-1, maximum=2**31 - 1
            )
        events = await responses.stream(
            response_id, _owner(state), -1 if cursor is None else cursor
        )
        return _event_stream(events)

    @post(
        "/{response_id:str}/cancel",
        status_code=200,
        summary="Cancel a background response",
        description="Queued or in-progress background responses end with status "
        "`cancelled`; a repeated cancel answers the same object.",
    )
    async def cancel(self, response_id: str, state: State) -> Response[bytes]:
        return _json(await _runtime(state).responses.cancel(response_id, _owner(state)))

    @delete("/{response_id:str}", status_code=200, summary="Delete a response")
    async def remove(self, response_id: str, state: State) -> Response[bytes]:
        return _json(await _runtime(state).responses.delete(response_id, _owner(state)))

    @get("/{response_id:str}/input_items", summary="List a response's input items")
    async def input_items(
        self, response_id: str, request: Request[Any, Any, State], state: State
    ) -> Response[bytes]:
        query = request.query_params
        limit = _int_param(query.get("limit"), "limit", minimum=1, maximum=100) or 20
        order = query.get("order") or "desc"
        if order not in ("asc", "desc"):
            raise InvalidRequest(
                "Invalid 'order': expected 'asc' or 'desc'.", param="order", code="invalid_value"
            )
        page = await _runtime(state).responses.input_items(
            response_id, _owner(state), after=query.get("after") or None, limit=limit, order=order
        )
        return _json(page)


@get("/healthz", summary="Liveness, with each dependency's state")
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


@get("/readyz", summary="Readiness: 200 when every dependency answers, else 503")
async def readyz(state: State) -> Response[bytes]:
    checks = await _runtime(state).ready()
    ready = all(checks.values())
    return _json(
        {"status": "ready" if ready else "unavailable", "dependencies": checks},
        status=200 if ready else 503,
    )


@get("/metrics", summary="Prometheus metrics", media_type="text/plain; version=0.0.4")
async def prometheus_metrics() -> Response[str]:
    return Response(metrics.render(), media_type="text/plain; version=0.0.4")
