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


def unseal(sealer: Sealer, items: list[Item], owner: str, first_new: int) -> list[Item]:
    """Items for the engine: sealed reasoning opened (the stored items stay as sent)."""
    if not any(i.get("type") == "reasoning" and i.get("encrypted_content") for i in items):
        return items
    opened = []
    for position, item in enumerate(items):
        if item.get("type") == "reasoning" and item.get("encrypted_content"):
            index = position - first_new
            param = f"input[{index}].encrypted_content" if index >= 0 else "input"
            item = {**item, **sealer.open(item["encrypted_content"], owner, param)}
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
