"""GET /v1/models and /v1/models/{model_id}: the names this server answers to."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State

from api.routes import _json, _runtime


@get("/v1/models", tags=["models"], summary="List the models clients may ask for")
async def list_models(request: Request[Any, Any, State], state: State) -> Response[bytes]:
    # Codex adds ?client_version=...; no query parameter changes the list.
    models = _runtime(state).models
    assert models is not None
    return _json(await models.list())


@get("/v1/models/{model_id:path}", tags=["models"], summary="Retrieve a model")
async def retrieve_model(
    model_id: str, request: Request[Any, Any, State], state: State
) -> Response[bytes]:
    models = _runtime(state).models
    assert models is not None
    return _json(await models.retrieve(model_id.lstrip("/")))
