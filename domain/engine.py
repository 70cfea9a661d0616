"""What the worker asks of an inference engine and what an engine streams back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.request import CreateResponse
from domain.tools import chat_tools


@dataclass(slots=True)
class EngineRequest:
    model: str
    messages: list[dict[str, Any]]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    reasoning_effort: str | None = None
    user: str | None = None
    # Continue this partial assistant reply instead of starting a new one (a run taken over
    # after its worker died); vLLM's continue_final_message.
    assistant_prefix: str | None = None
    # "summarise": a compaction run, whose text becomes a compaction item's summary. Engines
    # get the same chat request either way; the built-in engine answers it deterministically.
    purpose: str = "respond"
    extra: dict[str, Any] = field(default_factory=dict)


# Stream chunks. Tuple-like slotted classes: one is made per token, so they stay cheap.
@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True)
class ReasoningDelta:
    text: str


@dataclass(slots=True)
class RefusalDelta:
    text: str


@dataclass(slots=True)
class ToolCallDelta:
    index: int
    call_id: str | None
    name: str | None
    arguments: str


@dataclass(slots=True)
class Finish:
    """The end of a stream: why it stopped ('stop', 'length', 'tool_calls', 'content_filter')."""

    reason: str
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0


Chunk = TextDelta | ReasoningDelta | RefusalDelta | ToolCallDelta | Finish


def _response_format(request_text: dict[str, Any] | None) -> dict[str, Any] | None:
    fmt = (request_text or {}).get("format") or {}
    if fmt.get("type") == "json_schema":
        schema = {"name": fmt.get("name") or "response", "schema": fmt.get("schema") or {}}
        if fmt.get("strict") is not None:
            schema["strict"] = fmt["strict"]
        return {"type": "json_schema", "json_schema": schema}
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    return None


def build_engine_request(request: CreateResponse, messages: list[dict[str, Any]]) -> EngineRequest:
    """Map the request onto Chat Completions: only what the client set (so the engine's own
    defaults apply otherwise) and one token cap, sent once."""
    tools, tool_choice = chat_tools(request.tools, request.tool_choice)
    text = request.text.model_dump(by_alias=True, exclude_none=True) if request.text else None
    return EngineRequest(
        model=request.model,
        messages=messages,
        max_tokens=request.max_output_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        response_format=_response_format(text),
        tools=tools,
        tool_choice=tool_choice,
        reasoning_effort=request.reasoning.effort if request.reasoning else None,
        user=request.safety_identifier or request.user,
        # Asked only when it restricts: the builder keeps the first call either way.
        extra={"parallel_tool_calls": False}
        if tools and request.parallel_tool_calls is False
        else {},
    )
