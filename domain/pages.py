"""The list envelope every paged endpoint answers: {object: "list", data, first_id, last_id,
has_more}. One builder, so the three listings cannot disagree on it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def list_page(
    data: Sequence[T],
    has_more: bool,
    *,
    id_of: Callable[[T], str],
    encode: Callable[[T], Any] | None = None,
) -> dict[str, Any]:
    """`id_of` reads an entry's id; `encode` (optional) is what goes into `data` for it."""
    return {
        "object": "list",
        "data": list(data) if encode is None else [encode(entry) for entry in data],
        "first_id": id_of(data[0]) if data else None,
        "last_id": id_of(data[-1]) if data else None,
        "has_more": has_more,
    }
