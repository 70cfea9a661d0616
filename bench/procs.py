"""Start, watch and stop the benchmark's subprocesses: the fake engine and the server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

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


async def start_server(
    args: Sequence[str], core: int | None, log: Path, ready_s: float = 30.0
) -> tuple[Process, str]:
    """Start `responsed serve ARGS` on a free port and wait for GET /healthz → 200."""
    executable = responsed_executable()
    if executable is None:
        raise StartError("the `responsed` command is not installed in this environment")
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
