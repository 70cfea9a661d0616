"""Which errors mean "a storage dependency is away" (retry later), not "a bug" (do not)."""

from __future__ import annotations

import asyncio

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

_OUTAGES = (
    OperationalError,  # refused, reset, shutting down; SQLite: locked, I/O error
    InterfaceError,  # the connection was closed under the query
    DisconnectionError,
    PoolTimeout,  # no connection came free: the database is not answering
    OSError,  # ConnectionRefusedError and friends, before a driver wraps them
    asyncio.TimeoutError,
    RedisConnectionError,
    RedisTimeoutError,
)


def is_outage(error: BaseException) -> bool:
    """True when `error`, or what caused it, is a dependency that is not answering."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _OUTAGES):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if type(current).__module__.startswith("asyncpg") and (
            type(current).__name__ in _ASYNCPG_OUTAGES
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


# asyncpg's names for a server that is going or gone (class 57 and 08 SQLSTATEs, and its own
# connection errors); matched by name so asyncpg stays an optional driver.
_ASYNCPG_OUTAGES = {
    "ConnectionDoesNotExistError",
    "ConnectionFailureError",
    "ClientCannotConnectError",
    "CannotConnectNowError",
    "AdminShutdownError",
    "CrashShutdownError",
    "PostgresConnectionError",
}
