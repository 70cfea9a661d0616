"""A checker for protocol.md's event-order rules, used by unit and end-to-end tests alike."""

from __future__ import annotations

from typing import Any

TERMINAL = {"response.completed", "response.failed", "response.incomplete"}


def check_event_order(events: list[dict[str, Any]]) -> None:
    """Raise AssertionError at the first event that breaks the order clients enforce."""
    assert events, "no events"
    assert events[0]["type"] == "response.created", events[0]["type"]
    assert [e["sequence_number"] for e in events] == list(range(len(events))), "sequence numbers"
    terminals = [e for e in events if e["type"] in TERMINAL]
    assert len(terminals) == 1 and events[-1] is terminals[0], "exactly one terminal event, last"
    open_items: dict[int, dict[str, Any]] = {}
    done_items: dict[int, dict[str, Any]] = {}
    open_parts: set[tuple[int, int]] = set()
    next_index = 0
    for event in events:
        kind = event["type"]
        assert "error" not in event or kind == "error", "no top-level error key"
        if kind == "response.output_item.added":
            assert event["output_index"] == next_index, "items in output_index order"
            assert not open_items, "one item open at a time"
            open_items[event["output_index"]] = event["item"]
            next_index += 1
        elif kind == "response.output_item.done":
            index = event["output_index"]
            assert index in open_items, "done without added"
            assert event["item"]["id"] == open_items.pop(index)["id"], "same id on done"
            assert not any(p[0] == index for p in open_parts), "parts closed before the item"
            done_items[index] = event["item"]
        elif kind == "response.content_part.added":
            assert event["output_index"] in open_items
            open_parts.add((event["output_index"], event["content_index"]))
        elif kind == "response.content_part.done":
            open_parts.remove((event["output_index"], event["content_index"]))
        elif kind.endswith(".delta"):
            assert event["output_index"] in open_items, f"{kind} outside an open item"
            if "content_index" in event:
                assert (event["output_index"], event["content_index"]) in open_parts
    assert not open_items, "every added item is done before the terminal event"
    final = events[-1]["response"]
    assert [item["id"] for item in final["output"]] == [
        done_items[i]["id"] for i in sorted(done_items)
    ], "the final output carries exactly the streamed items"
