"""WebSocket mode at /v1/responses: the endpoint `client.responses.connect()` opens.

The key is checked at the handshake, as for HTTP: a refusal is an HTTP 401 in the error
envelope, before any socket exists. A reconnecting client resumes a response with
`?response_id=resp_…&starting_after=N` (the SDK's `on_reconnecting` can set both): it gets
the events after N, then the connection carries on as any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import Any

import orjson
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.types import WebSocketResponseBodyEvent, WebSocketResponseStartEvent

from api.auth import OPEN, authenticate
from api.http import runtime as _runtime
from api.params import MAX_CURSOR
from domain.errors import InvalidRequest, ResponsedError, Unauthorized
from domain.limits import RequestLimits
from service.socket_session import SocketSession, error_event, server_error_event

log = logging.getLogger("responsed.api")

# What the OpenAPI document says of this endpoint (under `x-websocket`: OpenAPI has no words
# for a WebSocket, and `paths` holds HTTP operations only).
OPENAPI_DESCRIPTION = {
    "path": "/v1/responses",
    "summary": "WebSocket mode: the endpoint `client.responses.connect()` opens",
    "handshake": "GET /v1/responses with `Upgrade: websocket` and the same bearer key as HTTP; "
    "a missing or wrong key is refused with HTTP 401 in the error envelope.",
    "query": {
        "response_id": "Resume this response on the new socket (with `starting_after`).",
        "starting_after": "The last sequence number the client holds (-1: all of them).",
    },
    "client_messages": "`response.create` (a create body; `stream` implicit, `background` "
    "refused, `generate: false` a warm-up, `stream_id` echoed) and `response.processed`.",
    "server_messages": "Each response's events as SSE carries them (same JSON, same sequence "
    "numbers), one response after another; `{\"type\": \"error\", \"status\", \"error\": "
    "{message, type, param, code}}` for a bad message, the connection staying open.",
    "documentation": "docs/websocket.md",
}

_INBOX = 16  # messages read ahead of the one being answered; the reader waits beyond that
_DENIAL = "websocket.http.response"  # the ASGI extension for refusing a handshake with HTTP


@websocket("/v1/responses", opt={OPEN: True})  # the handler checks the key itself (see above)
async def responses_socket(socket: WebSocket[Any, Any, Any]) -> None:
    runtime = _runtime(socket.app.state)
    try:
        principal = await authenticate(runtime, socket.scope)
    except ResponsedError as error:
        await _refuse(socket, error)
        return
    await socket.accept()
    settings = runtime.settings
    session = SocketSession(
        runtime.responses,
        runtime.store,
        principal.tenant,
        max_message_bytes=settings.max_body_bytes,
        limits=RequestLimits(settings.max_input_items, settings.max_output_tokens_ceiling),
    )
    inbox: asyncio.Queue[str | bytes | None] = asyncio.Queue(_INBOX)
    reader = asyncio.create_task(_read(socket, inbox))
    writer = asyncio.create_task(_serve(socket, session, inbox))
    try:
        await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # A dropped socket stops following at once; generation goes on without it.
        for task in (reader, writer):
            task.cancel()
        for task in (reader, writer):
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, OSError):
                await task
    if socket.connection_state != "disconnect":
        with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
            await socket.close()


async def _read(socket: WebSocket[Any, Any, Any], inbox: asyncio.Queue[str | bytes | None]) -> None:
    while True:
        message = await socket.receive()
        if message["type"] != "websocket.receive":
            return  # websocket.disconnect
        text = message.get("text")
        await inbox.put(text if text is not None else message.get("bytes") or b"")


async def _serve(
    socket: WebSocket[Any, Any, Any],
    session: SocketSession,
    inbox: asyncio.Queue[str | bytes | None],
) -> None:
    resume = _resume_cursor(socket)
    if isinstance(resume, ResponsedError):
        await socket.send_data(error_event(resume).decode())
    elif resume is not None:
        await _send_all(socket, session.resume(*resume))
    while True:
        raw = await inbox.get()
        if raw is None:
            return
        await _send_all(socket, session.handle(raw))


async def _send_all(
    socket: WebSocket[Any, Any, Any], frames: AsyncGenerator[bytes, None]
) -> None:
    async with contextlib.aclosing(frames):
        try:
            async for frame in frames:
                await socket.send_text(frame.decode())
        except (WebSocketDisconnect, OSError):
            raise
        except Exception:
            log.exception("unhandled error on a WebSocket connection")
            await socket.send_text(server_error_event().decode())


def _resume_cursor(socket: WebSocket[Any, Any, Any]) -> tuple[str, int] | ResponsedError | None:
    """`response_id` and `starting_after` (or `Last-Event-ID`) of a reconnecting socket."""
    query = socket.query_params
    try:
        for name in ("response_id", "starting_after"):
            if len(query.getall(name, [])) > 1:
                raise InvalidRequest(
                    f"Invalid '{name}': expected a single value.", param=name, code="invalid_value"
                )
        response_id = query.get("response_id")
        header = socket.headers.get("last-event-id")
        cursor = _cursor(query.get("starting_after", header))
        if response_id is None:
            if cursor is not None:
                raise InvalidRequest(
                    "Missing required parameter: 'response_id' (the response to resume).",
                    param="response_id",
                    code="missing_required_parameter",
                )
            return None
    except ResponsedError as error:
        return error
    return response_id, -1 if cursor is None else cursor


def _cursor(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise InvalidRequest(
            f"Invalid 'starting_after': expected an integer, but got '{value[:50]}'.",
            param="starting_after",
            code="invalid_type",
        ) from None
    if not -1 <= number <= MAX_CURSOR:
        raise InvalidRequest(
            f"Invalid 'starting_after': expected a value between -1 and {MAX_CURSOR}.",
            param="starting_after",
            code="invalid_value",
        )
    return number


async def _refuse(socket: WebSocket[Any, Any, Any], error: ResponsedError) -> None:
    """Answer the handshake with the HTTP error, where the server can; otherwise accept, say
    why in an error event and close with 1008 (policy violation: the SDK does not retry it)."""
    body = orjson.dumps(
        {"error": {"message": error.message, "type": error.type, "param": error.param,
                   "code": error.code}}
    )
    if _DENIAL in (socket.scope.get("extensions") or {}):
        await socket.receive()  # websocket.connect
        headers = [(b"content-type", b"application/json")]
        headers += [(k.lower().encode(), v.encode()) for k, v in (error.headers or {}).items()]
        start: WebSocketResponseStartEvent = {
            "type": "websocket.http.response.start", "status": error.status, "headers": headers
        }
        await socket.send(start)
        end: WebSocketResponseBodyEvent = {
            "type": "websocket.http.response.body", "body": body, "more_body": False
        }
        await socket.send(end)
        return
    await socket.accept()
    await socket.send_data(error_event(error).decode())
    await socket.close(code=1008 if isinstance(error, Unauthorized) else 1011)
