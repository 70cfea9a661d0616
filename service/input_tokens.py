"""POST /v1/responses/input_tokens: how many tokens a create with this body would send the
engine, with the same history (previous_response_id, conversation), instructions and tools."""

from __future__ import annotations

from typing import Any

from domain.engine import build_engine_request
from domain.errors import InvalidRequest
from domain.inputs import check_tool_outputs, normalise_input, to_chat_messages
from domain.limits import RequestLimits, check_request
from domain.ports import Engine, EventStore
from domain.request import parse_create_request
from domain.token_count import TokenCount, TokenCounter, estimate_tokens
from service.conversations import ConversationsService
from service.history import previous_response_items
from service.input_items import resolve_references, unseal
from service.sealing import Sealer

_NO_MODEL = "-"  # `model` is optional here: the engine's default (or the model map's '*')


class InputTokensService:
    def __init__(
        self,
        store: EventStore,
        conversations: ConversationsService,
        engine: Engine,
        *,
        sealer: Sealer | None = None,
        limits: RequestLimits | None = None,
    ) -> None:
        self._store = store
        self._conversations = conversations
        self._engine = engine
        self._sealer = sealer
        self._limits = limits or RequestLimits()

    async def count(self, body: Any, owner: str) -> TokenCount:
        if isinstance(body, dict) and body.get("model") is None:
            body = {**body, "model": _NO_MODEL}
        request = parse_create_request(body)
        if request.model == _NO_MODEL:
            request.model = ""
        check_request(request, self._limits)
        if request.conversation is not None and request.previous_response_id is not None:
            raise InvalidRequest(
                "Mutually exclusive parameters: ensure you are only providing one of: "
                "'previous_response_id' or 'conversation'.",
                param="conversation",
                code="mutually_exclusive_parameters",
            )
        new_items = await resolve_references(self._store, normalise_input(request.input), owner)
        if request.conversation_id is not None:
            history = await self._conversations.history(request.conversation_id, owner)
        else:
            history = await previous_response_items(
                self._store, request.previous_response_id, owner
            )
        items = history + new_items
        check_tool_outputs(items, len(history))
        if self._sealer is not None:
            items = unseal(self._sealer, items, owner, len(history))
        engine_request = build_engine_request(
            request, to_chat_messages(request.instructions, items)
        )
        counted = None
        if isinstance(self._engine, TokenCounter):
            counted = await self._engine.count_tokens(engine_request)
        if counted is not None:
            return TokenCount(counted, exact=True)
        return TokenCount(estimate_tokens(engine_request), exact=False)
