"""The hub's diagnosis modes, read by the bench: memory by owner, CPU time by component.

`hold --tracemalloc`: the hub traces its allocations (`sovd_hub.memory`) and
writes a summary on SIGUSR1; `per_vehicle_owners` turns two of them (before
the fleet connects, after) into KiB per vehicle, in all and for the biggest
owners (the line of the hub, or of a library, that allocated it).

`commands --profile`: the hub samples its main thread's CPU time
(`sovd_hub.profiling`) and writes what it charged since the last ask on
SIGUSR2; `cpu_shares` turns it into each component's share.

`ask_hub` sends the signal and reads the file once the hub has rewritten it.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import trio

from bench.stack import HubProcess

#: Owners reported, biggest growth first.
TOP = 15


async def ask_hub(
    hub: HubProcess, path: Path, signum: signal.Signals, timeout_s: float = 120
) -> dict[str, Any]:
    """Send `signum` to the hub and return the JSON it then writes to `path`."""
    file = trio.Path(path)
    before = await _written_at(file)
    hub.process.send_signal(signum)
    with trio.fail_after(timeout_s):
        while await _written_at(file) in (None, before):  # noqa: ASYNC110 (another process's file)
            await trio.sleep(0.1)
        await trio.sleep(0.2)  # the write is one call; let it end
    summary: dict[str, Any] = json.loads(await file.read_text())
    return summary


async def _written_at(file: trio.Path) -> int | None:
    return (await file.stat()).st_mtime_ns if await file.exists() else None


def per_vehicle_owners(
    empty: dict[str, Any], full: dict[str, Any], vehicles: int
) -> dict[str, Any]:
    """Traced KiB per vehicle, and the biggest owners' growth per vehicle."""
    before = {o["where"]: o["bytes"] for o in empty["owners"]}
    growth = {o["where"]: o["bytes"] - before.get(o["where"], 0) for o in full["owners"]}
    top = sorted(growth.items(), key=lambda item: -item[1])[:TOP]
    return {
        "traced_kib_per_vehicle": round((full["bytes"] - empty["bytes"]) / vehicles / 1024, 2),
        "traced_kib_per_vehicle_by_owner": {
            where: round(size / vehicles / 1024, 3) for where, size in top
        },
    }


def cpu_shares(breakdown: dict[str, Any]) -> dict[str, Any]:
    """The sampled CPU seconds and each component's (and heaviest frame's) share, in %."""
    total = breakdown["cpu_s"] or 1.0
    return {
        "profile_cpu_s": breakdown["cpu_s"],
        "profile_percent_by_component": {
            k: round(100 * v / total, 1) for k, v in breakdown["by_component"].items()
        },
        "profile_percent_by_innermost_frame": {
            k: round(100 * v / total, 1)
            for k, v in list(breakdown["by_innermost_frame"].items())[:TOP]
        },
    }
