"""A loopback TCP proxy that drops connections the way a network does: every byte stops, no
close frame goes either way, and the WebSocket client sees code 1006.

`drop_after_frames = N` arms the next connection: it is cut right after the N-th WebSocket frame
from the server has reached the client, however fast the server streams. The cut does not
depend on timing: the client holds exactly N messages when its socket dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType


def _frame_size(buffer: bytes, pos: int) -> int | None:
    """Bytes of the whole frame starting at `pos`, once all of it is in `buffer`."""
    if len(buffer) - pos < 2:
        return None
    length, header = buffer[pos + 1] & 0x7F, 2
    if length == 126:
        if len(buffer) - pos < 4:
            return None
        length, header = int.from_bytes(buffer[pos + 2 : pos + 4], "big"), 4
    elif length == 127:
        if len(buffer) - pos < 10:
            return None
        length, header = int.from_bytes(buffer[pos + 2 : pos + 10], "big"), 10
    if buffer[pos + 1] & 0x80:
        header += 4  # masked
    size = header + length
    return size if len(buffer) - pos >= size else None


class _FrameCounter:
    """Reads the server's side of a WebSocket connection: its HTTP handshake, then frames."""

    def __init__(self, frames: int) -> None:
        self.left = frames
        self._pending = b""
        self._past_handshake = False

    def feed(self, data: bytes) -> int | None:
        """How many bytes of `data` to pass before cutting; None: all of it, no cut yet."""
        previous = len(self._pending)
        buffer = self._pending + data
        pos = 0
        if not self._past_handshake:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self._pending = buffer
                return None
            pos, self._past_handshake = end + 4, True
        while (size := _frame_size(buffer, pos)) is not None:
            pos += size
            self.left -= 1
            if self.left == 0:
                return pos - previous
        self._pending = buffer[pos:]
        return None


class TcpProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port  # where new connections go; a test may move it
        self.drop_after_frames: int | None = None  # arms the next connection (see above)
        self.port = 0
        self.connections = 0  # accepted so far
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._transports: set[asyncio.BaseTransport] = set()
        self._server: asyncio.Server | None = None

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop
        ).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cut()
        assert self._server is not None
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def cut(self) -> None:
        """Abort every open connection, both sides, and wait until it is done."""

        async def abort() -> None:
            for transport in list(self._transports):
                transport.abort()  # type: ignore[attr-defined]
            self._transports.clear()

        asyncio.run_coroutine_threadsafe(abort(), self._loop).result(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        frames, self.drop_after_frames = self.drop_after_frames, None
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer.transport, up_writer.transport)
        self._transports.update(pair)
        counter = _FrameCounter(frames) if frames else None
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer, counter, pair))
        for transport in pair:
            self._transports.discard(transport)


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    counter: _FrameCounter | None = None,
    pair: tuple[asyncio.BaseTransport, ...] = (),
) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            allowed = counter.feed(data) if counter is not None else None
            if allowed is not None:
                writer.transport.set_write_buffer_limits(0)  # drain: all of it out, then cut
                writer.write(data[:allowed])
                await writer.drain()
                for transport in pair:
                    transport.abort()  # type: ignore[attr-defined]
                return
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(ConnectionError, OSError, RuntimeError):
        writer.close()
