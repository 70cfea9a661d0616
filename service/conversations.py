"""The use cases behind /v1/conversations, and the conversation side of creating a response."""

from __future__ import annotations

import time
from typing import Any

import orjson

from domain import ids
from domain.conversations import (
    conversation_object,
    parse_add,
    parse_create,
    parse_update,
)
from domain.errors import InvalidRequest, NotFound
from domain.inputs import Item
from domain.ports import ConversationRecord, ConversationStore, EventStore
from service.input_items import resolve_references
from service.pages import stored_page


def not_found(conversation_id: str, param: str = "conversation_id") -> NotFound:
    return NotFound(f"Conversation with id '{conversation_id}' not found.", param=param)


def _pairs(items: list[Item]) -> list[tuple[str, bytes]]:
    return [(item["id"], orjson.dumps(item)) for item in items]


class ConversationsService:
    def __init__(self, store: ConversationStore, events: EventStore) -> None:
        self._store = store
        self._events = events

    async def _record(self, conversation_id: str, owner: str) -> ConversationRecord:
        if "\x00" in conversation_id:
            raise not_found(conversation_id.replace("\x00", ""))
        record = await self._store.get(conversation_id, owner)
        if record is None:
            raise not_found(conversation_id)
        return record

    @staticmethod
    def _object(record: ConversationRecord) -> dict[str, Any]:
        return conversation_object(record.id, record.created_at, orjson.loads(record.metadata))

    async def create(self, body: Any, owner: str) -> dict[str, Any]:
        items, metadata = parse_create(body)
        items = await resolve_references(self._events, items, owner, "items")
        record = ConversationRecord(
            ids.new_id(ids.CONVERSATION), owner, orjson.dumps(metadata), int(time.time()), None
        )
        await self._store.create(record, _pairs(items))
        return self._object(record)

    async def get(self, conversation_id: str, owner: str) -> dict[str, Any]:
        return self._object(await self._record(conversation_id, owner))

    async def update(self, conversation_id: str, owner: str, body: Any) -> dict[str, Any]:
        metadata = parse_update(body)
        record = await self._record(conversation_id, owner)
        if not await self._store.update_metadata(conversation_id, owner, orjson.dumps(metadata)):
            raise not_found(conversation_id)
        return conversation_object(record.id, record.created_at, metadata)

    async def delete(self, conversation_id: str, owner: str) -> dict[str, Any]:
        await self._record(conversation_id, owner)
        if not await self._store.delete(conversation_id, owner):
            raise not_found(conversation_id)
        return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}

    async def add_items(self, conversation_id: str, owner: str, body: Any) -> dict[str, Any]:
        items = parse_add(body)
        await self._record(conversation_id, owner)
        items = await resolve_references(self._events, items, owner, "items")
        if not await self._store.add_items(conversation_id, owner, _pairs(items)):
            raise not_found(conversation_id)
        return stored_page([orjson.dumps(item) for item in items], False)

    async def list_items(
        self, conversation_id: str, owner: str, *, after: str | None, limit: int, order: str
    ) -> dict[str, Any]:
        await self._record(conversation_id, owner)
        data, has_more = await self._store.items(
            conversation_id, after=after, limit=limit, descending=order == "desc"
        )
        return stored_page(data, has_more)

    async def get_item(self, conversation_id: str, owner: str, item_id: str) -> bytes:
        await self._record(conversation_id, owner)
        data = await self._store.item(conversation_id, item_id)
        if data is None:
            raise NotFound(f"Item with id '{item_id}' not found.", param="item_id")
        return data

    async def delete_item(self, conversation_id: str, owner: str, item_id: str) -> dict[str, Any]:
        record = await self._record(conversation_id, owner)
        if not await self._store.delete_item(conversation_id, item_id):
            raise NotFound(f"Item with id '{item_id}' not found.", param="item_id")
        return self._object(record)

    # -- for responses --------------------------------------------------------------------------
    async def begin(self, conversation_id: str, owner: str, response_id: str) -> list[Item]:
        """Take the conversation for this response and return its items (the history).

        One response at a time: a second one while the first runs is a 400, so the history
        never interleaves. The lock is released with the response's terminal event.
        """
        state = await self._store.lock(conversation_id, owner, response_id)
        if state == "missing":
            raise not_found(conversation_id, "conversation")
        if state == "busy":
            raise InvalidRequest(
                f"Another response is in progress on conversation '{conversation_id}'. "
                "Wait for it to finish, then try again.",
                param="conversation",
                code="conversation_locked",
            )
        return [orjson.loads(d) for d in await self._store.all_items(conversation_id)]

    async def history(self, conversation_id: str, owner: str) -> list[Item]:
        """The conversation's items as a response would see them, without taking it."""
        if "\x00" in conversation_id or await self._store.get(conversation_id, owner) is None:
            raise not_found(conversation_id.replace("\x00", ""), "conversation")
        return [orjson.loads(d) for d in await self._store.all_items(conversation_id)]

    async def abandon(self, conversation_id: str, response_id: str) -> None:
        """The response was refused after taking the conversation: let it go."""
        await self._store.unlock(conversation_id, response_id)
