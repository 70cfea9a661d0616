"""Dependencies point one way. Every module of the layers is parsed (not imported) and each of
its imports, at any depth of the file, is checked against the rules below; then the imports
made when a module is loaded (its top level) must form no circle.

- domain: the model and the ports; imports no other layer (test_domain_purity: no I/O either).
- service: the use cases; imports the domain only.
- storage, worker.engines: driven adapters, each implementing ports of the domain; they import
  the domain and their own layer, never a service.
- api, cli, worker (the worker process: the queue consumer and its probe): entry points that
  drive the use cases; they import service and domain, and the composition root to start.
- service.runtime, the composition root: the only module that imports adapters.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("api", "cli", "service", "domain", "storage", "worker")
COMPOSITION_ROOT = "service.runtime"
ENTRY_POINTS = {"api", "cli", "worker"}
ALLOWED: dict[str, set[str]] = {
    "domain": {"domain"},
    "service": {"domain", "service"},
    "storage": {"domain", "storage"},
    "engines": {"domain", "engines"},
    "worker": {"domain", "service", "worker", "root"},
    "api": {"domain", "service", "api", "root"},
    "cli": {"domain", "service", "api", "cli", "worker", "root"},
    "root": {"domain", "service", "storage", "engines", "worker", "root"},
}
# Known exceptions, each with its reason.
EXCEPTIONS = {
    # Settings resolve the default SQLite URL of a data directory with storage's URL helpers
    # (pure string functions).
    ("service.settings", "storage.database"),
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _layer(module: str) -> str:
    if module == COMPOSITION_ROOT:
        return "root"
    if module == "worker.engines" or module.startswith("worker.engines."):
        return "engines"
    return module.split(".")[0]


def _imports(tree: ast.Module, module: str, top_level_only: bool) -> set[str]:
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _project_imports(modules: dict[str, Path], top_level_only: bool) -> dict[str, set[str]]:
    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        graph[module] = {
            name for name in _imports(tree, module, top_level_only)
            if name in modules and name != module
        }
    return graph


def test_every_import_points_the_allowed_way():
    graph = _project_imports(_modules(), top_level_only=False)
    wrong = sorted(
        f"{module} ({_layer(module)}) imports {target} ({_layer(target)})"
        for module, targets in graph.items()
        for target in targets
        if _layer(target) not in ALLOWED[_layer(module)] and (module, target) not in EXCEPTIONS
    )
    assert wrong == []


def test_the_known_exceptions_still_exist():
    graph = _project_imports(_modules(), top_level_only=False)
    assert all(target in graph[module] for module, target in EXCEPTIONS)


def test_no_module_is_imported_in_a_circle():
    graph = _project_imports(_modules(), top_level_only=True)
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                circles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert circles == []


def test_the_walk_sees_the_layers():
    """Guards the test itself: a walk that found nothing would pass everything."""
    graph = _project_imports(_modules(), top_level_only=False)
    assert "domain.ports" in graph["service.responses"]
    assert "storage.sqlite" in graph[COMPOSITION_ROOT]
    assert {_layer(m) for m in graph} == set(ALLOWED)
