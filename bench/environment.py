"""Where a benchmark ran: the machine, the versions, the git revision; and where results go."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"
_PACKAGES = (
    "trio",
    "grpclib",
    "hypercorn",
    "quart-trio",
    "sqlalchemy",
    "asyncpg",
    "aiosqlite",
    "protobuf",
    "h2",
)


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model, OS and Python of this machine."""
    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(int(meminfo[1]) / 1024 / 1024, 1),
        "cpu": model,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def versions() -> dict[str, str]:
    """Versions of the libraries on the hot path."""
    found = {}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def git_revision() -> str:
    """The commit benchmarked, with `-dirty` when the work tree has changes."""
    root = Path(__file__).parents[1]
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{rev}-dirty" if dirty else rev or "unknown"


def save_result(
    scenario: str,
    parameters: dict[str, Any],
    figures: dict[str, Any],
    results_dir: Path = RESULTS_DIR,
) -> Path:
    """Write one run's result as JSON under `results_dir`; returns the file."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    document = {
        "scenario": scenario,
        "at": stamp,
        "git": git_revision(),
        "machine": machine(),
        "versions": versions(),
        "parameters": parameters,
        "figures": figures,
    }
    path = results_dir / f"{scenario}-{stamp}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
