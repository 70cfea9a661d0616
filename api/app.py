"""The Litestar application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin

from api.audit import list_tool_calls
from api.conversations import ConversationsController
from api.errors import on_http_exception, on_responsed_error, on_unexpected
from api.routes import ResponsesController, healthz, prometheus_metrics, readyz
from domain.errors import ResponsedError
from service import metrics
from service.runtime import Runtime
from service.settings import Settings


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()

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

    return Litestar(
        route_handlers=[
            ResponsesController,
            ConversationsController,
            list_tool_calls,
            healthz,
            readyz,
            prometheus_metrics,
        ],
        lifespan=[lifespan],
        exception_handlers={
            ResponsedError: on_responsed_error,
            HTTPException: on_http_exception,
            Exception: on_unexpected,
        },
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="responsed",
            version="0.1.0",
            description="An event-sourced server for the OpenAI Responses API.",
            path="/docs",
            render_plugins=[SwaggerRenderPlugin(), JsonRenderPlugin()],
        ),
        debug=False,
    )
