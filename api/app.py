"""The Litestar application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.di import Provide
from litestar.exceptions import HTTPException

from api.audit import list_tool_calls
from api.auth import AuthMiddleware
from api.body import provide_body
from api.compaction import compact
from api.conversations import ConversationsController
from api.docs import assets, openapi_json, swagger
from api.errors import on_http_exception, on_responsed_error, on_unexpected
from api.input_tokens import count_input_tokens
from api.inspect import (
    activity,
    inspector_files,
    inspector_page,
    list_responses,
    response_events,
    verify_chains,
)
from api.models import list_models, retrieve_model
from api.openapi import build_openapi
from api.params import provide_params
from api.routes import ResponsesController, healthz, prometheus_metrics, readyz
from api.websocket import responses_socket
from domain.errors import ResponsedError
from service import metrics
from service.runtime import Runtime
from service.settings import Settings


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    settings.auth_required  # noqa: B018 - an unknown auth mode fails here, before serving

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        runtime = await Runtime.start(settings)
        app.state.runtime = runtime
        metrics.gauge(
            "responsed_responses_running",
            "Runs in progress in this process.",
            lambda: runtime.dispatcher.running,
        )
        try:
            yield
        finally:
            await runtime.close()

    app = Litestar(
        route_handlers=[
            ResponsesController,
            compact,
            list_models,
            retrieve_model,
            count_input_tokens,
            responses_socket,
            ConversationsController,
            list_tool_calls,
            list_responses,
            response_events,
            verify_chains,
            activity,
            inspector_page,
            inspector_files,
            healthz,
            readyz,
            prometheus_metrics,
            openapi_json,
            swagger,
            assets,
        ],
        lifespan=[lifespan],
        middleware=[AuthMiddleware()],
        # What a handler's `params` / `payload` argument is typed with is what it gets.
        dependencies={
            "params": Provide(provide_params, sync_to_thread=False),
            "payload": Provide(provide_body),
        },
        exception_handlers={
            ResponsedError: on_responsed_error,
            HTTPException: on_http_exception,
            Exception: on_unexpected,
        },
        request_max_body_size=settings.max_body_bytes,
        openapi_config=None,  # api.openapi generates the document; api.docs serves it
        debug=False,
    )
    app.state.openapi = build_openapi(app, settings)
    return app
