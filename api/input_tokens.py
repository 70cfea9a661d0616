"""POST /v1/responses/input_tokens: the SDK's `client.responses.input_tokens.count(...)`."""

from __future__ import annotations

from typing import Any

import orjson
from litestar import Request, Response, post
from litestar.datastructures import State

from api.routes import JSON, _json_body_type, _owner, _runtime
from domain.errors import InvalidRequest
from domain.limits import check_depth

# Says whether the count came from the engine's tokenizer or is an estimate.
COUNT_SOURCE_HEADER = "x-token-count-source"


@post(
    "/v1/responses/input_tokens",
    status_code=200,
    summary="Count a create request's input tokens",
    tags=["responses"],
)
async def count_input_tokens(request: Request[Any, Any, State], state: State) -> Response[bytes]:
    _json_body_type(request)  # the same rules as a create request's body
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "We could not parse the JSON body of your request.", code="invalid_json"
        ) from None
    check_depth(body)
    runtime = _runtime(state)
    assert runtime.input_tokens is not None  # API processes always have one
    counted = await runtime.input_tokens.count(body, _owner(request))
    return Response(
        orjson.dumps({"object": "response.input_tokens", "input_tokens": counted.input_tokens}),
        media_type=JSON,
        headers={COUNT_SOURCE_HEADER: "engine" if counted.exact else "estimate"},
    )
