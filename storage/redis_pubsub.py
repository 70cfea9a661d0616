"""A process's one Redis pub/sub connection, owned by one task.

redis-py's PubSub reconnects from whichever coroutine meets the dead connection first, so a
subscribe racing the reader could reconnect under it (`'NoneType' object has no attribute
'writelines'`, `read() called while another coroutine is already waiting`). Here one task
connects, reads and reconnects; other coroutines only append SUBSCRIBE / UNSUBSCRIBE to the
live connection's write buffer, which never raises into them. A connection that is killed,
reset, or silent past an unanswered PING is replaced and every wanted channel subscribed
again; meanwhile subscribers hear they lag and read the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger("responsed.bus")

CONFIRM_TIMEOUT_S = 2.0  # a subscription not confirmed by then reads the store instead
PING_AFTER_S = 5.0  # silence before the connection is pinged; no answer by the next: replaced
CONNECT_TIMEOUT_S = 5.0
_MAX_BACKOFF_S = 2.0


class PubSubChannels:
    """Which channels this process listens to, kept subscribed on one live connection."""

    def __init__(
        self,
        pool: Any,  # redis.asyncio ConnectionPool: its settings make the connection
        on_lost: Callable[[], None],
        on_message: Callable[[str, bytes], None],
    ) -> None:
        self._pool = pool
        self._on_lost = on_lost
        self._on_message = on_message
        self._wanted: set[str] = set()
        self._conn: Any = None  # set while connected and read by the task
        self._connected = asyncio.Event()
        self._work = asyncio.Event()
        # One future per SUBSCRIBE sent on this connection, in order: Redis confirms in order.
        self._unconfirmed: dict[str, deque[asyncio.Future[bool]]] = {}
        self._latest: dict[str, asyncio.Future[bool]] = {}
        self._healthy = True  # no failed connection since the last good one
        self._task: asyncio.Task[None] | None = None

    async def subscribe(self, channel: str) -> bool:
        """Listen to `channel`; True once Redis confirmed it (from then on nothing published
        to it is missed while the connection lives)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="redis-pubsub")
        if channel not in self._wanted:
            self._wanted.add(channel)
            self._work.set()
            if self._conn is not None:
                self._send_subscribe([channel])
        if self._conn is None and not self._healthy:
            return False  # Redis is away: do not hold the request up
        try:
            async with asyncio.timeout(CONFIRM_TIMEOUT_S):
                await self._connected.wait()  # the connection subscribes every wanted channel
                future = self._latest.get(channel)
                return future is not None and await asyncio.shield(future)
        except TimeoutError:
            return False

    def unsubscribe(self, channel: str) -> None:
        self._wanted.discard(channel)
        self._latest.pop(channel, None)
        if self._conn is not None:
            self._write(self._conn, "UNSUBSCRIBE", channel)

    # -- the connection's task ------------------------------------------------------------------
    def _send_subscribe(self, channels: Iterable[str]) -> None:
        channels = list(channels)
        loop = asyncio.get_running_loop()
        for channel in channels:
            future = loop.create_future()
            self._unconfirmed.setdefault(channel, deque()).append(future)
            self._latest[channel] = future
        if channels:
            self._write(self._conn, "SUBSCRIBE", *channels)

    @staticmethod
    def _write(conn: Any, *args: str) -> None:
        """Append a command to the connection's buffer, synchronously: commands go out in call
        order, and a dead connection is the reading task's to notice, not the caller's."""
        writer = getattr(conn, "_writer", None)
        if writer is None:
            return
        with contextlib.suppress(Exception):
            writer.writelines(conn.pack_command(*args))

    async def _run(self) -> None:
        delay = 0.0
        while True:
            if not self._wanted:
                self._work.clear()
                await self._work.wait()
                continue
            conn = self._pool.make_connection()
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    await conn.connect()
                self._conn = conn
                self._send_subscribe(self._wanted)
                self._connected.set()
                if not self._healthy:
                    log.info("Redis subscription connection is back")
                    self._healthy = True
                    self._on_lost()  # what was published meanwhile is in the store
                delay = 0.0
                await self._read(conn)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if self._healthy:
                    log.warning("lost the Redis subscription connection: %s",
                                str(error) or type(error).__name__)
                self._healthy = False
            finally:
                self._lost()
                with contextlib.suppress(Exception):
                    await conn.disconnect(nowait=True)
            await asyncio.sleep(delay)
            delay = min(max(delay * 2, 0.05), _MAX_BACKOFF_S)

    def _lost(self) -> None:
        self._conn = None
        self._connected.clear()
        self._latest.clear()
        unconfirmed, self._unconfirmed = self._unconfirmed, {}
        for futures in unconfirmed.values():
            for future in futures:
                if not future.done():
                    future.set_result(False)
        self._on_lost()

    async def _read(self, conn: Any) -> None:
        pinged = False
        while True:
            reply = await conn.read_response(
                timeout=PING_AFTER_S, disconnect_on_error=False, push_request=True
            )
            if reply is None:  # silence
                if pinged:
                    raise ConnectionError("no answer to a PING")
                self._write(conn, "PING")
                pinged = True
                continue
            pinged = False
            if isinstance(reply, list) and len(reply) >= 3:
                kind = reply[0]
                if kind == b"message":
                    self._on_message(reply[1].decode(), reply[2])
                elif kind == b"subscribe":
                    self._confirm(reply[1].decode())

    def _confirm(self, channel: str) -> None:
        futures = self._unconfirmed.get(channel)
        if futures:
            future = futures.popleft()
            if not futures:
                del self._unconfirmed[channel]
            if not future.done():
                future.set_result(True)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
