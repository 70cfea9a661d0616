"""The OpenAPI document (/docs/openapi.json) and a Swagger UI page (/docs, /docs/swagger)."""

from __future__ import annotations

from typing import Any

import orjson
from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.openapi.plugins import SwaggerRenderPlugin

from api.auth import OPEN

_SWAGGER = SwaggerRenderPlugin(path="/docs")


def _document(state: State) -> dict[str, Any]:
    return state.openapi  # type: ignore[no-any-return]


@get("/docs/openapi.json", include_in_schema=False, opt={OPEN: True}, sync_to_thread=False)
def openapi_json(state: State) -> Response[bytes]:
    return Response(
        orjson.dumps(_document(state)), media_type="application/vnd.oai.openapi+json"
    )


@get(["/docs", "/docs/swagger"], include_in_schema=False, opt={OPEN: True}, sync_to_thread=False)
def swagger(request: Request[Any, Any, State], state: State) -> Response[bytes]:
    return Response(_SWAGGER.render(request, _document(state)), media_type="text/html")
