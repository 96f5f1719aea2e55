"""The bench's diagnosis modes, each off unless its setting is in the environment.

- `SOVD_HUB_TRACEMALLOC_FILE`: Python's allocations are traced from the start;
  each SIGUSR1 writes what is allocated now, by owner (`sovd_hub.memory`).
- `SOVD_HUB_PROFILE_FILE`: CPU time is sampled; each SIGUSR2 writes what was
  charged since the previous one, by component (`sovd_hub.profiling`).

Each report is JSON, written to the file its setting names. Both cost the hub
CPU (tracing much more): for `python -m bench`, never for production.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
import trio

from sovd_hub.memory import TRACE_FRAMES, summarise
from sovd_hub.profiling import CpuSampler

log = structlog.get_logger("sovd_hub.diagnosis")

TRACEMALLOC_FILE = "SOVD_HUB_TRACEMALLOC_FILE"
PROFILE_FILE = "SOVD_HUB_PROFILE_FILE"


def diagnosis_tasks() -> list[Callable[[], Awaitable[None]]]:
    """Start what the environment asks for (call it before the node opens); the tasks that
    write the reports, to run beside the node."""
    tasks: list[Callable[[], Awaitable[None]]] = []
    if traced := os.environ.get(TRACEMALLOC_FILE):
        tracemalloc.start(TRACE_FRAMES)
        tasks.append(functools.partial(_write_on, signal.SIGUSR1, Path(traced), _allocated_now))
    if profiled := os.environ.get(PROFILE_FILE):
        sampler = CpuSampler()
        tasks.append(functools.partial(_write_on, signal.SIGUSR2, Path(profiled), sampler.take))
    return tasks


def _allocated_now() -> dict[str, Any]:
    return summarise(tracemalloc.take_snapshot())


async def _write_on(
    signum: signal.Signals, path: Path, report: Callable[[], dict[str, Any]]
) -> None:
    """On each `signum`, write `report()` to `path` as JSON (runs until cancelled)."""
    with trio.open_signal_receiver(signum) as signals:
        async for _ in signals:
            await trio.Path(path).write_text(json.dumps(report()))
            log.info("diagnosis.written", path=str(path), signal=signum.name)
