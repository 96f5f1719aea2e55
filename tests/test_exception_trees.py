"""One exception tree per package (STYLE.md 14): every exception a package defines is in it,
drawn in its `errors` module's docstring. `hub`'s and `storage`'s are exported by the package
(their callers catch them); `api`'s are caught inside the app, so only its roots are."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import api
import hub
import storage

#: Each package, the roots of its tree, the module whose docstring draws it, whether it
#: exports every exception of the tree.
TREES: list[tuple[ModuleType, tuple[type[BaseException], ...], str, bool]] = [
    (hub, (hub.HubError, hub.StorageFailed), "hub.errors", True),
    (storage, (storage.StorageError,), "storage.errors", True),
    (api, (api.EdgeError,), "api.errors", False),
]


def defined_exceptions(package: ModuleType) -> dict[str, type[BaseException]]:
    """Every exception class defined in a module of `package` (by name)."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == info.name
            ):
                found[name] = value
    return found


@pytest.mark.parametrize(
    ("package", "roots", "drawn_in", "exported"), TREES, ids=[t[0].__name__ for t in TREES]
)
def test_every_exception_of_a_package_is_in_its_tree(
    package: ModuleType, roots: tuple[type[BaseException], ...], drawn_in: str, exported: bool
) -> None:
    exceptions = defined_exceptions(package)
    assert exceptions, package.__name__
    outside = {name for name, cls in exceptions.items() if not issubclass(cls, roots)}
    assert outside == set(), f"{package.__name__}: not under {[r.__name__ for r in roots]}"
    doc = importlib.import_module(drawn_in).__doc__ or ""
    undrawn = {name for name in exceptions if name not in doc}
    assert undrawn == set(), f"not drawn in {drawn_in}'s docstring"
    unexported = {
        name
        for name, cls in exceptions.items()
        if (exported or cls in roots) and name not in package.__all__
    }
    assert unexported == set(), f"not in {package.__name__}.__all__"
