"""HTTP routes of /v1/conversations: parse, call the use case, encode."""

from __future__ import annotations

from typing import Any

import orjson
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State

from api.routes import _int_param, _json, _json_body_type, _owner, _runtime
from domain.errors import InvalidRequest
from domain.limits import check_depth


async def _body(request: Request[Any, Any, State]) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    _json_body_type(request)  # the same rules as a create request's body
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "We could not parse the JSON body of your request.", code="invalid_json"
        ) from None
    check_depth(body)
    return body


def _order(value: str | None) -> str:
    order = value or "desc"
    if order not in ("asc", "desc"):
        raise InvalidRequest(
            "Invalid 'order': expected 'asc' or 'desc'.", param="order", code="invalid_value"
        )
    return order


class ConversationsController(Controller):
    path = "/v1/conversations"
    tags = ["conversations"]

    @post("/", status_code=200, summary="Create a conversation")
    async def create(self, request: Request[Any, Any, State], state: State) -> Response[bytes]:
        service = _runtime(state).conversations
        return _json(await service.create(await _body(request), _owner(request)))

    @get("/{conversation_id:str}", summary="Retrieve a conversation")
    async def retrieve(
        self, conversation_id: str, request: Request[Any, Any, State], state: State
    ) -> Response[bytes]:
        return _json(await _runtime(state).conversations.get(conversation_id, _owner(request)))

    @post("/{conversation_id:str}", status_code=200, summary="Update a conversation's metadata")
    async def update(
        self, conversation_id: str, request: Request[Any, Any, State], state: State
    ) -> Response[bytes]:
        service = _runtime(state).conversations
        body = await _body(request)
        return _json(await service.update(conversation_id, _owner(request), body))

    @delete("/{conversation_id:str}", status_code=200, summary="Delete a conversation")
    async def remove(
        self, conversation_id: str, request: Request[Any, Any, State], state: State
    ) -> Response[bytes]:
        return _json(await _runtime(state).conversations.delete(conversation_id, _owner(request)))

    @post("/{conversation_id:str}/items", status_code=200, summary="Add items (up to 20)")
    async def add_items(
        self, conversation_id: str, request: Request[Any, Any, State], state: State
    ) -> Response[bytes]:
        service = _runtime(state).conversations
        body = await _body(request)
        return _json(await service.add_items(conversation_id, _owner(request), body))

    @get("/{conversation_id:str}/items", summary="List a conversation's items")
    async def list_items(
        self, conversation_id: str, request: Request[Any, Any, State], state: State
    ) -> Response[bytes]:
        query = request.query_params
        limit = _int_param(query.get("limit"), "limit", minimum=1, maximum=100) or 20
        after = query.get("after") or None
        if after is not None and "\x00" in after:
            raise InvalidRequest(
                "Invalid 'after': no such item.", param="after", code="invalid_value"
            )
        page = await _runtime(state).conversations.list_items(
            conversation_id,
            _owner(request),
            after=after,
            limit=limit,
            order=_order(query.get("order")),
        )
        return _json(page)

    @get("/{conversation_id:str}/items/{item_id:str}", summary="Retrieve an item")
    async def get_item(
        self,
        conversation_id: str,
        item_id: str,
        request: Request[Any, Any, State],
        state: State,
    ) -> Response[bytes]:
        service = _runtime(state).conversations
        return _json(await service.get_item(conversation_id, _owner(request), item_id))

    @delete("/{conversation_id:str}/items/{item_id:str}", status_code=200, summary="Delete an item")
    async def delete_item(
        self, conversation_id: str, item_id: str, request: Request[Any, Any, State], state: State
    ) -> Response[bytes]:
        service = _runtime(state).conversations
        return _json(await service.delete_item(conversation_id, _owner(request), item_id))
