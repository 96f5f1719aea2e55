"""The packages' surfaces and layers, held by reading the sources (no import is executed).

- A module of one of our packages reaches another of our packages only through
  its `__init__` (`from hub import Command`, never `from hub.model import Command`).
- The layers point one way: `sovd_hub` -> `api` -> `storage` -> `hub` -> `proto`,
  and `bench` runs hubs and fleets over `hub`, `storage` and `proto`; nothing of
  ours imports `tests`.
- No import circle, neither between packages nor between the modules of one package.
- Tests: a test module may import its own package's internals (`tests/storage/`
  imports `storage.command_queries`), every other package only through its
  `__init__` or its `testing` module. `bench`'s modules are programs (the
  simulated vehicle, the load generators), so tests import them by module.
  The harness (`tests/conftest.py`, `tests/support/`) may reach internals, such
  as the schema a fixture builds.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Each product package and the other packages of ours it may import.
LAYERS: dict[str, frozenset[str]] = {
    "proto": frozenset(),
    "hub": frozenset({"proto"}),
    "storage": frozenset({"hub"}),
    "api": frozenset({"hub", "storage"}),
    "sovd_hub": frozenset({"api", "hub", "storage"}),
    "bench": frozenset({"hub", "proto", "storage"}),
}
OURS = frozenset(LAYERS) | {"tests"}
#: Generated stubs: grpc_tools writes `import vehicle_link_pb2`-style lines we do not edit.
GENERATED = ("_pb2.py", "_pb2.pyi", "_grpc.py")


@dataclass(frozen=True, slots=True)
class Import:
    """One imported module (with the names taken from it) at one line of one source file."""

    path: Path
    line: int
    module: str
    names: tuple[str, ...]

    def __str__(self) -> str:
        where = self.path.relative_to(ROOT)
        return f"{where}:{self.line}: {self.module}"

    @property
    def package(self) -> str:
        return self.module.split(".")[0]


def is_type_checking(node: ast.AST) -> bool:
    """`if TYPE_CHECKING:`: imports for annotations only, which run nothing."""
    return isinstance(node, ast.If) and ast.unparse(node.test) in {
        "TYPE_CHECKING",
        "typing.TYPE_CHECKING",
    }


def walk(tree: ast.AST, *, type_checking: bool) -> Iterator[ast.AST]:
    """`ast.walk`, leaving out the `if TYPE_CHECKING:` blocks unless `type_checking`."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and not type_checking and is_type_checking(node):
            todo.extend(node.orelse)
        else:
            todo.extend(ast.iter_child_nodes(node))


def imports_of(path: Path, *, type_checking: bool = True) -> Iterator[Import]:
    """Every absolute import in `path`, at any depth (function-local ones too).

    `type_checking=False` leaves out the imports made for annotations only.
    """
    tree = ast.parse(path.read_text(), str(path))
    for node in walk(tree, type_checking=type_checking):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name, ())
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            assert node.level == 0, f"{path}:{node.lineno}: use an absolute import"
            names = tuple(alias.name for alias in node.names)
            yield Import(path, node.lineno, node.module, names)


def sources(package: str) -> list[Path]:
    """The Python sources of one top-level package, generated stubs left out."""
    return sorted(p for p in (ROOT / package).rglob("*.py") if not p.name.endswith(GENERATED))


def product_imports() -> Iterator[tuple[str, Import]]:
    for package in LAYERS:
        for path in sources(package):
            for found in imports_of(path):
                if found.package in OURS:
                    yield package, found


def test_packages_reach_each_other_through_their_init_only() -> None:
    skipping = {
        str(found)
        for package, found in product_imports()
        if found.package != package and "." in found.module
    }
    assert skipping == set()


def test_the_layers_point_one_way() -> None:
    upward = {
        f"{found} ({package} may import {sorted(LAYERS[package]) or 'nothing of ours'})"
        for package, found in product_imports()
        if found.package != package and found.package not in LAYERS[package]
    }
    assert upward == set()


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph` (as the path that closes it), or None."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        for target in sorted(graph.get(name, ())):
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


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_graph(package: str) -> dict[str, set[str]]:
    """The modules of `package` (its `__init__`s aside: they only re-export) and what each imports.

    `from hub import actor` is an edge to `hub.actor`; `from hub.model import JSON` to `hub.model`.
    An import for annotations only (`if TYPE_CHECKING:`) is no edge: it runs nothing, so a
    module may name the type of what drives it (`hub.gateway` names `hub.node.Hub`).
    """
    modules = {module_name(p): p for p in sources(package) if p.name != "__init__.py"}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for found in imports_of(path, type_checking=False):
            candidates = [found.module, *(f"{found.module}.{n}" for n in found.names)]
            targets.update(c for c in candidates if c in modules and c != name)
        graph[name] = targets
    return graph


def test_no_package_imports_another_in_a_circle() -> None:
    graph: dict[str, set[str]] = {package: set() for package in LAYERS}
    for package, found in product_imports():
        if found.package != package:
            graph[package].add(found.package)
    assert cycle(graph) is None, " -> ".join(cycle(graph) or [])


def test_no_package_has_an_import_circle_between_its_modules() -> None:
    circles = {
        package: " -> ".join(found)
        for package in LAYERS
        if (found := cycle(module_graph(package))) is not None
    }
    assert circles == {}


def test_the_cycle_finder_finds_a_circle() -> None:
    assert cycle({"cli": {"demo"}, "demo": {"options", "cli"}, "options": set()}) == [
        "cli",
        "demo",
        "cli",
    ]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_tests_reach_other_packages_through_their_surface_or_testing_module() -> None:
    skipping: set[str] = set()
    for path in sources("tests"):
        folder = path.relative_to(ROOT / "tests").parts[0]
        if folder in {"conftest.py", "support"}:
            continue
        for found in imports_of(path):
            own = found.package == folder
            if (
                found.package in LAYERS
                and "." in found.module
                and not own
                and found.package != "bench"
                and not found.module.endswith(".testing")
            ):
                skipping.add(str(found))
    assert skipping == set()


def test_tests_share_helpers_through_tests_support_only() -> None:
    importing = {
        str(found)
        for path in sources("tests")
        for found in imports_of(path)
        if found.package == "tests" and not found.module.startswith("tests.support")
    }
    assert importing == set()
