"""The shapes the API answers with, as pydantic models: api.openapi turns them into the document.

Bodies a client sends are documented by the domain's own request models where they exist
(`domain.request.CreateResponse`); the Conversations bodies, validated by hand in
`domain.conversations`, are described here. Reply models name what the builder and the services
produce; tests validate real output against their schemas, so they cannot drift silently.
Component names in the document are the class names.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from api.errors import ErrorCode
from domain.conversations import MAX_ADDED_ITEMS
from domain.events import EventType
from domain.request import Metadata

# -- errors -------------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str
    type: str
    param: str | None
    code: ErrorCode | None = Field(description="One of the codes listed; null for some errors.")


class Error(BaseModel):
    """Every failure: OpenAI's error envelope."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


# -- responses ----------------------------------------------------------------------------------


def _omittable() -> Any:
    """A field that may be absent, never null: no `default: null` in its schema."""
    return Field(None, json_schema_extra=_drop_default)


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class Item(BaseModel):
    """An output or input item: a message, a function or custom tool call, its output, a
    reasoning item. Every item has an id and a type; the rest depends on the type."""

    model_config = ConfigDict(extra="allow")

    id: str
    type: str


class InputTokensDetails(BaseModel):
    cached_tokens: int


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int


class Usage(BaseModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class ResponseError(BaseModel):
    code: str
    message: str


class IncompleteDetails(BaseModel):
    reason: str


class Response(BaseModel):
    """The Response object: the fold of its event log."""

    id: str
    object: Literal["response"]
    created_at: int
    status: Literal["queued", "in_progress", "completed", "failed", "cancelled", "incomplete"]
    background: bool
    completed_at: int | None
    error: ResponseError | None
    incomplete_details: IncompleteDetails | None
    instructions: str | None
    max_output_tokens: int | None
    max_tool_calls: int | None
    model: str
    output: list[Item]
    parallel_tool_calls: bool
    previous_response_id: str | None
    conversation: dict[str, Any] | None
    prompt_cache_key: str | None
    reasoning: dict[str, Any] | None
    safety_identifier: str | None
    service_tier: str
    store: bool
    temperature: float
    text: dict[str, Any]
    tool_choice: str | dict[str, Any]
    tools: list[dict[str, Any]]
    top_logprobs: int
    top_p: float
    presence_penalty: float
    frequency_penalty: float
    truncation: str
    usage: Usage | None
    user: str | None
    metadata: Metadata


class ResponseStreamEvent(BaseModel):
    """One event of a response's log, as each `data:` line carries it."""

    type: EventType
    sequence_number: int = Field(ge=0)
    response: Response = _omittable()
    output_index: int = _omittable()
    content_index: int = _omittable()
    item_id: str = _omittable()
    item: Item = _omittable()
    part: dict[str, Any] = _omittable()
    delta: str = _omittable()
    text: str = _omittable()
    refusal: str = _omittable()
    arguments: str = _omittable()
    input: str = _omittable()


_EVENT_JSON: dict[str, Any] = {
    "contentMediaType": "application/json",
    "contentSchema": {"$ref": "#/components/schemas/ResponseStreamEvent"},
}


class EventFrame(BaseModel):
    id: str = Field(pattern="^[0-9]+$", description="The event's sequence_number.")
    event: EventType
    data: str = Field(json_schema_extra=_EVENT_JSON)


class DoneFrame(BaseModel):
    data: Literal["[DONE]"]


class ServerSentEvent(RootModel[EventFrame | DoneFrame]):
    """One server-sent event: `id: <sequence_number>`, `event: <type>` and one `data:` line
    holding a `ResponseStreamEvent` as JSON. A stream ends with its terminal event
    (`response.completed`, `response.failed` or `response.incomplete`) and then `data: [DONE]`;
    `: keep-alive` comment lines may come between events."""


class DeletedResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    object: Literal["response"]
    deleted: Literal[True]


class Page(BaseModel):
    """A page of a listing, oldest or newest first; `after` = `last_id` reads the next one."""

    model_config = ConfigDict(extra="forbid")

    object: Literal["list"]
    data: list[Any]
    first_id: str | None
    last_id: str | None
    has_more: bool


class ItemPage(Page):
    data: list[Item]


# -- conversations ------------------------------------------------------------------------------


class Conversation(BaseModel):
    id: str
    object: Literal["conversation"]
    created_at: int
    metadata: Metadata


class DeletedConversation(BaseModel):
    id: str
    object: Literal["conversation.deleted"]
    deleted: Literal[True]


class CreateConversation(BaseModel):
    """Unknown fields are ignored; items are input items, as `input` of a create request."""

    items: list[dict[str, Any]] | None = Field(None, max_length=MAX_ADDED_ITEMS)
    metadata: Metadata | None = None


class UpdateConversation(BaseModel):
    metadata: Metadata | None


class AddConversationItems(BaseModel):
    items: list[dict[str, Any]] = Field(max_length=MAX_ADDED_ITEMS)


# -- audit and operations -----------------------------------------------------------------------


class ToolCallRecord(BaseModel):
    """One tool call as the audit recorded it, with its output once a later request sent it."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["audit.tool_call"]
    type: str
    name: str
    call_id: str
    response_id: str
    conversation_id: str | None
    owner: str
    stored: bool
    created_at: float
    has_output: bool


class ToolCallPage(Page):
    data: list[ToolCallRecord]


class Health(BaseModel):
    status: Literal["ok"]
    role: Literal["embedded", "api", "worker"]
    engine: str
    running: int
    dependencies: dict[str, bool]


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    dependencies: dict[str, bool]



class MetricsText(RootModel[str]):
    """Prometheus' text exposition format."""


# -- the inspector ------------------------------------------------------------------------------


class ListedResponse(Response):
    """A Response as the list has it: a running one as its log's first event has it, with the
    status now; an admin key's list adds whose it is."""

    tenant: str | None = Field(None, description="Whose it is: only in an admin key's list.")


class ResponsePage(Page):
    data: list[ListedResponse]


class LoggedEvent(BaseModel):
    sequence_number: int = Field(ge=0)
    type: EventType
    created_at: float = Field(description="When it was stored (Unix seconds).")
    event: ResponseStreamEvent = Field(description="The event as SSE sent it.")


class EventPage(BaseModel):
    """A page of a response's log; `after` = `last_sequence_number` reads the next one."""

    model_config = ConfigDict(extra="forbid")

    object: Literal["list"]
    response_id: str
    tenant: str
    data: list[LoggedEvent]
    first_sequence_number: int | None
    last_sequence_number: int | None
    has_more: bool


class BrokenChain(BaseModel):
    response_id: str
    reason: str


class ChainVerification(BaseModel):
    object: Literal["audit.verification"]
    checked: int
    ok: bool
    broken: list[BrokenChain]
    has_more: bool


class ActivityBucket(BaseModel):
    start: int = Field(description="The bucket's first second (Unix seconds).")
    status: str
    count: int


class WorkerLoad(BaseModel):
    worker: str | None = Field(description="null: not claimed by a worker yet.")
    responses: int
    lease_until: float | None


class Viewer(BaseModel):
    tenant: str
    admin: bool


class Activity(BaseModel):
    object: Literal["inspect.activity"]
    now: float
    window_s: int
    bucket_s: int
    buckets: list[ActivityBucket]
    running: list[WorkerLoad]
    viewer: Viewer = Field(description="Whose key asked.")
