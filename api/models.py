"""GET /v1/models and /v1/models/{model_id}: the names this server answers to."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State

from api.http import json_reply, runtime
from api.openapi import reply
from api.surface_schema import Model, ModelList


@get(
    "/v1/models",
    tags=["models"],
    operation_id="listModels",
    summary="List the models clients may ask for",
    description="The model map's names and what the engines list (asked at most every 30 s); "
    "an engine that does not answer is left out, never an error. Codex's `client_version` "
    "query parameter changes nothing.",
    responses={200: reply(ModelList, "The models.")},
)
async def list_models(request: Request[Any, Any, State], state: State) -> Response[bytes]:
    models = runtime(state).models
    assert models is not None
    return json_reply(await models.list())


@get(
    "/v1/models/{model_id:path}",
    tags=["models"],
    operation_id="retrieveModel",
    summary="Retrieve a model",
    responses={200: reply(Model, "The model.")},
)
async def retrieve_model(
    model_id: str, request: Request[Any, Any, State], state: State
) -> Response[bytes]:
    models = runtime(state).models
    assert models is not None
    return json_reply(await models.retrieve(model_id.lstrip("/")))
