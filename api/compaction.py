"""POST /v1/responses/compact: a whole input in, its compacted window out."""

from __future__ import annotations

from typing import Any

import orjson
from litestar import Request, Response, post
from litestar.datastructures import State

from api.routes import _json, _json_body_type, _owner, _runtime
from domain.errors import InvalidRequest
from domain.limits import check_depth


@post(
    "/v1/responses/compact",
    status_code=200,
    tags=["responses"],
    summary="Compact a conversation",
    description="Answers a `response.compaction` object: the input's user messages, then one "
    "`compaction` item whose `encrypted_content` holds the engine's summary, sealed.",
)
async def compact(request: Request[Any, Any, State], state: State) -> Response[bytes]:
    _json_body_type(request)
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "We could not parse the JSON body of your request.", code="invalid_json"
        ) from None
    check_depth(body)
    compaction = _runtime(state).compaction
    assert compaction is not None
    return _json(await compaction.compact(body, _owner(request)))
