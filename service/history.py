"""What comes before a request's own input when it names a previous response."""

from __future__ import annotations

from typing import Any

import orjson

from domain.errors import InvalidRequest
from domain.ports import EventStore


async def previous_response_items(
    store: EventStore, previous_id: str | None, owner: str
) -> list[dict[str, Any]]:
    """previous_response_id: its resolved input and its output, this owner's only."""
    if previous_id is None:
        return []
    record = await store.get(previous_id)
    if record is None or record.owner != owner:
        raise InvalidRequest(
            f"Previous response with id '{previous_id}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    if record.snapshot is None:
        raise InvalidRequest(
            f"Previous response with id '{previous_id}' has not finished yet.",
            param="previous_response_id",
            code="previous_response_in_progress",
        )
    inputs, _ = await store.input_items(previous_id, after=None, limit=10_000, descending=False)
    output: list[dict[str, Any]] = orjson.loads(record.snapshot)["output"]
    return [orjson.loads(item) for item in inputs] + output
