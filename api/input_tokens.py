"""POST /v1/responses/input_tokens: the SDK's `client.responses.input_tokens.count(...)`."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from litestar import Request, Response, post
from litestar.datastructures import State
from pydantic import BaseModel, Field

from api.body import Body
from api.http import JSON, owner, runtime
from api.openapi import refusal, reply
from domain.request import CreateResponse

# Says whether the count came from the engine's tokenizer or is an estimate.
COUNT_SOURCE_HEADER = "x-token-count-source"


class CountInputTokens(CreateResponse):
    """The body of a create; `model` is optional here (the engine's default)."""

    model: str | None = None  # type: ignore[assignment]


class InputTokenCount(BaseModel):
    object: Literal["response.input_tokens"] = "response.input_tokens"
    input_tokens: int = Field(ge=0)


@post(
    "/v1/responses/input_tokens",
    status_code=200,
    operation_id="countInputTokens",
    summary="Count a create request's input tokens",
    description="The same input, instructions, tools and history (previous_response_id or "
    "conversation) a create takes. Counted by the engine's own tokenizer where it offers one "
    "(vLLM's and SGLang's `/tokenize`; the built-in engine's own count), else estimated: the "
    "`x-token-count-source` header says which (`engine` or `estimate`).",
    tags=["responses"],
    responses={
        200: reply(InputTokenCount, "The count."),
        404: refusal("No such conversation for this tenant."),
    },
)
async def count_input_tokens(
    payload: Body[CountInputTokens], request: Request[Any, Any, State], state: State
) -> Response[bytes]:
    counter = runtime(state).input_tokens
    assert counter is not None  # API processes always have one
    counted = await counter.count(payload.json, owner(request))
    return Response(
        orjson.dumps({"object": "response.input_tokens", "input_tokens": counted.input_tokens}),
        media_type=JSON,
        headers={COUNT_SOURCE_HEADER: "engine" if counted.exact else "estimate"},
    )
