"""The Response object: its initial shape from a request, usage, and the fold of its event log."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from domain.events import LIFECYCLE_EVENTS, TERMINAL_EVENTS, EventType
from domain.request import CreateResponse

Response = dict[str, Any]
# The statuses of a response still being generated: the one definition the stores, the readers
# and the workers share.
RUNNING = ("queued", "in_progress")
__all__ = ["RUNNING", "TERMINAL_EVENTS", "Response", "fold", "new_response", "usage"]


def _echo_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    echoed = []
    for tool in tools or []:
        if tool.get("type") == "function":
            echoed.append(
                {
                    "type": "function",
                    "name": tool.get("name"),
                    "description": tool.get("description"),
                    "parameters": tool.get("parameters"),
                    "strict": tool.get("strict", True),
                }
            )
        elif tool.get("type") == "custom":
            echoed.append(dict(tool))
    return echoed


def new_response(response_id: str, request: CreateResponse, created_at: int) -> Response:
    """Every field protocol.md lists, null where unknown: strict validators reject omissions."""
    text = request.text.model_dump(by_alias=True, exclude_none=True) if request.text else None
    reasoning = request.reasoning.model_dump() if request.reasoning else None
    conversation = request.conversation
    if isinstance(conversation, str):
        conversation = {"id": conversation}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "queued" if request.background else "in_progress",
        "background": bool(request.background),
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "max_tool_calls": request.max_tool_calls,
        "model": request.model,
        "output": [],
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "previous_response_id": request.previous_response_id,
        "conversation": conversation,
        "prompt_cache_key": request.prompt_cache_key,
        "reasoning": reasoning or {"effort": None, "summary": None},
        "safety_identifier": request.safety_identifier,
        "service_tier": request.service_tier or "default",
        "store": request.store is not False,
        "temperature": 1.0 if request.temperature is None else request.temperature,
        "text": text or {"format": {"type": "text"}},
        "tool_choice": request.tool_choice or "auto",
        "tools": _echo_tools(request.tools),
        "top_logprobs": request.top_logprobs or 0,
        "top_p": 1.0 if request.top_p is None else request.top_p,
        "presence_penalty": request.presence_penalty or 0.0,
        "frequency_penalty": request.frequency_penalty or 0.0,
        "truncation": request.truncation or "disabled",
        "usage": None,
        "user": request.user,
        "metadata": request.metadata or {},
    }


def usage(
    input_tokens: int, output_tokens: int, reasoning_tokens: int = 0, cached_tokens: int = 0
) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached_tokens},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": input_tokens + output_tokens,
    }


def fold(events: Iterable[dict[str, Any]]) -> Response | None:
    """Project an event log onto the Response it describes (mid-generation included)."""
    response: Response | None = None
    output: list[dict[str, Any]] = []
    for event in events:
        kind = event["type"]
        if kind in TERMINAL_EVENTS:
            final: Response = copy.deepcopy(event["response"])
            return final
        if kind in LIFECYCLE_EVENTS:
            response = copy.deepcopy(event["response"])
        elif kind in (EventType.OUTPUT_ITEM_ADDED, EventType.OUTPUT_ITEM_DONE):
            index = event["output_index"]
            item = copy.deepcopy(event["item"])
            if index < len(output):
                output[index] = item
            else:
                output.append(item)
        elif kind == EventType.CONTENT_PART_ADDED:
            output[event["output_index"]].setdefault("content", []).append(dict(event["part"]))
        elif kind in (EventType.OUTPUT_TEXT_DELTA, EventType.REASONING_TEXT_DELTA):
            output[event["output_index"]]["content"][event["content_index"]]["text"] += event[
                "delta"
            ]
        elif kind == EventType.REFUSAL_DELTA:
            output[event["output_index"]]["content"][event["content_index"]]["refusal"] += event[
                "delta"
            ]
        elif kind == EventType.FUNCTION_CALL_ARGUMENTS_DELTA:
            output[event["output_index"]]["arguments"] += event["delta"]
        elif kind == EventType.CUSTOM_TOOL_CALL_INPUT_DELTA:
            output[event["output_index"]]["input"] += event["delta"]
    if response is not None:
        response["output"] = output
    return response
