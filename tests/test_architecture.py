"""The layout holds: no import circles, pure modules stay pure, the worker needs no web app,
and the card rules that every surface shows have one implementation."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import wallet_service

PACKAGE = Path(wallet_service.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Which modules of the package each module imports, at any depth of its code (a lazy
    import inside a function still ties the two together). Importing an ancestor package
    is not an edge: Python initialises parents first anyway."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                candidates = [f"{target}.{alias.name}" for alias in node.names]
                if not any(c in modules for c in candidates):
                    candidates.append(target)
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            for c in candidates:
                if c in modules and c != name and not name.startswith(c + "."):
                    deps.add(c)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_between_modules():
    assert cycles(import_graph(_modules())) == []


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def _imports_of(module: str) -> set[str]:
    path = _modules()[module]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", ["wallet_service.rules", "wallet_service.urls",
                                    "wallet_service.errors", "wallet_service.merge_patch",
                                    "wallet_service.permissions"])
def test_pure_modules_import_no_framework_database_or_network(module):
    assert not _imports_of(module) & {"flask", "sqlalchemy", "requests", "httpx", "socket",
                                      "h2", "os", "pathlib"}


@pytest.mark.parametrize("module", sorted(
    m for m in _modules() if m.startswith(("wallet_service.services", "wallet_service.apple",
                                           "wallet_service.google", "wallet_service.push"))
    or m in ("wallet_service.worker", "wallet_service.state", "wallet_service.rules")))
def test_only_the_web_layer_imports_flask(module):
    assert "flask" not in _imports_of(module)


def test_the_worker_runs_without_flask():
    code = ("import sys; from wallet_service.worker import Worker; "
            "from wallet_service.state import build_state; "
            "assert 'flask' not in sys.modules, 'the worker imported flask'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_services_never_commit():
    """The unit of work belongs to the request or the job: services only flush."""
    for name, path in _modules().items():
        if not name.startswith("wallet_service.services"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("commit", "rollback"):
                raise AssertionError(f"{name} calls .{node.attr}()")


def test_tier_progress_has_one_implementation():
    """Computed in the rules only (the pass, the card page and the API call it; that they
    agree is shown in test_tier_progress.py); the page only words it."""
    computed = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and "tier" in node.name and any(
                    isinstance(n, ast.Name) and n.id in ("next_tier", "threshold")
                    for n in ast.walk(node)) and name != "wallet_service.rules":
                computed.append(f"{name}.{node.name}")
    assert computed == []


def test_every_package_ships_in_the_wheel():
    """pyproject.toml lists its packages by hand (migrations/ and pass_templates/ are mapped
    in from outside the package): a new sub-package must be listed too, or the wheel
    lacks it while the editable install works."""
    import tomllib

    pyproject = PACKAGE.parent / "pyproject.toml"
    if not pyproject.exists():
        pytest.skip("running from an installed package, not the repository")
    listed = set(tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["packages"])
    packages = {".".join(p.parent.relative_to(PACKAGE.parent).parts)
                for p in PACKAGE.rglob("__init__.py")}
    assert packages - listed == set()
