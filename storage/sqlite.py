"""The event store on SQLite: in-process, so VALUES lists and executemany straight to the
driver; one synchronous writer connection (storage.database.sqlite_writer) whose WAL a
checkpointer keeps small."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.ports import AppendBatch
from storage.database import SqliteCheckpointer
from storage.projections import Heads
from storage.sql_store import SqlEventStore, append_batches
from storage.statements import Statements

T = TypeVar("T")
# A flush carrying more request bytes than this (a huge request) is written in a thread.
_THREADED_WRITE_BYTES = 1024 * 1024


def _payload_bytes(batches: Sequence[AppendBatch]) -> int:
    return sum(len(b.create.request) for b in batches if b.create is not None)

_EVENTS = (
    "INSERT INTO response_events (response_id, seq, type, data, created_at, hash) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


class SqliteStatements(Statements):
    def fence(self, conn: Connection, batches: Sequence[AppendBatch], now: float) -> set[str]:
        if not batches:
            return set()
        rows = [(b.response_id, b.epoch, b.expected_last_seq, b.last_seq) for b in batches]
        # Positional driver parameters: SQLAlchemy's text() would re-parse it on every flush.
        values = ", ".join(
            ["(?, CAST(? AS INTEGER), CAST(? AS INTEGER), CAST(? AS INTEGER))"] * len(rows)
        )
        statement = (
            f"WITH v(id, epoch, expected, new_seq) AS (VALUES {values}) "
            "UPDATE responses SET last_seq = v.new_seq, updated_at = ? FROM v "
            "WHERE responses.id = v.id AND responses.epoch = v.epoch "
            "AND responses.last_seq = v.expected RETURNING responses.id"
        )
        params = (*(value for row in rows for value in row), now)
        return {row[0] for row in conn.exec_driver_sql(statement, params)}

    def insert_events(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        if rows:
            # Straight to the driver's executemany: SQLAlchemy's per-row parameter processing
            # would be most of a flush's cost.
            conn.exec_driver_sql(_EVENTS, list(rows))


class SqliteEventStore(SqlEventStore):
    """domain.ports.EventStore on SQLite: writes on the event loop's thread through the one
    synchronous writer connection (a second writer in this process would deadlock against
    it), a huge flush in a thread behind a lock; reads through an async pool."""

    statements = SqliteStatements()

    def __init__(self, writer: Engine, reader: AsyncEngine, audit_key: bytes = b"") -> None:
        super().__init__(writer, reader, audit_key)
        self._sync_writer = writer
        self._checkpointer = SqliteCheckpointer(str(writer.url))
        self._lock = asyncio.Lock()

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._locked_write(fn, *args, threaded=False)

    async def _append(
        self, batches: Sequence[AppendBatch], now: float
    ) -> tuple[set[str], Heads]:
        # A flush carrying megabytes (a huge request) would hold SQLite's writer on the event
        # loop's thread for hundreds of milliseconds: it runs in a thread instead.
        return await self._locked_write(
            append_batches, self.statements, batches, now, self._heads, self.audit_key,
            threaded=_payload_bytes(batches) > _THREADED_WRITE_BYTES,
        )

    async def _locked_write(self, fn: Callable[..., T], *args: Any, threaded: bool) -> T:
        # Uncontended, the lock costs no turn of the loop; it only matters while a threaded
        # write holds the one connection.
        async with self._lock:
            self._checkpointer.start()
            if threaded:
                return await asyncio.to_thread(self._write_sync, fn, *args)
            return self._write_sync(fn, *args)

    def _write_sync(self, fn: Callable[..., T], *args: Any) -> T:
        with self._sync_writer.begin() as conn:
            result = fn(conn, *args)
        if self._checkpointer.restart_wanted:
            raw = self._sync_writer.raw_connection()
            try:
                # SQLAlchemy types the driver's connection as Any DB-API one; this is pysqlite's.
                self._checkpointer.restart(cast(sqlite3.Connection, raw.driver_connection))
            finally:
                raw.close()
        return result

    async def close(self) -> None:
        await self._checkpointer.stop()
        self._sync_writer.dispose()
        await self._reader.dispose()
