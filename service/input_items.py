"""Input items that need storage or keys: item_reference lookups, sealed reasoning, and the
tool outputs that link to their calls in the audit."""

from __future__ import annotations

import time
from typing import Any

import orjson

from domain.errors import InvalidRequest
from domain.inputs import OUTPUT_TYPES, Item
from domain.ports import EventStore, ToolOutput
from service.sealing import Sealer


async def resolve_references(
    store: EventStore, items: list[Item], owner: str, param: str = "input"
) -> list[Item]:
    """Replace each item_reference with the stored item it names (this owner's only)."""
    if not any(item.get("type") == "item_reference" for item in items):
        return items
    resolved = []
    for index, item in enumerate(items):
        if item.get("type") != "item_reference":
            resolved.append(item)
            continue
        data = await store.find_item(owner, item["id"])
        if data is None:
            raise InvalidRequest(
                f"Item with id '{item['id']}' not found.",
                param=f"{param}[{index}].id",
                code="item_not_found",
            )
        resolved.append(orjson.loads(data))
    return resolved


def _sealed(item: Item) -> bool:
    # A compaction item is nothing but its blob: an empty one is refused like a changed one.
    kind = item.get("type")
    return kind == "compaction" or (kind == "reasoning" and bool(item.get("encrypted_content")))


def unseal(sealer: Sealer, items: list[Item], owner: str, first_new: int) -> list[Item]:
    """Items for the engine: sealed reasoning and compaction summaries opened (the stored
    items stay as sent)."""
    if not any(_sealed(i) for i in items):
        return items
    opened = []
    for position, item in enumerate(items):
        if _sealed(item):
            index = position - first_new
            param = f"input[{index}].encrypted_content" if index >= 0 else "input"
            blob = item.get("encrypted_content") or ""
            if item["type"] == "compaction":
                item = {**item, "summary": sealer.open_summary(blob, owner, param)}
            else:
                item = {**item, **sealer.open(blob, owner, param)}
        opened.append(item)
    return opened


def _output_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    return orjson.dumps(output).decode()  # content parts, kept whole for the record


def tool_outputs(items: list[Item], owner: str, response_id: str) -> list[ToolOutput]:
    now = time.time()
    return [
        ToolOutput(owner, item["call_id"], _output_text(item.get("output")), response_id, now)
        for item in items
        if item.get("type") in OUTPUT_TYPES
    ]
