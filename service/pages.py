"""A page of stored JSON entries (items kept as encoded bytes), in the one list envelope."""

from __future__ import annotations

from typing import Any

import orjson

from domain.pages import list_page


def stored_page(data: list[bytes], has_more: bool) -> dict[str, Any]:
    """The entries go out as stored, unparsed; only the first and last are read for their ids."""
    return list_page(data, has_more, id_of=lambda d: orjson.loads(d)["id"], encode=orjson.Fragment)
