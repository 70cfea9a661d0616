"""Compaction use cases: the job a create runs when its input ends with a compaction_trigger
or passes its `context_management` threshold, and POST /v1/responses/compact."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.compaction import (
    COMPACT_CALL,
    TRIGGER,
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
from domain.ports import Engine, EventStore, StoredEvent
from domain.request import CreateResponse, _first_error, parse_create_request
from service import metrics
from service.input_items import resolve_references

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


def plan(
    request: CreateResponse, engine_items: list[Item], *, compact_call: bool = False
) -> CompactionPlan:
    """The engine request(s) for a create, given its whole input opened for the engine;
    `compact_call`: the run of POST /v1/responses/compact, a summary of the whole input."""
    if compact_call:
        if not engine_items:
            raise InvalidRequest(
                "There is nothing to compact: send 'input' or 'previous_response_id'.",
                param="input",
                code="missing_required_parameter",
            )
        return CompactionPlan(
            summary_request(request.model, request.instructions, engine_items), "compact"
        )
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


class CompactionRuns(Protocol):
    """How a compact call runs: as a stored response (service.responses)."""

    async def start_compaction(
        self,
        body: dict[str, Any],
        request: CreateResponse,
        owner: str,
        new_items: list[Item],
        *,
        response_id: str | None = None,
    ) -> Any: ...

    async def stream(
        self, response_id: str, owner: str | None, cursor: int
    ) -> AsyncIterator[list[StoredEvent] | None]: ...

    async def final_response(
        self, events: AsyncIterator[list[StoredEvent] | None]
    ) -> bytes: ...


class CompactionService:
    """POST /v1/responses/compact. The call is a response like any other: a row, its input
    items, an event log (created, the compaction item added/done, completed or failed) written
    through the event writer and run by a worker, under the tenant's in-flight limit. The
    reply is the SDK's CompactedResponse, under the stored response's id; GET
    /v1/responses/{id} answers the stored Response, whose output is the compaction item."""

    def __init__(self, store: EventStore, runs: CompactionRuns) -> None:
        self._store = store
        self._runs = runs

    @staticmethod
    def parse(body: Any) -> CompactRequest:
        if not isinstance(body, dict):
            raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
        try:
            return CompactRequest.model_validate(body)
        except ValidationError as error:
            raise _first_error(error) from None

    async def compact(
        self, body: Any, owner: str, *, response_id: str | None = None
    ) -> dict[str, Any]:
        """`response_id`: the id to store the run under (an idempotent call's)."""
        request = self.parse(body)
        new_items = normalise_input(request.input if request.input is not None else [])
        if any(item.get("type") == TRIGGER for item in new_items):
            raise InvalidRequest(
                "A 'compaction_trigger' item belongs in a create's input, not in a compact "
                "request: this request compacts its whole input already.",
                param="input",
                code="invalid_value",
            )
        new_items = await resolve_references(self._store, new_items, owner)
        # What is stored as its request: the fields that shape the run, and the mark that
        # makes a rebuilt job compact again (the input is stored as its input items).
        stored = {
            key: value
            for key, value in (
                ("model", request.model),
                ("instructions", request.instructions),
                ("previous_response_id", request.previous_response_id),
            )
            if value is not None
        }
        create = parse_create_request(stored)
        created = await self._runs.start_compaction(
            {**stored, COMPACT_CALL: True}, create, owner, new_items, response_id=response_id
        )
        assert created.events is not None  # not background: the call waits for its end
        return await self._reply(created.events, created.items or [])

    async def compacted(self, response_id: str, owner: str) -> dict[str, Any]:
        """The reply of a stored compact call (waits for its end): a repeated call's answer."""
        events = await self._runs.stream(response_id, owner, -1)
        inputs, _ = await self._store.input_items(
            response_id, after=None, limit=10_000, descending=False
        )
        return await self._reply(events, [orjson.loads(item) for item in inputs])

    async def _reply(
        self, events: AsyncIterator[list[StoredEvent] | None], items: list[Item]
    ) -> dict[str, Any]:
        """The SDK's CompactedResponse of a run, given its whole input (history, then new)."""
        response = orjson.loads(await self._runs.final_response(events))
        if response["status"] != "completed":
            failure = response.get("error") or {}
            raise EngineUnavailable(
                "The engine could not write the summary: "
                + str(failure.get("message", "the run did not complete.")),
                code="engine_error",
            )
        return {
            "id": response["id"],
            "object": "response.compaction",
            "created_at": response["created_at"],
            "output": [*kept_user_messages(items), *response["output"]],
            "usage": response["usage"],
        }
