"""Distributed mode as real processes: API servers and workers on PostgreSQL and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.server import ServerProcess

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(cls, workdir: Path, name: str, env: dict[str, str], *args: str) -> WorkerProcess:
        log_path = workdir / f"{name}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - the process writes to it until stopped
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "worker", "--worker-name", name, *args],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env}, cwd=ROOT,
        )
        worker = cls(process, log_path)
        deadline = time.monotonic() + 30
        while b"started" not in log_path.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        return worker

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Cluster:
    workdir: Path
    env: dict[str, str]
    args: tuple[str, ...]
    apis: list[ServerProcess] = field(default_factory=list)
    workers: dict[str, WorkerProcess] = field(default_factory=dict)

    def add_api(self) -> ServerProcess:
        api = ServerProcess.start(self.workdir, *self.args, env=self.env)
        self.apis.append(api)
        return api

    def add_worker(self, name: str) -> WorkerProcess:
        worker = WorkerProcess.start(self.workdir, name, self.env, *self.args)
        self.workers[name] = worker
        return worker

    def stop(self) -> None:
        for api in self.apis:
            api.stop()
        for worker in self.workers.values():
            worker.stop()
