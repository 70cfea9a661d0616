"""POST /v1/responses/compact: a whole input in, its compacted window out."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.datastructures import State

from api.body import Body
from api.http import json_reply, owner, runtime
from api.openapi import refusal, reply
from api.surface_schema import CompactedResponse
from service.compaction import CompactRequest


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
        429: refusal("Too many responses of this tenant queued or in progress.", retry_after=True),
        503: refusal("The engine could not write the summary.", retry_after=True),
    },
)
async def compact(
    payload: Body[CompactRequest], request: Request[Any, Any, State], state: State
) -> Response[bytes]:
    compaction = runtime(state).compaction
    assert compaction is not None
    return json_reply(await compaction.compact(payload.json, owner(request)))
