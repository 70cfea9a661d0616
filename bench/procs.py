"""Start, watch and stop the benchmark's subprocesses: the fake engine, servers, workers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench import procstat

REPO = Path(__file__).resolve().parent.parent


class StartError(RuntimeError):
    """A subprocess did not become ready; the message carries its log tail."""


def pinned(command: Sequence[str], core: int | None) -> list[str]:
    """`command` run on one core through taskset, or as is when core is None."""
    return ["taskset", "-c", str(core), *command] if core is not None else list(command)


def pinning_cores() -> tuple[int, int] | None:
    """(server core, load core), or None with a warning when pinning is impossible."""
    if shutil.which("taskset") is None:
        print("warning: taskset not found, running unpinned", file=sys.stderr)
        return None
    if (os.cpu_count() or 1) < 2:
        print("warning: fewer than 2 cores, running unpinned", file=sys.stderr)
        return None
    return 0, 1


def pin_tree(pid: int, core: int | None) -> None:
    """Move a running process, its threads and its descendants onto one core.

    For servers started by helpers that take no command prefix (PostgreSQL, Redis); their
    later children (PostgreSQL backends) inherit the affinity.
    """
    if core is None:
        return
    for member in procstat.tree(pid):
        try:
            tasks = [int(t) for t in os.listdir(f"/proc/{member}/task")]
        except OSError:
            continue  # exited meanwhile
        for task in tasks:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(task, {core})


def raise_fd_limit(wanted: int = 65536) -> None:
    """Lift the soft open-files limit towards the hard one; children inherit it.

    At C = 256 the server holds about 2C sockets (clients and engine) and the load
    generator C, close to the common default of 1024.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class Process:
    """A subprocess whose output goes to a log file, stopped with SIGTERM then SIGKILL."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log = log

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    async def spawn(
        cls, command: Sequence[str], log: Path, *, stdout_pipe: bool = False
    ) -> Process:
        with log.open("wb") as sink:
            proc = await asyncio.create_subprocess_exec(
                *command,
                cwd=REPO,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if stdout_pipe else sink,
                stderr=sink,
            )
        return cls(proc, log)

    async def stop(self, grace_s: float = 10.0) -> None:
        if self.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), grace_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


async def start_fake_engine(
    rate: float, tokens: int, core: int | None, log: Path, ready_s: float = 20.0
) -> tuple[Process, str]:
    """Start `bench.fake_engine`; returns it with its base URL (".../v1")."""
    command = [sys.executable, "-m", "bench.fake_engine", "--host", "127.0.0.1", "--port", "0"]
    command += ["--rate", str(rate), "--tokens", str(tokens)]
    engine = await Process.spawn(pinned(command, core), log, stdout_pipe=True)
    assert engine.proc.stdout is not None
    try:
        line = await asyncio.wait_for(engine.proc.stdout.readline(), ready_s)
    except TimeoutError:
        line = b""
    if not line.startswith(b"listening on http://"):
        await engine.stop()
        raise StartError(f"fake engine did not start:\n{log_tail(log)}")
    return engine, line.decode().split()[-1] + "/v1"


def responsed_executable() -> str | None:
    """The venv's `responsed` script: run directly so that its pid is the server's."""
    local = Path(sys.executable).parent / "responsed"
    return str(local) if local.exists() else shutil.which("responsed")


def _responsed() -> str:
    executable = responsed_executable()
    if executable is None:
        raise StartError("the `responsed` command is not installed in this environment")
    return executable


async def migrate(database_url: str, log: Path, limit_s: float = 60.0) -> None:
    """`responsed migrate`: PostgreSQL's schema is not created by the servers themselves."""
    command = [_responsed(), "migrate", "--database-url", database_url]
    migration = await Process.spawn(command, log)
    try:
        status = await asyncio.wait_for(migration.proc.wait(), limit_s)
    except TimeoutError:
        await migration.stop()
        raise StartError(f"migrate took over {limit_s:g} s:\n{log_tail(log)}") from None
    if status != 0:
        raise StartError(f"migrate exited with status {status}:\n{log_tail(log)}")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


async def start_worker(
    args: Sequence[str], core: int | None, log: Path, ready_s: float = 30.0
) -> Process:
    """Start `responsed worker ARGS` and wait for its "started" log line."""
    worker = await Process.spawn(pinned([_responsed(), "worker", *args], core), log)
    deadline = time.monotonic() + ready_s
    while time.monotonic() < deadline:
        if worker.proc.returncode is not None:
            raise StartError(
                f"worker exited with status {worker.proc.returncode}:\n{log_tail(log)}"
            )
        if b"started" in await asyncio.to_thread(_read_bytes, log):
            return worker
        await asyncio.sleep(0.1)
    await worker.stop()
    raise StartError(f"worker not started after {ready_s:g} s:\n{log_tail(log)}")


async def start_server(
    args: Sequence[str], core: int | None, log: Path, ready_s: float = 30.0
) -> tuple[Process, str]:
    """Start `responsed serve ARGS` on a free port and wait for GET /healthz → 200."""
    executable = _responsed()
    port = free_port()
    command = [executable, "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    server = await Process.spawn(pinned(command, core), log)
    deadline = time.monotonic() + ready_s
    while time.monotonic() < deadline:
        if server.proc.returncode is not None:
            raise StartError(
                f"server exited with status {server.proc.returncode}:\n{log_tail(log)}"
            )
        if await http_status("127.0.0.1", port, "/healthz") == 200:
            return server, f"http://127.0.0.1:{port}/v1"
        await asyncio.sleep(0.1)
    await server.stop()
    raise StartError(f"server not healthy after {ready_s:g} s:\n{log_tail(log)}")


async def http_status(host: str, port: int, path: str) -> int | None:
    """Status code of GET path, or None when nothing answers."""
    try:
        async with asyncio.timeout(2):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
                writer.write(request.encode())
                status_line = await reader.readline()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return None
    parts = status_line.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
