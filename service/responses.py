"""The use cases behind /v1/responses: create, read, follow, list input items, delete."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from domain import ids
from domain.builder import ResponseBuilder
from domain.errors import InvalidRequest, NotFound, ServiceUnavailable
from domain.inputs import check_tool_outputs, normalise_input
from domain.jobs import Job
from domain.limits import RequestLimits, check_request
from domain.ports import (
    Bus,
    EventStore,
    NewResponse,
    ResponseRecord,
    StoredEvent,
    Subscription,
)
from domain.request import CreateResponse, parse_create_request
from domain.response import RUNNING, TERMINAL_EVENTS, fold, new_response
from service.compaction import check_trigger, plan
from service.conversations import ConversationsService
from service.dispatch import Dispatcher
from service.follow import UNNUMBERED, follow
from service.history import previous_response_items
from service.input_items import resolve_references, tool_outputs, unseal
from service.jobs import read_log
from service.limits import InflightLimiter, Slot, SubscriberLimit
from service.pages import stored_page
from service.runner import encode
from service.sealing import Sealer
from service.writer import EventWriter

_CANCEL_WAIT_S = 30.0


@dataclass(slots=True)
class Created:
    request: CreateResponse
    response: dict[str, Any]
    events: AsyncGenerator[list[StoredEvent] | None, None] | None  # set when the caller must follow
    items: list[dict[str, Any]] | None = None  # the resolved input: history, then the new items


class ResponsesService:
    def __init__(
        self,
        store: EventStore,
        bus: Bus,
        writer: EventWriter,
        dispatcher: Dispatcher,
        *,
        keepalive_s: float = 15.0,
        is_outage: Callable[[BaseException], bool] | None = None,
        outage_s: float = 60.0,
        local_bus: Bus | None = None,
        conversations: ConversationsService | None = None,
        sealer: Sealer | None = None,
        audit_unstored: bool = True,
        limits: RequestLimits | None = None,
        inflight: InflightLimiter | None = None,
        subscribers: SubscriberLimit | None = None,
    ) -> None:
        self._store = store
        self._bus = bus
        self._local_bus = local_bus or bus  # for responses that are not stored (never leave)
        self._writer = writer
        self._dispatcher = dispatcher
        self._keepalive_s = keepalive_s
        self._is_outage = is_outage or (lambda error: False)
        self._outage_s = outage_s
        self._conversations = conversations
        self._sealer = sealer
        self._audit_unstored = audit_unstored
        self._limits = limits or RequestLimits()
        self._inflight = inflight or InflightLimiter(0)
        self._subscribers = subscribers or SubscriberLimit(0)

    # -- create ---------------------------------------------------------------------------------
    async def create(
        self,
        body: Any,
        owner: str,
        *,
        response_id: str | None = None,
        local_history: list[dict[str, Any]] | None = None,
    ) -> Created:
        """`local_history`: what previous_response_id names when the caller holds it (a
        WebSocket connection's last unstored response), instead of the store's."""
        request = parse_create_request(body)
        check_request(request, self._limits)
        store = request.store is not False
        if request.background and not store:
            raise InvalidRequest(
                "Background mode requires 'store' to be true.",
                param="background",
                code="invalid_value",
            )
        conversation = request.conversation_id
        if conversation is not None and request.previous_response_id is not None:
            raise InvalidRequest(
                "Mutually exclusive parameters: ensure you are only providing one of: "
                "'previous_response_id' or 'conversation'.",
                param="conversation",
                code="mutually_exclusive_parameters",
            )
        if conversation is not None and (not store or self._conversations is None):
            raise InvalidRequest(
                "A response in a conversation must be stored: 'store' must be true.",
                param="store",
                code="invalid_value",
            )
        new_items = await resolve_references(self._store, normalise_input(request.input), owner)
        check_trigger(new_items)
        response_id = response_id or ids.new_id(ids.RESPONSE)
        slot = await self._inflight.acquire(owner)
        try:
            if conversation is not None:
                assert self._conversations is not None
                history = await self._conversations.begin(conversation, owner, response_id)
            elif local_history is not None:
                history = local_history
            else:
                history = await self._history(request.previous_response_id, owner)
        except BaseException:
            slot.release()
            raise
        try:
            return await self._start(body, request, owner, response_id, history, new_items, slot)
        except BaseException:
            slot.release()
            if conversation is not None:
                assert self._conversations is not None
                await self._conversations.abandon(conversation, response_id)
            raise

    async def start_compaction(
        self,
        body: dict[str, Any],
        request: CreateResponse,
        owner: str,
        new_items: list[Any],
        *,
        response_id: str | None = None,
    ) -> Created:
        """The run of a compact call (service.compaction): a stored response whose output is
        one compaction item, admitted, logged and run like a create."""
        response_id = response_id or ids.new_id(ids.RESPONSE)
        slot = await self._inflight.acquire(owner)
        try:
            history = await self._history(request.previous_response_id, owner)
            return await self._start(
                body, request, owner, response_id, history, new_items, slot, compact_call=True
            )
        except BaseException:
            slot.release()
            raise

    async def _start(
        self,
        body: Any,
        request: CreateResponse,
        owner: str,
        response_id: str,
        history: list[dict[str, Any]],
        new_items: list[dict[str, Any]],
        slot: Slot,
        *,
        compact_call: bool = False,
    ) -> Created:
        store = request.store is not False
        items = history + new_items
        check_tool_outputs(items, len(history))
        engine_items = items
        if self._sealer is not None:
            engine_items = unseal(self._sealer, items, owner, len(history))
        outputs = tool_outputs(new_items, owner, response_id)
        response = new_response(response_id, request, int(time.time()))
        builder = ResponseBuilder(response)
        builder.start()
        first_events = encode(builder.drain())
        snapshot = dict(response)  # what a background POST answers, before the worker moves on
        job = _job(
            request, response_id, owner, builder, engine_items,
            portable=engine_items is items, slot=slot, compact_call=compact_call,
        )
        follows = bool(request.stream) or not request.background
        bus = self._bus if store else self._local_bus
        subscription = None
        if store:
            # Queued first: the create commits while the subscription is being confirmed. A
            # subscription confirmed after the commit's publish misses response.created on the
            # bus, and the follow reads it from the store (a gap).
            self._writer.add(
                response_id,
                first_events,
                create=_new_row(body, request, owner, response, items, len(history)),
                tool_outputs=outputs,
                urgent=True,  # a new response: ahead of the streaming ones' events
                # Distributed mode counts committed rows: from the commit on, the slot is free.
                on_commit=slot.committed if self._inflight.counts_stored else None,
            )
            if follows:
                subscription = await bus.subscribe(response_id, bounded=True)
        else:
            if follows:
                subscription = await bus.subscribe(response_id, bounded=False)
            if self._audit_unstored:
                self._writer.audit(response_id, tool_outputs=outputs)
            await self._writer.publish_only(response_id, first_events, False)
        await self._dispatcher.submit(job)
        if store:
            await self._writer.landed(response_id)
            if self._writer.is_fenced(response_id):
                # The store refused the new row (it is away): nothing of it exists to follow.
                if subscription is not None:
                    await subscription.close()
                raise ServiceUnavailable(code="service_unavailable")
        if subscription is None:
            # Answered at once (background): the id must already be readable when it arrives.
            await self._writer.flushed()
        events = None
        if subscription is not None:
            events = self._follow(subscription, response_id, -1, store=store, replay_first=False)
        return Created(request, snapshot, events, items)

    async def history(self, previous_id: str | None, owner: str) -> list[dict[str, Any]]:
        return await self._history(previous_id, owner)

    async def _history(self, previous_id: str | None, owner: str) -> list[dict[str, Any]]:
        return await previous_response_items(self._store, previous_id, owner)

    async def _follow(
        self,
        subscription: Subscription,
        response_id: str,
        cursor: int,
        *,
        store: bool,
        replay_first: bool,
        reader: bool = False,  # counted in the per-response reader limit
    ) -> AsyncGenerator[list[StoredEvent] | None, None]:
        if reader:
            self._subscribers.enter(response_id)
        try:
            async for events in follow(
                self._store if store else None,
                subscription,
                response_id,
                cursor,
                replay_first=replay_first,
                keepalive_s=self._keepalive_s,
                is_outage=self._is_outage,
                outage_s=self._outage_s,
            ):
                yield events
        finally:
            if reader:
                self._subscribers.leave(response_id)
            await subscription.close()

    @staticmethod
    async def final_response(events: AsyncIterator[list[StoredEvent] | None]) -> bytes:
        """Wait for the terminal event and return its Response, JSON-encoded."""
        async for batch in events:
            if batch and batch[-1].type in TERMINAL_EVENTS:
                return orjson.dumps(orjson.loads(batch[-1].data)["response"])
            if batch and batch[-1].seq == UNNUMBERED:  # the store stayed away past the limit
                raise ServiceUnavailable(code="service_unavailable")
        raise RuntimeError("the event stream ended without a terminal event")

    # -- read -----------------------------------------------------------------------------------
    async def _record(self, response_id: str, owner: str | None) -> ResponseRecord:
        """The response if `owner` owns it; owner None (an admin's inspector) reads any."""
        if "\x00" in response_id:  # no stored id has one, and PostgreSQL rejects it in queries
            raise NotFound.response(response_id.replace("\x00", ""))
        record = await self._store.get(response_id)
        if record is None or (owner is not None and record.owner != owner):
            raise NotFound.response(response_id)
        return record

    async def exists(self, response_id: str) -> bool:
        return await self._store.get(response_id) is not None

    async def retrieve(self, response_id: str, owner: str) -> bytes:
        record = await self._record(response_id, owner)
        if record.snapshot is not None:
            return record.snapshot
        # Still running: the Response is the fold of its log so far.
        response = fold(await read_log(self._store, response_id))
        if response is None:
            raise NotFound.response(response_id)
        return orjson.dumps(response)

    async def stream(
        self, response_id: str, owner: str | None, cursor: int
    ) -> AsyncGenerator[list[StoredEvent] | None, None]:
        await self._record(response_id, owner)
        self._subscribers.check(response_id)
        subscription = await self._bus.subscribe(response_id)
        return self._follow(
            subscription, response_id, cursor, store=True, replay_first=True, reader=True
        )

    async def input_items(
        self, response_id: str, owner: str, *, after: str | None, limit: int, order: str
    ) -> dict[str, Any]:
        await self._record(response_id, owner)
        if after is not None and "\x00" in after:
            raise InvalidRequest(
                "Invalid 'after': no such item.", param="after", code="invalid_value"
            )
        data, has_more = await self._store.input_items(
            response_id, after=after, limit=limit, descending=order == "desc"
        )
        return stored_page(data, has_more)

    async def cancel(self, response_id: str, owner: str) -> bytes:
        """Cancel a background response; answers the Response once it has ended."""
        record = await self._record(response_id, owner)
        if not record.background:
            raise InvalidRequest(
                "Cannot cancel a synchronous response.", param="response_id", code="invalid_request"
            )
        if record.status not in RUNNING:
            if record.status == "cancelled" and record.snapshot is not None:
                return record.snapshot  # a repeated cancel answers the same object
            raise InvalidRequest(
                f"Cannot cancel a response whose status is '{record.status}'.",
                param="response_id",
                code="invalid_request",
            )
        subscription = await self._bus.subscribe(response_id)
        await self._store.request_cancel(response_id)
        await self._dispatcher.cancel(response_id)
        events = self._follow(
            subscription, response_id, record.last_seq, store=True, replay_first=True
        )
        try:
            async with asyncio.timeout(_CANCEL_WAIT_S):
                async for batch in events:
                    if batch and batch[-1].type in TERMINAL_EVENTS:
                        break
        except TimeoutError:
            pass  # its worker is slow to stop; the flag is set and the client sees the state
        finally:
            await events.aclose()
        return await self.retrieve(response_id, owner)

    async def delete(self, response_id: str, owner: str) -> dict[str, Any]:
        record = await self._record(response_id, owner)
        if record.status in RUNNING:
            raise InvalidRequest(
                "Cannot delete a response that is still in progress.",
                param="response_id",
                code="response_in_progress",
            )
        await self._store.delete(response_id)
        return {"id": response_id, "object": "response", "deleted": True}


def _job(
    request: CreateResponse,
    response_id: str,
    owner: str,
    builder: ResponseBuilder,
    engine_items: list[dict[str, Any]],
    *,
    portable: bool,
    slot: Slot,
    compact_call: bool,
) -> Job:
    """The generation job of a new response: compaction first, where the request asks for it
    (or is a compact call)."""
    work = plan(request, engine_items, compact_call=compact_call)
    return Job(
        response_id,
        builder,
        work.engine_request,
        persist=request.store is not False,
        owner=owner,
        seal_reasoning="reasoning.encrypted_content" in (request.include or ()),
        portable=portable,
        on_done=slot.release,  # the run has ended: the tenant's slot is free again
        compact=work.compact,
        then_request=work.then_request,
        summary_at=work.summary_at,
    )


def _new_row(
    body: Any,
    request: CreateResponse,
    owner: str,
    response: dict[str, Any],
    items: list[dict[str, Any]],
    history_count: int,
) -> NewResponse:
    """The responses row a stored create commits with its first events."""
    return NewResponse(
        response["id"],
        owner,
        request.model,
        response["status"],
        bool(request.background),
        orjson.dumps(body),
        response["created_at"],
        items,
        conversation_id=request.conversation_id,
        history_count=history_count if request.conversation else 0,
    )
