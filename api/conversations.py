"""HTTP routes of /v1/conversations: parse, call the use case, encode."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State

from api.body import OptionalBody
from api.http import json_reply, owner, runtime
from api.openapi import reply
from api.params import PageParams, Params
from api.schema import (
    AddConversationItems,
    Conversation,
    CreateConversation,
    DeletedConversation,
    Item,
    ItemPage,
    UpdateConversation,
)


class ConversationsController(Controller):
    path = "/v1/conversations"
    tags = ["conversations"]

    @post(
        "/",
        status_code=200,
        operation_id="createConversation",
        summary="Create a conversation",
        responses={200: reply(Conversation, "The conversation.")},
    )
    async def create(
        self,
        payload: OptionalBody[CreateConversation],
        request: Request[Any, Any, State],
        state: State,
    ) -> Response[bytes]:
        service = runtime(state).conversations
        return json_reply(await service.create(payload.json, owner(request)))

    @get(
        "/{conversation_id:str}",
        operation_id="getConversation",
        summary="Retrieve a conversation",
        responses={200: reply(Conversation, "The conversation.")},
    )
    async def retrieve(
        self, conversation_id: str, request: Request[Any, Any, State], state: State
    ) -> Response[bytes]:
        return json_reply(await runtime(state).conversations.get(conversation_id, owner(request)))

    @post(
        "/{conversation_id:str}",
        status_code=200,
        operation_id="updateConversation",
        summary="Update a conversation's metadata",
        responses={200: reply(Conversation, "The conversation.")},
    )
    async def update(
        self,
        conversation_id: str,
        payload: OptionalBody[UpdateConversation],
        request: Request[Any, Any, State],
        state: State,
    ) -> Response[bytes]:
        service = runtime(state).conversations
        return json_reply(await service.update(conversation_id, owner(request), payload.json))

    @delete(
        "/{conversation_id:str}",
        status_code=200,
        operation_id="deleteConversation",
        summary="Delete a conversation",
        responses={200: reply(DeletedConversation, "Deleted.")},
    )
    async def remove(
        self, conversation_id: str, request: Request[Any, Any, State], state: State
    ) -> Response[bytes]:
        service = runtime(state).conversations
        return json_reply(await service.delete(conversation_id, owner(request)))

    @post(
        "/{conversation_id:str}/items",
        status_code=200,
        operation_id="addConversationItems",
        summary="Add items (up to 20)",
        responses={200: reply(ItemPage, "The added items.")},
    )
    async def add_items(
        self,
        conversation_id: str,
        payload: OptionalBody[AddConversationItems],
        request: Request[Any, Any, State],
        state: State,
    ) -> Response[bytes]:
        service = runtime(state).conversations
        return json_reply(await service.add_items(conversation_id, owner(request), payload.json))

    @get(
        "/{conversation_id:str}/items",
        operation_id="listConversationItems",
        summary="List a conversation's items",
        responses={200: reply(ItemPage, "A page of items.")},
    )
    async def list_items(
        self,
        conversation_id: str,
        params: Params[PageParams],
        request: Request[Any, Any, State],
        state: State,
    ) -> Response[bytes]:
        page = await runtime(state).conversations.list_items(
            conversation_id, owner(request), after=params.after, limit=params.limit,
            order=params.order,
        )
        return json_reply(page)

    @get(
        "/{conversation_id:str}/items/{item_id:str}",
        operation_id="getConversationItem",
        summary="Retrieve an item",
        responses={200: reply(Item, "The item.")},
    )
    async def get_item(
        self, conversation_id: str, item_id: str, request: Request[Any, Any, State], state: State
    ) -> Response[bytes]:
        service = runtime(state).conversations
        return json_reply(await service.get_item(conversation_id, owner(request), item_id))

    @delete(
        "/{conversation_id:str}/items/{item_id:str}",
        status_code=200,
        operation_id="deleteConversationItem",
        summary="Delete an item",
        responses={200: reply(Conversation, "The conversation.")},
    )
    async def delete_item(
        self, conversation_id: str, item_id: str, request: Request[Any, Any, State], state: State
    ) -> Response[bytes]:
        service = runtime(state).conversations
        return json_reply(await service.delete_item(conversation_id, owner(request), item_id))
