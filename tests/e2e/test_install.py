"""The built wheel installs beside other distributions: it owns one top-level package
(`responsed`), so a distribution with its own top-level `domain` and `api` keeps them, while the
installed `responsed` command still finds its own packages and its Alembic migrations."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def _run(*argv: str | Path, cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _dummy_wheel(directory: Path) -> Path:
    """A distribution `othertool` whose top-level packages are `domain` and `api`."""
    files = {
        "domain/__init__.py": 'WHO = "othertool"\n',
        "api/__init__.py": 'WHO = "othertool"\n',
        "othertool-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: othertool\n"
                                            "Version: 1.0\n",
        "othertool-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\n"
                                         "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    record.append("othertool-1.0.dist-info/RECORD,,")
    files["othertool-1.0.dist-info/RECORD"] = "\n".join(record) + "\n"
    wheel = directory / "othertool-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    uv = shutil.which("uv")
    if uv is None:
        if os.environ.get("CI"):
            pytest.fail("uv is required in CI to build and install the wheel")
        pytest.skip("uv is not installed")
    work = tmp_path_factory.mktemp("install")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")}
    _run(uv, "build", "--wheel", "--out-dir", work / "dist", cwd=ROOT, env=env)
    (wheel,) = (work / "dist").glob("responsed-*.whl")
    pins = work / "requirements.txt"
    _run(uv, "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project",
         "--output-file", pins, cwd=ROOT, env=env)
    venv = work / "venv"
    _run(uv, "venv", "--python", sys.executable, venv, cwd=work, env=env)
    python = venv / "bin" / "python"
    _run(uv, "pip", "install", "--python", python, "-r", pins, _dummy_wheel(work), wheel,
         cwd=work, env=env)
    return wheel, venv, env


def test_the_wheel_owns_one_top_level_package(installed):
    wheel, _, _ = installed
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
        assert "responsed/_app/migrations/env.py" in archive.namelist()
    assert tops == {"responsed", wheel.name.split("-py3")[0] + ".dist-info"}


def test_the_other_distribution_keeps_its_packages(installed, tmp_path: Path):
    _, venv, env = installed
    out = _run(venv / "bin" / "python", "-c",
               "import domain, api, responsed; print(domain.WHO, api.WHO, domain.__file__)",
               cwd=tmp_path, env=env)
    who_domain, who_api, where = out.split()
    assert (who_domain, who_api) == ("othertool", "othertool")
    assert str(venv) in where


def test_the_installed_command_runs_and_migrates(installed, tmp_path: Path):
    _, venv, env = installed
    assert "serve" in _run(venv / "bin" / "responsed", "--help", cwd=tmp_path, env=env)
    assert "migrate" in _run(venv / "bin" / "python", "-m", "responsed", "--help",
                             cwd=tmp_path, env=env)
    out = _run(venv / "bin" / "responsed", "migrate", "--data-dir", tmp_path / "data",
               cwd=tmp_path, env=env)
    assert out.startswith("migrated")
    (database,) = (tmp_path / "data").glob("*.db")
    with sqlite3.connect(database) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"responses", "alembic_version"} <= tables


def test_the_installed_server_serves_a_response(installed, tmp_path: Path):
    _, venv, env = installed
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as sink:
        server = subprocess.Popen(
            [str(venv / "bin" / "responsed"), "serve", "--port", str(port),
             "--data-dir", str(tmp_path / "data")],
            cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        created = httpx.post(base + "/v1/responses", timeout=30,
                             json={"model": "any", "input": "installed beside othertool"})
        assert created.status_code == 200, created.text
        body = created.json()
        assert body["status"] == "completed"
        assert body["output"][0]["content"][0]["text"] == "installed beside othertool"
    finally:
        server.terminate()
        server.wait(timeout=30)
