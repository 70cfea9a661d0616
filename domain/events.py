"""Every event type a response's log can hold: the one list the builder emits from and the API
document is generated from (a new type added here is documented without further work)."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    CREATED = "response.created"
    QUEUED = "response.queued"
    IN_PROGRESS = "response.in_progress"
    OUTPUT_ITEM_ADDED = "response.output_item.added"
    OUTPUT_ITEM_DONE = "response.output_item.done"
    CONTENT_PART_ADDED = "response.content_part.added"
    CONTENT_PART_DONE = "response.content_part.done"
    OUTPUT_TEXT_DELTA = "response.output_text.delta"
    OUTPUT_TEXT_DONE = "response.output_text.done"
    REFUSAL_DELTA = "response.refusal.delta"
    REFUSAL_DONE = "response.refusal.done"
    REASONING_TEXT_DELTA = "response.reasoning_text.delta"
    REASONING_TEXT_DONE = "response.reasoning_text.done"
    FUNCTION_CALL_ARGUMENTS_DELTA = "response.function_call_arguments.delta"
    FUNCTION_CALL_ARGUMENTS_DONE = "response.function_call_arguments.done"
    CUSTOM_TOOL_CALL_INPUT_DELTA = "response.custom_tool_call_input.delta"
    CUSTOM_TOOL_CALL_INPUT_DONE = "response.custom_tool_call_input.done"
    COMPACTION_COMPACTING = "response.compaction.compacting"
    COMPLETED = "response.completed"
    FAILED = "response.failed"
    INCOMPLETE = "response.incomplete"


# A log ends with exactly one of these; a client's stream ends after it.
TERMINAL_EVENTS = frozenset({EventType.COMPLETED, EventType.FAILED, EventType.INCOMPLETE})
LIFECYCLE_EVENTS = frozenset({EventType.CREATED, EventType.QUEUED, EventType.IN_PROGRESS})
