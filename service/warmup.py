"""`generate: false` over a WebSocket: a warm-up that prepares a chain without generating.

It answers at once with a response that completes with no output and no usage, and hands back
what a follow-up's history is. Nothing reaches the engine or the store: the connection keeps
the warm-up in its memory, and a `previous_response_id` naming it works on that connection.
"""

from __future__ import annotations

import time
from typing import Any

from domain import ids
from domain.builder import ResponseBuilder
from domain.errors import InvalidRequest
from domain.inputs import check_tool_outputs, normalise_input
from domain.limits import RequestLimits, check_request
from domain.ports import EventStore
from domain.request import parse_create_request
from domain.response import new_response, usage
from service.input_items import resolve_references
from service.runner import encode


async def warm_up(
    store: EventStore,
    body: dict[str, Any],
    owner: str,
    history: list[dict[str, Any]],
    limits: RequestLimits,
) -> tuple[list[bytes], str, list[dict[str, Any]]]:
    """The warm-up's events, its id, and its items (history, then its input)."""
    request = parse_create_request(body)
    check_request(request, limits)
    if request.conversation is not None:
        raise InvalidRequest(
            "'generate: false' cannot be used with 'conversation'.",
            param="generate",
            code="unsupported_parameter",
        )
    new_items = await resolve_references(store, normalise_input(request.input), owner)
    items = history + new_items
    check_tool_outputs(items, len(history))
    response = new_response(ids.new_id(ids.RESPONSE), request, int(time.time()))
    builder = ResponseBuilder(response)
    builder.start()
    builder.complete(usage(0, 0))
    return [event.data for event in encode(builder.drain())], response["id"], items
