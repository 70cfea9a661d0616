"""Bounds on the HTTP layer itself, below the app: how many header lines and bytes a request
may carry (431 above), how long a client may take to send its headers (408), and how long it
may leave a request body stalled (the connection is closed). uvicorn's httptools protocol has
none of these: a client could hold a connection forever a byte at a time."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_headers: int
    max_header_bytes: int  # request line and headers together
    header_timeout_s: float  # from the connection (or the previous response) to the last header
    body_timeout_s: float  # the longest pause inside a request body


class _Refused(Exception):
    """Raised from a parser callback: the parser stops and the protocol answers instead."""


def _response(status: str, message: str) -> bytes:
    body = message.encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


def guarded_protocol(limits: HttpLimits) -> type[asyncio.Protocol]:
    """An httptools protocol class for uvicorn's `http` option that enforces `limits`.

    Long because it is a class factory: the subclass's few small methods close over `limits`.
    """

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._refusal: bytes | None = None
            self._header_count = 0
            self._header_bytes = 0
            self._timer: asyncio.TimerHandle | None = None

        def _arm(self, seconds: float, then: Any) -> None:
            self._disarm()
            if seconds > 0:
                self._timer = self.loop.call_later(seconds, then)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _headers_too_slow(self) -> None:
            self._timer = None
            if not self.transport.is_closing():
                self.transport.write(_response(
                    "408 Request Timeout", "The request's headers took too long to arrive."))
                self.transport.close()

        def _body_too_slow(self) -> None:
            self._timer = None
            cycle: Any = self.cycle  # None before the first request, whatever uvicorn's types say
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True  # the app sees http.disconnect
                cycle.message_event.set()
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm(limits.header_timeout_s, self._headers_too_slow)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def send_400_response(self, msg: str) -> None:
            if self._refusal is None:
                super().send_400_response(msg)
                return
            self.transport.write(self._refusal)
            self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._header_count = 0
            self._header_bytes = 0
            if self._timer is None:  # a pipelined request: the clock starts with it
                self._arm(limits.header_timeout_s, self._headers_too_slow)

        def _count(self, size: int, lines: int) -> None:
            self._header_bytes += size
            self._header_count += lines
            if self._header_count > limits.max_headers:
                self._refuse(f"More than {limits.max_headers} request headers.")
            if self._header_bytes > limits.max_header_bytes:
                self._refuse(f"Request headers larger than {limits.max_header_bytes} bytes.")

        def _refuse(self, message: str) -> None:
            self._refusal = _response("431 Request Header Fields Too Large", message)
            raise _Refused(message)

        def on_url(self, url: bytes) -> None:
            self._count(len(url), 0)
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value), 1)
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._arm(limits.body_timeout_s, self._body_too_slow)
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            self._arm(limits.body_timeout_s, self._body_too_slow)
            super().on_body(body)

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # Between requests uvicorn's keep-alive timeout applies; then the next headers'.
            self._disarm()

        def data_received(self, data: bytes) -> None:
            cycle: Any = self.cycle  # None before the first request, whatever uvicorn's types say
            if self._timer is None and cycle is not None and cycle.response_complete:
                self._arm(limits.header_timeout_s, self._headers_too_slow)
            super().data_received(data)

    return GuardedHttpToolsProtocol
