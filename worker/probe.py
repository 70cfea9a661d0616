"""A worker's own small HTTP endpoint: /metrics for Prometheus, /healthz for orchestrators."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import uvicorn

from service import metrics
from service.runtime import Runtime

Message = dict[str, Any]
ASGIApp = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


def probe_app(runtime: Runtime) -> ASGIApp:
    async def app(scope: Message, receive: Callable[[], Awaitable[Message]],
                  send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/metrics":
            status, kind, body = 200, b"text/plain; version=0.0.4", metrics.render().encode()
        elif scope["path"] == "/healthz":
            checks = await runtime.ready()
            status = 200 if all(checks.values()) else 503
            kind = b"application/json"
            body = orjson.dumps({"role": runtime.role, "dependencies": checks,
                                 "running": runtime.worker.running if runtime.worker else 0})
        else:
            status, kind, body = 404, b"text/plain", b"not found"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", kind)]})
        await send({"type": "http.response.body", "body": body})

    return app


async def serve_probe(runtime: Runtime, host: str, port: int) -> uvicorn.Server:
    metrics.gauge("responsed_responses_running", "Runs in progress in this process.",
                  lambda: runtime.worker.running if runtime.worker else 0)
    server = uvicorn.Server(uvicorn.Config(probe_app(runtime), host=host, port=port,
                                           log_level="warning", lifespan="off"))
    asyncio.get_running_loop().create_task(server.serve(), name="probe")
    return server
