"""What every route module needs: the runtime, the calling tenant, and a JSON reply."""

from __future__ import annotations

from typing import Any

import orjson
from litestar import Request, Response
from litestar.datastructures import State

from api.auth import principal
from service.runtime import Runtime

JSON = "application/json"


def runtime(state: State) -> Runtime:
    wired: Runtime = state.runtime  # set by create_app
    return wired


def owner(request: Request[Any, Any, Any]) -> str:
    """The tenant the request acts for (api.auth): it owns what it creates and reads only that."""
    return principal(request).tenant


def json_reply(content: bytes | dict[str, Any], status: int = 200) -> Response[bytes]:
    body = content if isinstance(content, bytes) else orjson.dumps(content)
    return Response(body, media_type=JSON, status_code=status)
