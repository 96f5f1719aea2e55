"""The composition root's place: it alone knows every package, and its imports form no circle."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "sovd_hub"
#: The packages the composition root wires; it uses each only through its `__init__`.
WIRED = frozenset({"api", "hub", "storage"})


def imported_modules(path: Path) -> Iterator[str]:
    """Every module `path` imports, at any depth (function-local imports included)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            yield node.module


def package_graph() -> dict[str, set[str]]:
    """sovd_hub's modules (`__init__` aside: it only re-exports) and which of them each imports."""
    modules = {p.stem: p for p in (ROOT / PACKAGE).glob("*.py") if p.stem != "__init__"}
    return {
        name: {
            m.split(".")[1]
            for m in imported_modules(path)
            if m.startswith(PACKAGE + ".") and m.split(".")[1] in modules
        }
        for name, path in modules.items()
    }


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph` (as the path that closes it), or None."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        for target in sorted(graph[name]):
            found = visit(target, [*path, name])
            if found is not None:
                return found
        done.add(name)
        return None

    for name in sorted(graph):
        found = visit(name, [])
        if found is not None:
            return found
    return None


def test_the_composition_root_has_no_import_circle() -> None:
    graph = package_graph()
    assert {"cli", "node", "demo", "audit_cli", "options"} <= set(graph)
    assert cycle(graph) is None, " -> ".join(cycle(graph) or [])


def test_it_uses_the_packages_it_wires_through_their_init_only() -> None:
    skipping = {
        f"{path.name}: {module}"
        for path in (ROOT / PACKAGE).glob("*.py")
        for module in imported_modules(path)
        if module.split(".")[0] in WIRED and "." in module
    }
    assert skipping == set()


def test_no_other_package_imports_the_composition_root() -> None:
    importing = {
        str(path.relative_to(ROOT))
        for package in ("api", "hub", "storage", "bench", "proto")
        for path in (ROOT / package).rglob("*.py")
        if any(m.split(".")[0] == PACKAGE for m in imported_modules(path))
    }
    assert importing == set()


def test_the_cycle_finder_finds_a_circle() -> None:
    assert cycle({"cli": {"demo"}, "demo": {"options", "cli"}, "options": set()}) == [
        "cli",
        "demo",
        "cli",
    ]
