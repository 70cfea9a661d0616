"""Compaction use cases: the job a create runs when its input ends with a compaction_trigger
or passes its `context_management` threshold, and POST /v1/responses/compact."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain import ids
from domain.compaction import (
    TRIGGER,
    compaction_item,
    compaction_threshold,
    estimate_tokens,
    kept_user_messages,
    summary_message,
    summary_request,
    trigger_index,
)
from domain.engine import EngineRequest, Finish, TextDelta, build_engine_request
from domain.errors import EngineError, InvalidRequest, ResponsedError
from domain.inputs import Item, normalise_input, to_chat_messages
from domain.jobs import Job
from domain.ports import Engine, EventStore
from domain.request import CreateResponse, _first_error
from domain.response import usage
from service import metrics
from service.input_items import resolve_references, unseal
from service.sealing import Sealer

COMPACTIONS = {
    kind: metrics.Counter(f"responsed_compactions_{kind}_total", help_)
    for kind, help_ in (
        ("compact", "Compactions asked with POST /v1/responses/compact."),
        ("trigger", "Compactions asked by a compaction_trigger input item."),
        ("auto", "Compactions made because an input passed its context_management threshold."),
    )
}
for _counter in COMPACTIONS.values():
    metrics.register(_counter)


class SummarySealer(Protocol):
    def seal_summary(self, summary: str, owner: str) -> str: ...


async def summarise(engine: Engine, request: EngineRequest) -> tuple[str, Finish]:
    """The engine's summary (its text; reasoning and tool calls are not part of it)."""
    parts: list[str] = []
    finish: Finish | None = None
    async for chunk in engine.stream(request):
        if type(chunk) is TextDelta:
            parts.append(chunk.text)
        elif type(chunk) is Finish:
            finish = chunk
            break
    summary = "".join(parts).strip()
    if finish is None:
        raise EngineError("The engine stream ended without a finish reason.")
    if not summary:
        raise EngineError("The engine wrote an empty summary: nothing to compact into.")
    return summary, finish


async def run_compaction(engine: Engine, sealer: SummarySealer | None, job: Job) -> Finish:
    """Writes the compaction item into the job's builder; for "auto" jobs, makes the job's
    engine request the generation from the compacted input."""
    if sealer is None:
        raise EngineError("Compaction needs the server's encryption key, and none is set.")
    summary, finish = await summarise(engine, job.engine_request)
    job.builder.compaction(sealer.seal_summary(summary, job.owner))
    COMPACTIONS[job.compact].inc()
    if job.compact == "auto" and job.then_request is not None:
        job.then_request.messages.insert(job.summary_at, summary_message(summary))
        job.engine_request = job.then_request
    return finish


class EngineUnavailable(ResponsedError):
    """The engine could not write the summary: worth a retry."""

    status = 503
    type = "server_error"
    headers = {"Retry-After": "1"}


@dataclass(slots=True)
class CompactionPlan:
    """What the job of a create runs: see worker.job.Job.compact."""

    engine_request: EngineRequest
    compact: str = ""
    then_request: EngineRequest | None = None
    summary_at: int = 0


def check_trigger(new_items: list[Item]) -> None:
    """A compaction_trigger may only end the request's own input."""
    trigger_index(new_items)


def plan(request: CreateResponse, engine_items: list[Item]) -> CompactionPlan:
    """The engine request(s) for a create, given its whole input opened for the engine."""
    if engine_items and engine_items[-1].get("type") == TRIGGER:
        return CompactionPlan(
            summary_request(request.model, request.instructions, engine_items), "trigger"
        )
    messages = to_chat_messages(request.instructions, engine_items)
    threshold = compaction_threshold(request.context_management)
    if threshold is None or estimate_tokens(messages) <= threshold:
        return CompactionPlan(build_engine_request(request, messages))
    # Past the threshold: everything before the last user message is summarised; that message
    # and what follows it (tool calls and outputs of the turn) stay as they are.
    last_user = max(
        (i for i, item in enumerate(engine_items)
         if item.get("type") == "message" and item.get("role") == "user"),
        default=len(engine_items),
    )
    head, tail = engine_items[:last_user], engine_items[last_user:]
    if all(item.get("type") == "message" and item.get("role") == "user" for item in head):
        return CompactionPlan(build_engine_request(request, messages))  # nothing to compact
    front = to_chat_messages(request.instructions, kept_user_messages(head))
    compacted = front + to_chat_messages(None, tail)  # the summary goes in between
    return CompactionPlan(
        summary_request(request.model, request.instructions, head),
        "auto",
        build_engine_request(request, compacted),
        len(front),
    )


class CompactRequest(BaseModel):
    """POST /v1/responses/compact (openai/types/responses/response_compact_params.py)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    model: str = Field(min_length=1)
    input: str | list[Any] | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    # Caching and image hints: accepted for compatibility, and without effect here (the
    # engine's own prefix cache applies whatever they say).
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    service_tier: str | None = None
    image: dict[str, Any] | None = None


History = Callable[[str | None, str], Awaitable[list[Item]]]


class CompactionService:
    def __init__(
        self, store: EventStore, engine: Engine, sealer: Sealer, history: History
    ) -> None:
        self._store = store
        self._engine = engine
        self._sealer = sealer
        self._history = history

    async def compact(self, body: Any, owner: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
        try:
            request = CompactRequest.model_validate(body)
        except ValidationError as error:
            raise _first_error(error) from None
        new_items = normalise_input(request.input if request.input is not None else [])
        if any(item.get("type") == TRIGGER for item in new_items):
            raise InvalidRequest(
                "A 'compaction_trigger' item belongs in a create's input, not in a compact "
                "request: this request compacts its whole input already.",
                param="input",
                code="invalid_value",
            )
        new_items = await resolve_references(self._store, new_items, owner)
        history = await self._history(request.previous_response_id, owner)
        items = history + new_items
        engine_items = unseal(self._sealer, items, owner, len(history))
        if not engine_items:
            raise InvalidRequest(
                "There is nothing to compact: send 'input' or 'previous_response_id'.",
                param="input",
                code="missing_required_parameter",
            )
        try:
            summary, finish = await summarise(
                self._engine, summary_request(request.model, request.instructions, engine_items)
            )
        except EngineError as error:
            raise EngineUnavailable(
                f"The engine could not write the summary: {error.message}", code="engine_error"
            ) from None
        item = compaction_item(self._sealer.seal_summary(summary, owner))
        COMPACTIONS["compact"].inc()
        return {
            "id": ids.new_id(ids.RESPONSE),
            "object": "response.compaction",
            "created_at": int(time.time()),
            "output": [*kept_user_messages(items), item],
            "usage": usage(finish.input_tokens, finish.output_tokens),
        }
