"""HTTP routes of /v1/responses and the operations endpoints: parse, call a use case, encode."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.response import Stream
from pydantic import Field

from api import sse
from api.auth import OPEN
from api.body import Body
from api.http import json_reply, owner, runtime
from api.openapi import refusal, reply
from api.params import (
    IN_HEADER,
    MAX_CURSOR,
    Flag,
    PageParams,
    Params,
    QueryModel,
    idempotency_key,
)
from api.schema import DeletedResponse, Health, ItemPage, MetricsText, Readiness
from api.schema import Response as ResponseObject
from domain.errors import ServiceUnavailable
from domain.ports import StoredEvent
from domain.request import CreateResponse
from service import metrics

METRICS_TYPE = "text/plain; version=0.0.4"


class RetrieveParams(QueryModel):
    stream: Flag = Field(False, description="true: answer with the events, as they happen.")
    starting_after: int | None = Field(
        None, ge=-1, le=MAX_CURSOR, description="Replay the events after this sequence_number."
    )
    last_event_id: int | None = Field(
        None,
        alias="Last-Event-ID",
        ge=-1,
        le=MAX_CURSOR,
        json_schema_extra=IN_HEADER,
        description="The SSE resume cursor; it wins over `starting_after`.",
    )


class CreateParams(QueryModel):
    idempotency_key: str | None = idempotency_key(
        "A repeat with the same key and body answers the first request's response "
        "instead of generating again (service.idempotency)."
    )


def _event_stream(events: AsyncIterator[list[StoredEvent] | None]) -> Stream:
    return Stream(sse.encode(events), media_type="text/event-stream", headers=sse.HEADERS)


_TOO_MANY_RUNNING = refusal(
    "Too many responses of this tenant queued or in progress.", retry_after=True
)
_TOO_MANY_STREAMING = refusal("Too many clients streaming this response.", retry_after=True)


class ResponsesController(Controller):
    path = "/v1/responses"
    tags = ["responses"]

    @post(
        "/",
        status_code=200,
        operation_id="createResponse",
        summary="Create a response",
        description="`stream: true` answers text/event-stream; `background: true` (without "
        "stream) answers at once with status `queued`.",
        responses={
            200: reply(ResponseObject, "The Response, or its events as they happen.",
                       streams=True),
            404: refusal("No such conversation or previous response for this tenant."),
            409: refusal("The first request with this Idempotency-Key is still being created.",
                         retry_after=True),
            429: _TOO_MANY_RUNNING,
        },
    )
    async def create(
        self,
        payload: Body[CreateResponse],
        params: Params[CreateParams],
        request: Request[Any, Any, State],
        state: State,
    ) -> Response[Any]:
        running = runtime(state)
        responses = running.responses
        if params.idempotency_key is not None and running.idempotency is not None:
            created = await running.idempotency.create(
                payload.json, owner(request), params.idempotency_key
            )
        else:
            created = await responses.create(payload.json, owner(request))
        if created.events is None:  # background without stream: answer at once
            return json_reply(created.response)
        if created.request.stream:
            return _event_stream(created.events)
        return json_reply(await responses.final_response(created.events))

    @get(
        "/{response_id:str}",
        operation_id="getResponse",
        summary="Retrieve a response, or stream its events",
        description="`stream=true` replays the stored events after the cursor "
        "(`Last-Event-ID`, else `starting_after`, else from the start) and follows the live "
        "ones to the end.",
        responses={
            200: reply(ResponseObject, "The Response (the fold of its log while it runs), or "
                       "its events.", streams=True),
            429: _TOO_MANY_STREAMING,
        },
    )
    async def retrieve(
        self,
        response_id: str,
        params: Params[RetrieveParams],
        request: Request[Any, Any, State],
        state: State,
    ) -> Response[Any]:
        responses = runtime(state).responses
        if not params.stream:
            return json_reply(await responses.retrieve(response_id, owner(request)))
        cursor = params.last_event_id
        if cursor is None:
            cursor = params.starting_after
        events = await responses.stream(
            response_id, owner(request), -1 if cursor is None else cursor
        )
        return _event_stream(events)

    @post(
        "/{response_id:str}/cancel",
        status_code=200,
        operation_id="cancelResponse",
        summary="Cancel a background response",
        description="Queued or in-progress background responses end with status "
        "`cancelled`; a repeated cancel answers the same object. No body.",
        responses={
            200: reply(ResponseObject, "The cancelled Response."),
            400: refusal("Not a background response, or it has already ended."),
        },
    )
    async def cancel(
        self, response_id: str, request: Request[Any, Any, State], state: State
    ) -> Response[bytes]:
        return json_reply(await runtime(state).responses.cancel(response_id, owner(request)))

    @delete(
        "/{response_id:str}",
        status_code=200,
        operation_id="deleteResponse",
        summary="Delete a response",
        responses={
            200: reply(DeletedResponse, "Deleted."),
            400: refusal("The response is still in progress."),
        },
    )
    async def remove(
        self, response_id: str, request: Request[Any, Any, State], state: State
    ) -> Response[bytes]:
        return json_reply(await runtime(state).responses.delete(response_id, owner(request)))

    @get(
        "/{response_id:str}/input_items",
        operation_id="listInputItems",
        summary="List a response's input items",
        responses={200: reply(ItemPage, "A page of input items.")},
    )
    async def input_items(
        self,
        response_id: str,
        params: Params[PageParams],
        request: Request[Any, Any, State],
        state: State,
    ) -> Response[bytes]:
        page = await runtime(state).responses.input_items(
            response_id, owner(request), after=params.after, limit=params.limit,
            order=params.order,
        )
        return json_reply(page)


@get(
    "/healthz",
    operation_id="healthz",
    tags=["operations"],
    summary="Liveness, with each dependency's state",
    opt={OPEN: True},
    responses={200: reply(Health, "Alive.")},
)
async def healthz(state: State) -> Response[bytes]:
    app = runtime(state)
    checks = await app.ready()
    return json_reply(
        {
            "status": "ok",
            "role": app.role,
            "engine": app.settings.engine,
            "running": app.dispatcher.running,
            "dependencies": checks,
        }
    )


@get(
    "/readyz",
    operation_id="readyz",
    tags=["operations"],
    summary="Readiness: 200 when every dependency answers, else 503",
    opt={OPEN: True},
    responses={
        200: reply(Readiness, "Ready."),
        503: reply(Readiness, "Not ready."),
    },
)
async def readyz(state: State) -> Response[bytes]:
    checks = await runtime(state).ready()
    ready = all(checks.values())
    answer = json_reply(
        {"status": "ready" if ready else "unavailable", "dependencies": checks},
        status=200 if ready else 503,
    )
    if not ready:
        answer.headers["Retry-After"] = str(ServiceUnavailable.RETRY_AFTER_S)
    return answer


@get(
    "/metrics",
    operation_id="metrics",
    tags=["operations"],
    summary="Prometheus metrics",
    media_type=METRICS_TYPE,
    opt={OPEN: True},
    responses={200: reply(MetricsText, "The text exposition format.", media_type="text/plain")},
)
async def prometheus_metrics() -> Response[str]:
    return Response(metrics.render(), media_type=METRICS_TYPE)
