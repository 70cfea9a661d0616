"""POST /v1/responses/compact: a whole input in, its compacted window out."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.datastructures import State

from api.body import Body
from api.http import json_reply, owner, runtime
from api.openapi import refusal, reply
from api.params import Params, QueryModel, idempotency_key
from api.surface_schema import CompactedResponse
from service.compaction import CompactRequest


class CompactParams(QueryModel):
    idempotency_key: str | None = idempotency_key(
        "A repeat with the same key and body answers the first call's compacted "
        "window instead of compacting again (service.idempotency)."
    )


@post(
    "/v1/responses/compact",
    status_code=200,
    tags=["responses"],
    operation_id="compactResponse",
    summary="Compact a conversation",
    description="The engine summarises the input (after `previous_response_id`'s history); the "
    "summary comes back sealed in a `compaction` item, which a later create takes as input. "
    "Stored like a create (its run is a response whose output is the compaction item, read "
    "back with GET /v1/responses/{id}) and counted in the tenant's in-flight limit. "
    "`prompt_cache_*`, `service_tier` and `image` have no effect.",
    responses={
        200: reply(CompactedResponse, "The input's user messages, then one compaction item."),
        404: refusal("No such previous response or referenced item for this tenant."),
        409: refusal("The first call with this Idempotency-Key is still compacting.",
                     retry_after=True),
        429: refusal("Too many responses of this tenant queued or in progress.", retry_after=True),
        503: refusal("The engine could not write the summary.", retry_after=True),
    },
)
async def compact(
    payload: Body[CompactRequest],
    params: Params[CompactParams],
    request: Request[Any, Any, State],
    state: State,
) -> Response[bytes]:
    running = runtime(state)
    if params.idempotency_key is not None and running.idempotency is not None:
        return json_reply(await running.idempotency.compact(
            payload.json, owner(request), params.idempotency_key
        ))
    compaction = running.compaction
    assert compaction is not None
    return json_reply(await compaction.compact(payload.json, owner(request)))
