"""Database URLs and engines: SQLite (WAL, one writer) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, pool
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger("responsed.storage")

WAL_SIZE_LIMIT = 16 * 1024 * 1024
# Past this size the writer starts the WAL over (see SqliteCheckpointer.restart).
WAL_RESTART_BYTES = 64 * 1024 * 1024


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (postgres://, postgresql://) and pick the async drivers."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


def sqlite_url(data_dir: str | Path) -> str:
    path = Path(data_dir).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{path / 'responsed.db'}"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _sqlite_pragmas(engine: Engine, *, writer: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event decide how transactions open (below).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        if writer:
            # Checkpoints (and their fsync) run in a thread instead: see SqliteCheckpointer.
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            # The WAL file keeps its largest size unless told otherwise: shrink it back when
            # the log restarts, so the store's size on disk follows what it holds.
            cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock up front so they never fail to upgrade a read lock mid-way.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def sqlite_writer(url: str) -> Engine:
    """The one SQLite writer connection, used synchronously on the event loop's thread.

    SQLite in WAL mode with synchronous=NORMAL commits without an fsync, so a batch of a
    thousand events takes a few milliseconds of plain CPU. Run in aiosqlite's thread instead,
    every step of it waits for the GIL held by a busy event loop, and a flush stretched to
    hundreds of milliseconds under load (measured: 25 µs/event against about 3 µs/event here).
    """
    sync_url = url.replace("sqlite+aiosqlite://", "sqlite://", 1)
    # Used from one thread at a time, but not always the same one: a flush carrying megabytes
    # runs in a worker thread (SqlEventStore._write), behind the store's lock.
    engine = create_engine(
        sync_url, poolclass=pool.StaticPool, connect_args={"check_same_thread": False}
    )
    _sqlite_pragmas(engine, writer=True)
    return engine


class SqliteCheckpointer:
    """Copies the WAL back into the database from a thread, off the event loop.

    A checkpoint ends with an fsync; run by the writer itself (SQLite's default) it cost about
    a third of every flush's time. PASSIVE never blocks the writer or readers.
    """

    def __init__(
        self, url: str, interval_s: float = 0.5, restart_bytes: int = WAL_RESTART_BYTES
    ) -> None:
        self._path = url.split(":///", 1)[1]
        self._interval = interval_s
        self._restart_bytes = restart_bytes
        self._task: asyncio.Task[None] | None = None
        self._conn: sqlite3.Connection | None = None
        self.restart_wanted = False
        self._page_size = 4096

    def start(self) -> None:
        if self._task is None:
            self._conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA busy_timeout=10000")
            self._page_size = int(self._conn.execute("PRAGMA page_size").fetchone()[0])
            self._task = asyncio.create_task(self._run(), name="sqlite-checkpointer")

    def checkpoint(self) -> None:
        assert self._conn is not None
        _, frames, _ = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        # The log's length, not the file's: the file keeps its size when the log starts over.
        self.restart_wanted = frames * self._page_size > self._restart_bytes

    def restart(self, writer: sqlite3.Connection) -> None:
        """Start the WAL over, from the writer's connection between two transactions.

        A PASSIVE checkpoint never catches up with a writer that commits all the time, and
        SQLite only starts the log over when a write begins on a fully checkpointed WAL: under
        sustained load the file grew by ~80 MB/s, and lookups in its index slowed reads and
        writes until streams stalled for seconds. RESTART copies what the last pass left
        (little: the thread has done the rest) and waits for readers briefly, never long: if
        they do not finish in time it gives up and the next pass tries again.
        """
        self.restart_wanted = False
        writer.execute("PRAGMA busy_timeout=50")
        try:
            writer.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
        finally:
            writer.execute("PRAGMA busy_timeout=10000")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await asyncio.to_thread(self.checkpoint)
            except sqlite3.Error:
                log.warning("WAL checkpoint failed", exc_info=True)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._conn is not None:
            await asyncio.to_thread(self.checkpoint)
            self._conn.close()
            self._conn = None


def create_engines(url: str) -> tuple[AsyncEngine | Engine, AsyncEngine]:
    """(writer, reader). SQLite gets a synchronous single-connection writer (see above)."""
    url = normalise_url(url)
    if is_sqlite(url):
        reader = create_async_engine(url, pool_size=8, max_overflow=8)
        _sqlite_pragmas(reader.sync_engine, writer=False)
        return sqlite_writer(url), reader
    # Pools sized for hundreds of concurrent streams: a checkout beyond pool_size opens a
    # fresh connection that is closed again on return, and under steady load that churn
    # (TCP, authentication, an SSL probe) cost more than the queries themselves.
    writer = create_async_engine(
        url, pool_size=8, max_overflow=24,
        # A writer frozen mid-transaction (a stalled VM, a stopped process) would hold its row
        # locks, and with them every takeover, for as long as it stays frozen. Healthy
        # transactions here last milliseconds.
        # And a statement waiting on such a lock gives up (the caller retries later) instead
        # of queueing behind it. Pre-ping is left out: a writer retries a failed flush anyway.
        connect_args={"server_settings": {"idle_in_transaction_session_timeout": "5000",
                                          "lock_timeout": "2000"}},
    )
    reader = create_async_engine(url, pool_size=32, max_overflow=32, pool_pre_ping=True)
    return writer, reader
