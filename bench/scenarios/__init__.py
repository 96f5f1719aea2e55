"""The benchmark scenarios; each module has the same shape.

HELP: str                         one line for `--help`
QUICK: list[str]                  arguments of the short run (`make bench`)
TINY: list[str]                   arguments of the smoke test (seconds)
add_arguments(parser) -> None     its options
async run(args, workdir) -> Outcome
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

NAMES = ("baseline", "hold", "commands", "overload", "fanout", "reconnect", "groupcommit")


@dataclass
class Outcome:
    """What a scenario measured: its parameters, its figures, and optional chart series."""

    parameters: dict[str, Any]
    figures: dict[str, Any]
    series: dict[str, list[Any]] = field(default_factory=dict)


class Scenario(Protocol):
    """The module interface every scenario implements."""

    HELP: str
    QUICK: list[str]
    TINY: list[str]

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    run: Callable[[argparse.Namespace, Path], Awaitable[Outcome]]


def load(name: str) -> Scenario:
    """The scenario module `name`."""
    return cast(Scenario, importlib.import_module(f"bench.scenarios.{name}"))
