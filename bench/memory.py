"""What each connected vehicle holds in the hub, by owner: `hold --tracemalloc`.

The hub traces its allocations (`sovd_hub.memory`) and writes a summary on
SIGUSR1; `memory_summary` asks for one and reads it, `per_vehicle_owners`
turns two of them (before the fleet connects, after) into KiB per vehicle,
in all and for the biggest owners (the line of the hub, or of a library,
that allocated it).
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


async def memory_summary(hub: HubProcess, path: Path, timeout_s: float = 120) -> dict[str, Any]:
    """Ask the hub for its allocation summary and return it once written."""
    file = trio.Path(path)
    before = await _written_at(file)
    hub.process.send_signal(signal.SIGUSR1)
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
