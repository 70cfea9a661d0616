"""The OpenAPI document (/docs/openapi.json) and a Swagger UI page (/docs, /docs/swagger).

Swagger UI's files come from the swagger-ui-bundle-v2 package and are served by the app itself
under /docs/assets: the page loads nothing from any other host, so it works offline and leaks
nothing to a CDN.
"""

from __future__ import annotations

from typing import Any

import orjson
from litestar import Response, get
from litestar.datastructures import State
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from api.auth import OPEN

ASSETS = "/docs/assets"
DOCUMENT = "/docs/openapi.json"

assets = create_static_files_router(
    path=ASSETS, directories=[swagger_ui_path], name="swagger-ui", opt={OPEN: True},
    include_in_schema=False,
)

PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>responsed API</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
<link rel="icon" type="image/png" href="{ASSETS}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: "{DOCUMENT}",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null
}});
</script>
</body>
</html>
""".encode()


def _document(state: State) -> dict[str, Any]:
    document: dict[str, Any] = state.openapi  # set by create_app
    return document


@get(DOCUMENT, include_in_schema=False, opt={OPEN: True}, sync_to_thread=False)
def openapi_json(state: State) -> Response[bytes]:
    return Response(
        orjson.dumps(_document(state)), media_type="application/vnd.oai.openapi+json"
    )


@get(["/docs", "/docs/swagger"], include_in_schema=False, opt={OPEN: True}, sync_to_thread=False)
def swagger() -> Response[bytes]:
    return Response(PAGE, media_type="text/html")
