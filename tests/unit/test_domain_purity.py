"""The domain stays free of I/O: importing it pulls in no web, database, network or redis code."""

import ast
import subprocess
import sys
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
# Libraries that do I/O: none may be imported by the domain, directly or through a dependency.
IO_LIBRARIES = (
    "litestar",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "redis",
    "httpx",
    "uvicorn",
    "alembic",
    "sqlite3",
    "requests",
    "aiohttp",
)
# The domain's own imports are held to more: no sockets, no event loop, no JSON codec choice.
FORBIDDEN = (*IO_LIBRARIES, "socket", "asyncio", "orjson", "subprocess", "os")


def test_domain_modules_import_nothing_forbidden():
    offenders = []
    for path in DOMAIN.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_importing_the_domain_loads_no_io_library():
    modules = [f"domain.{p.stem}" for p in DOMAIN.glob("*.py") if p.stem != "__init__"]
    code = (
        "import sys\n"
        f"for m in {modules!r}: __import__(m)\n"
        f"print(sorted(n for n in {IO_LIBRARIES!r} if n in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=DOMAIN.parent
    )
    assert result.stdout.strip() == "[]"
