"""The builder: a pure state machine turning engine deltas into correctly ordered events.

It owns sequence numbers, output/content indexes and item ids, and guarantees protocol.md's
order: created -> in_progress -> per item (added, per part: part.added, deltas, done,
part.done; item.done) -> exactly one terminal event. Events are plain dicts; the caller drains
them with `drain()` after each call and encodes them once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from domain import ids
from domain.custom_input import InputDecoder, final_input
from domain.events import EventType
from domain.response import Response
from domain.tools import custom_tool_names

Event = dict[str, Any]

# Which delta/done event types and which text field each open part kind uses.
_PART_EVENTS = {
    "output_text": (EventType.OUTPUT_TEXT_DELTA, EventType.OUTPUT_TEXT_DONE, "text"),
    "refusal": (EventType.REFUSAL_DELTA, EventType.REFUSAL_DONE, "refusal"),
    "reasoning_text": (EventType.REASONING_TEXT_DELTA, EventType.REASONING_TEXT_DONE, "text"),
}


class BuilderClosed(Exception):
    """A delta arrived after the terminal event."""


CALL_TYPES = ("function_call", "custom_tool_call")
_DROPPED = -1  # an engine tool index whose call is not kept (parallel_tool_calls false)


class ResponseBuilder:
    def __init__(
        self,
        response: Response,
        *,
        next_seq: int = 0,
        seal: Callable[[dict[str, Any]], str] | None = None,
    ) -> None:
        """`seal` makes a reasoning item's encrypted_content (include=reasoning.encrypted_content).

        Which calls become custom_tool_call items, and whether more than one call is kept,
        follow the response's own `tools` and `parallel_tool_calls`.
        """
        self.response = response
        self.output: list[dict[str, Any]] = []
        self.finished = False
        self._seq = next_seq
        self._events: list[Event] = []
        self._item: dict[str, Any] | None = None  # the open output item
        self._part: str | None = None  # the open content part kind
        self._chunks: list[str] = []  # text of the open part or function arguments
        # Function calls by the engine's tool index -> output index, for interleaved fragments.
        self._calls: dict[int, int] = {}
        self._custom = custom_tool_names(response.get("tools"))
        self._single_call = response.get("parallel_tool_calls") is False
        self._decoder: InputDecoder | None = None  # the open custom call's input, as it streams
        self._input: list[str] = []  # the decoded input streamed so far
        self._seal = seal

    def seal_reasoning_with(self, seal: Callable[[dict[str, Any]], str]) -> None:
        """Give finished reasoning items an encrypted_content made by `seal` from now on."""
        self._seal = seal

    # -- events ---------------------------------------------------------------------------------
    @property
    def next_seq(self) -> int:
        return self._seq

    def drain(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def _emit(self, event: Event) -> None:
        event["sequence_number"] = self._seq
        self._seq += 1
        self._events.append(event)

    def _lifecycle(self, kind: str, status: str) -> None:
        self.response["status"] = status
        snapshot = {**self.response, "output": []}
        self._emit({"type": kind, "response": snapshot})

    def continuable_text(self) -> str | None:
        """The text streamed so far if a new engine run can simply continue it, else None.

        That is the case while the output is at most one text message; a run cut off inside
        reasoning or a tool call cannot be picked up mid-way by another engine request.
        """
        if self.output:
            return None
        item = self._item
        if item is None:
            return ""
        if item["type"] == "message" and self._part == "output_text" and len(item["content"]) == 1:
            return "".join(self._chunks)
        return None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """response.created (and .queued for background runs), then in_progress unless queued."""
        if self.response["background"] and self.response["status"] == "queued":
            self._lifecycle(EventType.CREATED, "queued")
            self._lifecycle(EventType.QUEUED, "queued")
        else:
            self._lifecycle(EventType.CREATED, "in_progress")
            self._lifecycle(EventType.IN_PROGRESS, "in_progress")

    def begin(self) -> None:
        """A queued (background) response starts running."""
        self._lifecycle(EventType.IN_PROGRESS, "in_progress")

    # -- deltas ---------------------------------------------------------------------------------
    def text(self, delta: str) -> None:
        self._delta("message", "output_text", delta)

    def refusal(self, delta: str) -> None:
        self._delta("message", "refusal", delta)

    def reasoning(self, delta: str) -> None:
        self._delta("reasoning", "reasoning_text", delta)

    def _delta(self, item_type: str, part: str, delta: str) -> None:
        if self.finished:
            raise BuilderClosed("the response already ended")
        if not delta:
            return
        item = self._item
        if item is None or item["type"] != item_type:
            self._close_item("completed")
            item = self._open_item(item_type)
        if self._part != part:
            self._close_part()
            self._open_part(part)
        self._chunks.append(delta)
        self._emit(
            {
                "type": _PART_EVENTS[part][0],
                "item_id": item["id"],
                "output_index": len(self.output),
                "content_index": len(item["content"]) - 1,
                "delta": delta,
                **({"logprobs": []} if part == "output_text" else {}),
            }
        )

    def tool_call(self, index: int, call_id: str | None, name: str | None, arguments: str) -> None:
        """One streamed tool-call fragment; a new index opens a new call item.

        Calls of custom tools become custom_tool_call items whose input streams as text.
        With parallel_tool_calls false only the first call is kept.
        """
        if self.finished:
            raise BuilderClosed("the response already ended")
        item = self._item
        position = self._calls.get(index)
        if position is None:
            if self._single_call and self._calls:
                self._calls[index] = _DROPPED
                return
            self._close_item("completed")
            item = self._open_call(name or "", call_id)
            self._calls[index] = len(self.output)
        elif item is None or position != len(self.output):
            return  # a dropped call, or a late fragment of a call already closed
        elif name and not item["name"]:
            item["name"] = name
        if not arguments:
            return
        self._chunks.append(arguments)
        if item["type"] == "function_call":
            self._emit(
                {
                    "type": EventType.FUNCTION_CALL_ARGUMENTS_DELTA,
                    "item_id": item["id"],
                    "output_index": len(self.output),
                    "delta": arguments,
                }
            )
            return
        assert self._decoder is not None
        text = self._decoder.feed(arguments)
        if text:
            self._input.append(text)
            self._emit(
                {
                    "type": EventType.CUSTOM_TOOL_CALL_INPUT_DELTA,
                    "item_id": item["id"],
                    "output_index": len(self.output),
                    "delta": text,
                }
            )

    def _open_call(self, name: str, call_id: str | None) -> dict[str, Any]:
        custom = name in self._custom
        item: dict[str, Any] = {
            "id": ids.new_id(ids.CUSTOM_TOOL_CALL if custom else ids.FUNCTION_CALL),
            "type": "custom_tool_call" if custom else "function_call",
            "status": "in_progress",
            "call_id": call_id or ids.new_id(ids.CALL),
            "name": name,
        }
        item["input" if custom else "arguments"] = ""
        self._item = item
        self._chunks = []
        self._input = []
        self._decoder = InputDecoder() if custom else None
        self._emit(
            {
                "type": EventType.OUTPUT_ITEM_ADDED,
                "output_index": len(self.output),
                "item": dict(item),
            }
        )
        return item

    # -- items ----------------------------------------------------------------------------------
    def _open_item(self, item_type: str) -> dict[str, Any]:
        if item_type == "message":
            item = {
                "id": ids.new_id(ids.MESSAGE),
                "type": "message",
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            }
        else:
            item = {
                "id": ids.new_id(ids.REASONING),
                "type": "reasoning",
                "summary": [],
                "content": [],
                "status": "in_progress",
            }
        self._item = item
        self._emit(
            {
                "type": EventType.OUTPUT_ITEM_ADDED,
                "output_index": len(self.output),
                "item": {**item, "content": []},
            }
        )
        return item

    def _open_part(self, part: str) -> None:
        item = self._item
        assert item is not None
        field = _PART_EVENTS[part][2]
        body: dict[str, Any] = {"type": part, field: ""}
        if part == "output_text":
            body.update(annotations=[], logprobs=[])
        item["content"].append(body)
        self._part = part
        self._chunks = []
        self._emit(
            {
                "type": EventType.CONTENT_PART_ADDED,
                "item_id": item["id"],
                "output_index": len(self.output),
                "content_index": len(item["content"]) - 1,
                "part": dict(body),
            }
        )

    def _close_part(self) -> None:
        item, part = self._item, self._part
        if item is None or part is None:
            return
        done_type, field = _PART_EVENTS[part][1], _PART_EVENTS[part][2]
        text = "".join(self._chunks)
        body = item["content"][-1]
        body[field] = text
        index = len(item["content"]) - 1
        done: Event = {
            "type": done_type,
            "item_id": item["id"],
            "output_index": len(self.output),
            "content_index": index,
            field: text,
        }
        if part == "output_text":
            done["logprobs"] = []
        self._emit(done)
        self._emit(
            {
                "type": EventType.CONTENT_PART_DONE,
                "item_id": item["id"],
                "output_index": len(self.output),
                "content_index": index,
                "part": dict(body),
            }
        )
        self._part = None
        self._chunks = []

    def _close_item(self, status: str) -> None:
        item = self._item
        if item is None:
            return
        if item["type"] == "function_call":
            item["arguments"] = "".join(self._chunks)
            self._chunks = []
            self._emit(
                {
                    "type": EventType.FUNCTION_CALL_ARGUMENTS_DONE,
                    "item_id": item["id"],
                    "output_index": len(self.output),
                    "name": item["name"],
                    "arguments": item["arguments"],
                }
            )
        elif item["type"] == "custom_tool_call":
            item["input"] = final_input("".join(self._chunks), "".join(self._input))
            self._chunks, self._input, self._decoder = [], [], None
            self._emit(
                {
                    "type": EventType.CUSTOM_TOOL_CALL_INPUT_DONE,
                    "item_id": item["id"],
                    "output_index": len(self.output),
                    "input": item["input"],
                }
            )
        else:
            self._close_part()
            if item["type"] == "reasoning" and self._seal is not None:
                item["encrypted_content"] = self._seal(item)
        item["status"] = status
        self._emit(
            {"type": EventType.OUTPUT_ITEM_DONE, "output_index": len(self.output), "item": item}
        )
        self.output.append(item)
        self._item = None

    def compaction(self, encrypted_content: str) -> dict[str, Any]:
        """One finished compaction item: added, compacting, done (its summary is written by
        then, so the three go out together)."""
        if self.finished:
            raise BuilderClosed("the response already ended")
        from domain.compaction import compaction_item  # local: it builds on domain.inputs

        self._close_item("completed")
        item = compaction_item(encrypted_content)
        index = len(self.output)
        self._emit({"type": EventType.OUTPUT_ITEM_ADDED, "output_index": index, "item": item})
        self._emit(
            {"type": EventType.COMPACTION_COMPACTING, "item_id": item["id"], "output_index": index}
        )
        self._emit({"type": EventType.OUTPUT_ITEM_DONE, "output_index": index, "item": item})
        self.output.append(item)
        return item

    # -- terminal -------------------------------------------------------------------------------
    def _terminal(self, kind: str, status: str, item_status: str, **fields: Any) -> None:
        if self.finished:
            raise BuilderClosed("the response already ended")
        self._close_item(item_status)
        self.finished = True
        self.response.update(fields, status=status, output=self.output)
        self._emit({"type": kind, "response": {**self.response}})

    def complete(
        self, usage: dict[str, Any] | None = None, *, completed_at: int | None = None
    ) -> None:
        self._terminal(
            EventType.COMPLETED,
            "completed",
            "completed",
            usage=usage,
            completed_at=completed_at or int(time.time()),
        )

    def incomplete(self, reason: str, usage: dict[str, Any] | None = None) -> None:
        self._terminal(
            EventType.INCOMPLETE,
            "incomplete",
            "incomplete",
            usage=usage,
            incomplete_details={"reason": reason},
        )

    def fail(self, code: str, message: str, usage: dict[str, Any] | None = None) -> None:
        self._terminal(
            EventType.FAILED,
            "failed",
            "incomplete",
            usage=usage,
            error={"code": code, "message": message},
        )

    def cancel(self) -> None:
        # There is no response.cancelled event: a cancel ends with response.failed (protocol.md).
        self._terminal(EventType.FAILED, "cancelled", "incomplete")


def resume_builder(events: list[dict[str, Any]]) -> ResponseBuilder:
    """Rebuild a builder from a stored log, so a run can be ended (or continued) cleanly.

    Open items and parts are restored with the text they had, so closing them emits the right
    done events and the terminal response carries every item that was streamed.
    """
    from domain.response import fold  # local: response imports nothing from here

    response = fold(events)
    if response is None or not events:
        raise ValueError("the log has no response.created event")
    builder = ResponseBuilder(response, next_seq=events[-1]["sequence_number"] + 1)
    output = response.pop("output")
    response["output"] = []
    done_items = {e["output_index"] for e in events if e["type"] == EventType.OUTPUT_ITEM_DONE}
    done_parts = {
        (e["output_index"], e["content_index"])
        for e in events
        if e["type"] == EventType.CONTENT_PART_DONE
    }
    for index, item in enumerate(output):
        if index in done_items:
            builder.output.append(item)
            continue
        builder._item = item  # at most one item is open at a time
        if item["type"] == "function_call":
            builder._chunks = [item.get("arguments", "")]
            builder._calls[-1] = index  # no engine index maps to a resumed call
        elif item["type"] == "custom_tool_call":
            builder._input = [item.get("input", "")]  # the raw arguments are not in the log
            builder._calls[-1] = index
        elif item.get("content") and (index, len(item["content"]) - 1) not in done_parts:
            part = item["content"][-1]
            builder._part = part["type"]
            builder._chunks = [part.get(_PART_EVENTS[part["type"]][2], "")]
    return builder
