"""A SQLite store that cannot be served is refused at start: one clear line (what, where, what to
do) and a non-zero exit, never a server that says ready and then answers 500s."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from tests.e2e.conftest import ROOT, _os_env
from tests.support.ports import free_port
from tests.support.server import ServerProcess


def _serve(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`responsed serve` that must exit by itself; a server that starts is a failure here."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(free_port()),
         "--data-dir", str(data), *args],
        cwd=ROOT, env=_os_env(), capture_output=True, text=True, timeout=60,
    )


def _assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0, result.stdout + result.stderr
    output = (result.stdout + result.stderr).strip()
    assert "Traceback" not in output, output
    [line] = [line for line in output.splitlines() if line.startswith("responsed:")]
    for word in words:
        assert word in line, line


@pytest.fixture(scope="module")
def populated(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """A real store of a few hundred responses, made by a real server and stopped cleanly."""
    workdir = tmp_path_factory.mktemp("populated")
    data = workdir / "data"
    server = ServerProcess.start(workdir, "--data-dir", str(data))
    with OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0) as sdk:
        for i in range(40):
            sdk.responses.create(model="m", input=f"filling page after page {i} " * 30)
    server.stop()
    return data


def _copy(populated: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(populated, data)
    return data


def test_a_healthy_store_starts(populated: Path, tmp_path: Path) -> None:
    data = _copy(populated, tmp_path)
    server = ServerProcess.start(tmp_path, "--data-dir", str(data))
    try:
        with OpenAI(base_url=server.base_url + "/v1", api_key="x", max_retries=0) as sdk:
            assert sdk.responses.create(model="m", input="still fine").status == "completed"
    finally:
        server.stop()


def test_corrupted_pages_are_refused(populated: Path, tmp_path: Path) -> None:
    data = _copy(populated, tmp_path)
    db = data / "responsed.db"
    page = 4096
    with db.open("r+b") as file:
        size = db.stat().st_size
        assert size > 40 * page
        for n in range(10, size // page - 2, 7):  # scribble over every 7th page past the root
            file.seek(n * page + 100)
            file.write(os.urandom(600))
    _assert_refused(_serve(data), "corrupt", str(db))


def test_a_truncated_file_is_refused(populated: Path, tmp_path: Path) -> None:
    data = _copy(populated, tmp_path)
    db = data / "responsed.db"
    with db.open("r+b") as file:
        file.truncate(db.stat().st_size // 2)
    _assert_refused(_serve(data), "truncated", str(db))


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "responsed.db").write_text("these are my notes, not a database\n" * 200)
    _assert_refused(_serve(data), "not an SQLite database", str(data / "responsed.db"))


@contextlib.contextmanager
def _read_only(directory: Path) -> Iterator[None]:
    """A directory this process cannot write to: mode 0555, or as root the immutable flag."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)
        return
    made = subprocess.run(["chattr", "+i", str(directory)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.fail(f"cannot make a read-only directory as root here: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


def test_a_read_only_directory_is_refused(populated: Path, tmp_path: Path) -> None:
    data = _copy(populated, tmp_path)
    with _read_only(data):
        _assert_refused(_serve(data), "not writable", str(data))


def test_a_new_store_in_a_read_only_directory_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "empty"
    data.mkdir()
    with _read_only(data):
        _assert_refused(_serve(data), "not writable", str(data))


def test_quick_check_stops_at_its_time_budget(populated: Path, tmp_path: Path) -> None:
    """A budget too small to finish: the start goes on, saying how far the check got."""
    data = _copy(populated, tmp_path)
    server = ServerProcess.start(tmp_path, "--data-dir", str(data), "--sqlite-check-s", "0.000001")
    try:
        assert "quick_check stopped" in server.log_path.read_text()
    finally:
        server.stop()
    with sqlite3.connect(data / "responsed.db") as conn:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
