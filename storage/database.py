"""Database URLs and async engines: SQLite (WAL, one writer) or PostgreSQL (asyncpg)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


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


def _sqlite_pragmas(engine: AsyncEngine, *, writer: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy's begin event decide how transactions open (below).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        # Writers take the lock up front so they never fail to upgrade a read lock mid-way.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def create_engines(url: str) -> tuple[AsyncEngine, AsyncEngine]:
    """(writer, reader). SQLite gets a single-connection writer and a separate reader pool."""
    url = normalise_url(url)
    if is_sqlite(url):
        writer = create_async_engine(url, pool_size=1, max_overflow=0)
        reader = create_async_engine(url, pool_size=8, max_overflow=8)
        _sqlite_pragmas(writer, writer=True)
        _sqlite_pragmas(reader, writer=False)
        return writer, reader
    writer = create_async_engine(url, pool_size=4, max_overflow=4, pool_pre_ping=True)
    reader = create_async_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)
    return writer, reader
