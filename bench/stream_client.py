"""A lean HTTP/1.1 client for one streamed request at a time over a keep-alive connection.

It decodes chunked transfer encoding and counts server-sent events by scanning bytes
rather than parsing JSON, so one core can follow well over 50,000 events per second.
Events are only scanned once complete (up to their blank line), which keeps the counts
right whatever way the bytes are split across reads and HTTP chunks.
"""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from dataclasses import dataclass, field
from typing import Literal, cast

Mode = Literal["engine", "responses"]

_RESPONSES_DELTA = (
    b"\nevent: response.output_text.delta\n",
    b"\nevent:response.output_text.delta\n",
)
_RESPONSES_OK = (b"response.completed", b"response.incomplete")
_RESPONSES_END = (*_RESPONSES_OK, b"response.failed", b"error")
_DONE = (b"\ndata: [DONE]\n", b"\ndata:[DONE]\n")


@dataclass
class Gaps:
    """Inter-delta gaps of many streams; deltas read together count as zero gaps."""

    nonzero: array[float] = field(default_factory=lambda: array("d"))
    zeros: int = 0

    def __len__(self) -> int:
        return len(self.nonzero) + self.zeros

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile, p in [0, 100]."""
        rank = _rank(len(self), p)
        if rank <= self.zeros:
            return 0.0 if rank else float("nan")
        return sorted(self.nonzero)[rank - self.zeros - 1]

    def max(self) -> float:
        if not len(self):
            return float("nan")
        return max(self.nonzero, default=0.0)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of unsorted values, p in [0, 100]; NaN when empty."""
    rank = _rank(len(values), p)
    return sorted(values)[rank - 1] if rank else float("nan")


def _rank(total: int, p: float) -> int:
    return min(total, max(1, math.ceil(total * p / 100))) if total else 0


@dataclass
class StreamResult:
    ok: bool
    deltas: int
    ttft: float | None  # seconds from just before the request was written to the first delta
    finished: float  # perf_counter() when the stream ended
    error: str | None = None
    first_event: float | None = None  # seconds from the request to the first complete event
    events: int = 0  # complete events read (responses mode)


class StreamConnection(asyncio.Protocol):
    """One connection; `request()` sends a request and follows its event stream."""

    def __init__(self, mode: Mode, gaps: Gaps) -> None:
        self.mode = mode
        self.gaps = gaps
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._done: asyncio.Future[StreamResult] | None = None
        self._reset(0.0)

    @classmethod
    async def open(cls, host: str, port: int, mode: Mode, gaps: Gaps) -> StreamConnection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(lambda: cls(mode, gaps), host, port)
        return protocol

    async def request(self, data: bytes, limit_s: float) -> StreamResult:
        """Send `data` and follow the reply for at most `limit_s` seconds."""
        assert self.transport is not None and self._done is None
        self._done = asyncio.get_running_loop().create_future()
        self._reset(time.perf_counter())
        self.transport.write(data)
        try:
            async with asyncio.timeout(limit_s):
                return await self._done
        except TimeoutError:
            self.close()
            return self._result(False, f"timeout after {limit_s:g} s")
        finally:
            self._done = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # -- state of the current response -----------------------------------------------------

    def _reset(self, started: float) -> None:
        self._started = started
        self._head = bytearray()
        self._in_body = False
        self._status = 0
        self._keep_alive = True
        self._chunked = False
        self._remaining = -1  # body bytes still due with content-length; -1: until close
        self._chunk_left = 0
        self._need_crlf = False
        self._trailers = False
        self._raw = bytearray()
        # Starts with "\n" so every event, the first included, is preceded by a newline.
        self._sse = bytearray(b"\n")
        self._deltas = 0
        self._events = 0
        self._first_event: float | None = None
        self._ttft: float | None = None
        self._last = 0.0
        self._ended_at: float | None = None
        self._end: bytes | None = None

    def _result(self, ok: bool, error: str | None) -> StreamResult:
        finished = self._ended_at or time.perf_counter()
        return StreamResult(
            ok,
            self._deltas,
            self._ttft,
            finished,
            None if ok else error,
            self._first_event,
            self._events,
        )

    def _finish(self) -> None:
        if self._status != 200:
            result = self._result(False, f"HTTP {self._status}")
        elif self.mode == "engine":
            result = self._result(self._end is not None, "stream ended without [DONE]")
        else:
            ok = self._end in _RESPONSES_OK
            end = self._end.decode() if self._end else "no terminal event"
            result = self._result(ok, f"stream ended with {end}")
        if not self._keep_alive:
            self.close()
        if self._done is not None and not self._done.done():
            self._done.set_result(result)

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, hence the cast.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._done is None or self._done.done():
            return
        if self._in_body and not self._chunked and self._remaining < 0:
            self._finish()  # the body was delimited by the close
        else:
            self._done.set_result(self._result(False, "connection closed mid-response"))

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if self._done is None or self._done.done():
            return  # bytes after a finished response: nothing is listening
        if not self._in_body:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            self._parse_head(bytes(self._head[:end]))
            data = bytes(self._head[end + 4 :])
            self._in_body = True
            if self._done.done():
                return
        if self._chunked:
            self._dechunk(data, now)
        elif self._remaining >= 0:
            data = data[: self._remaining]
            self._remaining -= len(data)
            self._scan(data, now)
            if self._remaining == 0:
                self._finish()
        else:
            self._scan(data, now)

    # -- parsing ---------------------------------------------------------------------------

    def _parse_head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        self._status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "transfer-encoding" and "chunked" in value:
                self._chunked = True
            elif name == "content-length":
                self._remaining = int(value)
            elif name == "connection" and value == "close":
                self._keep_alive = False
        if self._remaining < 0 and not self._chunked:
            self._keep_alive = False
        if self._remaining == 0:
            self._finish()

    def _dechunk(self, data: bytes, now: float) -> None:
        raw = self._raw
        raw += data
        pos = 0
        size = len(raw)
        pieces = []
        while pos < size:
            if self._chunk_left:
                take = min(self._chunk_left, size - pos)
                pieces.append(raw[pos : pos + take])
                pos += take
                self._chunk_left -= take
                self._need_crlf = self._chunk_left == 0
            elif self._need_crlf:
                if size - pos < 2:
                    break
                pos += 2
                self._need_crlf = False
            else:
                end = raw.find(b"\r\n\r\n" if self._trailers else b"\r\n", pos)
                if end < 0:
                    break
                if self._trailers:
                    pos = size
                    self._scan(b"".join(pieces), now)
                    self._finish()
                    return
                chunk_size = int(raw[pos:end].split(b";", 1)[0], 16)
                if chunk_size == 0:
                    # Trailers end with a blank line; without any it follows at once.
                    self._trailers = True
                    pos = end
                    continue
                self._chunk_left = chunk_size
                pos = end + 2
        del raw[:pos]
        if pieces:
            self._scan(b"".join(pieces), now)

    def _scan(self, data: bytes, now: float) -> None:
        sse = self._sse
        sse += data
        if b"\r" in sse:
            sse = self._sse = sse.replace(b"\r\n", b"\n")
        end = sse.rfind(b"\n\n") + 2  # complete events: sse[:end]
        if end < 2:
            return
        if self._first_event is None:
            self._first_event = now - self._started
        if self.mode == "engine":
            count = sse.count(b'"content":"', 0, end) - sse.count(b'"content":""', 0, end)
            if self._end is None and any(sse.find(m, 0, end) >= 0 for m in _DONE):
                self._end = b"[DONE]"
                self._ended_at = now
        else:
            count = sum(sse.count(m, 0, end) for m in _RESPONSES_DELTA)
            events = sse.count(b"\nevent:", 0, end)
            self._events += events
            # Only look for a terminal event when there are events other than deltas.
            others = events > count or sse.find(b"[DONE]", 0, end) >= 0
            if self._end is None and others:
                self._end = self._terminal(sse, end)
                if self._end is not None:
                    self._ended_at = now
        del sse[: end - 1]
        if count:
            self._record(count, now)

    def _terminal(self, sse: bytearray, end: int) -> bytes | None:
        for name in _RESPONSES_END:
            for sep in (b"\nevent: ", b"\nevent:"):
                if sse.find(sep + name + b"\n", 0, end) >= 0:
                    return name
        if any(sse.find(m, 0, end) >= 0 for m in _DONE):
            return b"[DONE]"
        return None

    def _record(self, count: int, now: float) -> None:
        self._deltas += count
        if self._ttft is None:
            self._ttft = now - self._started
        else:
            self.gaps.nonzero.append(now - self._last)
        self.gaps.zeros += count - 1
        self._last = now
