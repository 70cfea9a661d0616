"""WebSocket mode: one connection, `response.create` messages in, the same events as SSE out.

A session handles one client message at a time, so the responses of a connection run in turn
and their events never interleave. Every event goes out exactly as the log holds it (the SSE
`data:` bytes, with its `sequence_number`); a failure a client can be told about is an `error`
event in the shape the SDK and Codex read (`{"type": "error", "status", "error": {...}}`), and
the connection stays open for the next message.

`previous_response_id` naming the connection's last response with `store: false` (or its last
`generate: false` warm-up) is answered from the connection's memory (nothing of it was stored),
as OpenAI's WebSocket mode does.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import orjson

from domain.errors import InvalidRequest, PayloadTooLarge, ResponsedError
from domain.limits import RequestLimits, check_depth
from domain.ports import EventStore
from domain.response import TERMINAL_EVENTS
from service.history import previous_response_items
from service.responses import ResponsesService
from service.warmup import warm_up

CREATE = "response.create"
PROCESSED = "response.processed"  # Codex's acknowledgement of a finished response
STEER = "response.steer"
# Fields of a `response.create` message that belong to the socket, not to the create body.
_ENVELOPE = ("type", "stream_id")


def error_event(error: ResponsedError) -> bytes:
    event: dict[str, Any] = {
        "type": "error",
        "status": error.status,
        "error": {
            "type": error.type,
            "code": error.code,
            "message": error.message,
            "param": error.param,
        },
    }
    if error.headers:
        event["error"]["headers"] = error.headers
    return orjson.dumps(event)


def server_error_event() -> bytes:
    error = ResponsedError("The server had an error while processing your request.")
    error.status, error.type = 500, "server_error"
    return error_event(error)


@dataclass(slots=True)
class _Unstored:
    """The connection's last unstored response or warm-up: what a follow-up's history is."""

    response_id: str
    items: list[dict[str, Any]]  # its input (history included), then its output


def _with_stream_id(data: bytes, stream_id: str | None) -> bytes:
    if stream_id is None:
        return data
    return data[:-1] + b',"stream_id":' + orjson.dumps(stream_id) + b"}"


class SocketSession:
    def __init__(
        self,
        responses: ResponsesService,
        store: EventStore,
        owner: str,
        *,
        max_message_bytes: int,
        limits: RequestLimits | None = None,
    ) -> None:
        self._responses = responses
        self._store = store
        self._owner = owner
        self._max_message_bytes = max_message_bytes
        self._limits = limits or RequestLimits()
        self._unstored: _Unstored | None = None

    async def resume(self, response_id: str, cursor: int) -> AsyncGenerator[bytes, None]:
        """A reconnected socket: the events of `response_id` after `cursor`, then the live ones
        to the end, exactly once each."""
        try:
            events = await self._responses.stream(response_id, self._owner, cursor)
        except ResponsedError as error:
            yield error_event(error)
            return
        async with contextlib.aclosing(events):
            async for batch in events:
                for event in batch or ():
                    yield event.data

    async def handle(self, raw: str | bytes) -> AsyncGenerator[bytes, None]:
        """What one client message is answered with."""
        try:
            message = self._parse(raw)
            kind = message.get("type")
            if kind == CREATE:
                async for frame in self._create(message):
                    yield frame
            elif kind == PROCESSED:
                return  # nothing to release: the log is kept by its retention, not the socket
            elif kind == STEER:
                raise InvalidRequest(
                    "'response.steer' is not supported by this server: send a new "
                    "'response.create' with previous_response_id instead.",
                    param="type",
                    code="unsupported_event_type",
                )
            else:
                raise InvalidRequest(
                    f"Invalid 'type': expected '{CREATE}', but got "
                    f"{orjson.dumps(kind).decode()[:100]}.",
                    param="type",
                    code="invalid_value" if isinstance(kind, str) else "missing_required_parameter",
                )
        except ResponsedError as error:
            yield error_event(error)

    def _parse(self, raw: str | bytes) -> dict[str, Any]:
        size = len(raw.encode() if isinstance(raw, str) else raw)
        if size > self._max_message_bytes:
            raise PayloadTooLarge(
                f"The message is too large: {size} bytes, at most {self._max_message_bytes}.",
                code="request_too_large",
            )
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidRequest(
                "We could not parse the JSON of your message: each message must be one JSON "
                "object such as {\"type\": \"response.create\", ...}.",
                code="invalid_json",
            ) from None
        if not isinstance(message, dict):
            raise InvalidRequest("A message must be a JSON object.", code="invalid_json")
        check_depth(message)
        return message

    async def _create(self, message: dict[str, Any]) -> AsyncGenerator[bytes, None]:
        stream_id = message.get("stream_id")
        if stream_id is not None and not isinstance(stream_id, str):
            raise InvalidRequest(
                "Invalid type for 'stream_id': expected a string.",
                param="stream_id",
                code="invalid_type",
            )
        body = {k: v for k, v in message.items() if k not in _ENVELOPE}
        if body.get("background"):
            raise InvalidRequest(
                "Background mode is not supported over WebSocket: use POST /v1/responses.",
                param="background",
                code="unsupported_parameter",
            )
        generate = body.pop("generate", True)
        if not isinstance(generate, bool):
            raise InvalidRequest(
                "Invalid type for 'generate': expected a boolean.",
                param="generate",
                code="invalid_type",
            )
        body["stream"] = True  # implicit over a socket
        previous = body.get("previous_response_id")
        local = self._unstored
        history = local.items if local is not None and previous == local.response_id else None
        if not generate:
            if history is None and isinstance(previous, str):
                history = await previous_response_items(self._store, previous, self._owner)
            frames, response_id, items = await warm_up(
                self._store, body, self._owner, history or [], self._limits
            )
            for frame in frames:
                yield _with_stream_id(frame, stream_id)
            self._unstored = _Unstored(response_id, items)
            return
        created = await self._responses.create(body, self._owner, local_history=history)
        assert created.events is not None  # streamed: never a background answer
        unstored = created.request.store is False
        last: bytes | None = None
        async with contextlib.aclosing(created.events):
            async for batch in created.events:
                for event in batch or ():
                    last = event.data
                    yield _with_stream_id(event.data, stream_id)
                if batch and batch[-1].type in TERMINAL_EVENTS:
                    break
        if unstored and last is not None and created.items is not None:
            response = orjson.loads(last)["response"]
            self._unstored = _Unstored(response["id"], created.items + response["output"])
