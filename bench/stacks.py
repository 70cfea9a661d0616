"""The responsed deployments under test: embedded (SQLite) or distributed (PostgreSQL + Redis).

A stack owns its storage for the whole path; `start()` and `stop()` may run several times on
it, so that a restart (for example with another engine) keeps the stored responses.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bench import procstat
from bench.procs import Process, StartError, migrate, pin_tree, start_server, start_worker
from domain.response import RUNNING

if TYPE_CHECKING:
    from tests.support.postgres import PostgresServer
    from tests.support.redis_server import RedisServer

LEFT_RUNNING_SQL = "SELECT count(*) FROM responses WHERE status IN ({})".format(
    ", ".join(f"'{status}'" for status in RUNNING)
)
DATABASE = "bench"


@dataclass
class Group:
    """A started deployment: its base URL, the processes whose CPU counts as the server's,
    and backing services whose CPU is reported apart (name -> pid)."""

    base: str
    processes: list[Process]
    side: dict[str, int] = field(default_factory=dict)

    def exited(self) -> str | None:
        for process in self.processes:
            if process.proc.returncode is not None:
                return f"{process.log.stem} exited with status {process.proc.returncode}"
        return None

    def cpu_seconds(self) -> float:
        return sum(procstat.cpu_seconds(p.pid) for p in self.processes)

    def memory(self) -> procstat.Memory:
        """RSS and peak summed over the processes (each peak is its own tree's)."""
        each = [procstat.memory(p.pid) for p in self.processes]
        return procstat.Memory(sum(m.rss_mib for m in each), sum(m.peak_mib for m in each))


class Stack(Protocol):
    logs: list[Path]

    async def start(self, args: Sequence[str]) -> Group: ...

    async def stop(self) -> None: ...

    async def left_running(self) -> int:
        """Stored responses still queued or in progress."""
        ...

    async def close(self) -> None: ...


class _Base:
    def __init__(self, workdir: Path, core: int | None, name: str) -> None:
        self.workdir = workdir
        self.core = core
        self.name = name
        self.logs: list[Path] = []
        self._running: list[Process] = []

    def _log(self, role: str) -> Path:
        log = self.workdir / f"{self.name}-{role}-{len(self.logs)}.log"
        self.logs.append(log)
        return log

    async def stop(self) -> None:
        for process in self._running:  # the API first: nothing new reaches the worker
            await process.stop()
        self._running = []


class EmbeddedStack(_Base):
    """`responsed serve` with SQLite in a fresh data directory."""

    def __init__(self, workdir: Path, core: int | None) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=workdir))
        super().__init__(workdir, core, self.data_dir.name)

    async def start(self, args: Sequence[str]) -> Group:
        server_args = ["--data-dir", str(self.data_dir), *args]
        server, base = await start_server(server_args, self.core, self._log("server"))
        self._running = [server]
        return Group(base, [server])

    async def left_running(self) -> int:
        # Read-only: the server may still be running and owns the file.
        uri = f"file:{self.data_dir / 'responsed.db'}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
            return int(db.execute(LEFT_RUNNING_SQL).fetchone()[0])

    async def close(self) -> None:
        await self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


class DistributedStack(_Base):
    """PostgreSQL and Redis, one `responsed serve --redis-url` API and one `responsed worker`,
    all on `core`."""

    def __init__(
        self, workdir: Path, core: int | None, postgres: PostgresServer, redis: RedisServer
    ) -> None:
        super().__init__(workdir, core, "distributed")
        self.postgres = postgres
        self.redis = redis
        self.database_url = postgres.url(DATABASE)
        pid_file = postgres.data_dir / "postmaster.pid"
        assert redis.process is not None
        self.side = {"PostgreSQL": int(pid_file.read_text().split()[0]), "Redis": redis.process.pid}

    @classmethod
    async def create(cls, workdir: Path, core: int | None) -> DistributedStack:
        # Imported here: only this path needs the servers' helpers (and the tests package).
        from tests.support.postgres import PostgresServer
        from tests.support.redis_server import RedisServer

        try:
            postgres = await asyncio.to_thread(PostgresServer.start)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            raise StartError(f"PostgreSQL did not start: {exc}") from exc
        try:
            redis = await asyncio.to_thread(RedisServer.start)
        except (RuntimeError, OSError) as exc:
            await asyncio.to_thread(postgres.stop)
            raise StartError(f"Redis did not start: {exc}") from exc
        stack = cls(workdir, core, postgres, redis)
        try:
            # Both inherited this process's core (the load generator's): move them.
            for pid in stack.side.values():
                pin_tree(pid, core)
            await postgres.create_database(DATABASE)
            await migrate(stack.database_url, stack._log("migrate"))
        except BaseException:
            await stack.close()
            raise
        return stack

    async def start(self, args: Sequence[str]) -> Group:
        common = ["--database-url", self.database_url, "--redis-url", self.redis.url, *args]
        worker_args = ["--worker-name", "bench-worker", *common]
        worker = await start_worker(worker_args, self.core, self._log("worker"))
        try:
            api, base = await start_server(common, self.core, self._log("api"))
        except BaseException:
            await worker.stop()
            raise
        self._running = [api, worker]
        return Group(base, [api, worker], dict(self.side))

    async def left_running(self) -> int:
        import asyncpg

        db = await asyncpg.connect(
            host="127.0.0.1",
            port=self.postgres.port,
            user="postgres",
            database=DATABASE,
            timeout=10,
        )
        try:
            return int(await db.fetchval(LEFT_RUNNING_SQL, timeout=10))
        finally:
            await db.close()

    async def close(self) -> None:
        await self.stop()
        await asyncio.to_thread(self.redis.stop)
        await asyncio.to_thread(self.postgres.stop)
