"""Make API keys the way an operator does: `responsed keys …` against the server's database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def responsed(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=True,
    )


def create_key(env: dict[str, str], tenant: str, name: str = "test", *, admin: bool = False) -> str:
    args = ["keys", "create", "--tenant", tenant, "--name", name]
    return responsed(env, *args, *(["--admin"] if admin else [])).stdout.strip()


def revoke_key(env: dict[str, str], key: str) -> None:
    responsed(env, "keys", "revoke", key[4:16])
