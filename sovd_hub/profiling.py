"""Where the hub's CPU time goes, by component: for `python -m bench commands --profile`.

With `SOVD_HUB_PROFILE_FILE` set, `sovd-hub serve` runs a sampler thread:
every `INTERVAL_S` it reads the CPU time the main thread (trio's, where all
of the hub runs) has used, and when it grew it charges that growth to the
main thread's current stack. Unlike a wall-clock sampler it never counts
time the hub spent waiting, for I/O or for a core on a shared machine. Each
SIGUSR2 writes to that file what was charged since the previous one (JSON:
the CPU seconds in all, by component of the innermost frame, and the
heaviest stacks' innermost frames) and starts afresh.

A component is the package of the innermost frame: `hub`, `api`, `storage`,
`sovd_hub`, a library (`sqlalchemy`, `asyncpg`, `trio_asyncio`, `grpclib`,
`hypercorn`, ...), `asyncio` or `stdlib`. The sampler takes the GIL to look,
so a sample lands where the main thread lets the GIL go; costs about 1 % of
a core; diagnosis only.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import sysconfig
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import FrameType
from typing import Any

import structlog
import trio

log = structlog.get_logger("sovd_hub.profiling")

#: The setting that turns the sampler on: where the breakdowns are written.
PROFILE_FILE = "SOVD_HUB_PROFILE_FILE"
INTERVAL_S = 0.002
#: Innermost frames listed in a breakdown, heaviest first.
TOP_FRAMES = 40
_OURS = ("hub", "api", "storage", "sovd_hub", "proto")
_STDLIB = sysconfig.get_paths()["stdlib"]


class CpuSampler:
    """Charges the main thread's CPU time to its stack, in a daemon thread."""

    def __init__(self) -> None:
        main = threading.main_thread()
        assert main.ident is not None
        self._main = main.ident
        self._clock = time.pthread_getcpuclockid(main.ident)
        self._lock = threading.Lock()
        self._components: dict[str, float] = defaultdict(float)
        self._frames: dict[str, float] = defaultdict(float)
        self._charged = 0.0
        self._stopped = threading.Event()
        threading.Thread(target=self._run, name="cpu-sampler", daemon=True).start()

    def stop(self) -> None:
        """End the sampling thread (within `INTERVAL_S`)."""
        self._stopped.set()

    def take(self) -> dict[str, Any]:
        """What was charged since the last `take` (see the module docstring); starts afresh."""
        with self._lock:
            components, frames, charged = self._components, self._frames, self._charged
            self._components, self._frames = defaultdict(float), defaultdict(float)
            self._charged = 0.0
        return {
            "cpu_s": round(charged, 3),
            "by_component": _heaviest(components, len(components)),
            "by_innermost_frame": _heaviest(frames, TOP_FRAMES),
        }

    def _run(self) -> None:
        last = time.clock_gettime(self._clock)
        while not self._stopped.wait(INTERVAL_S):
            now = time.clock_gettime(self._clock)
            spent, last = now - last, now
            frame = sys._current_frames().get(self._main)
            if spent > 0 and frame is not None:
                self._charge(frame, spent)

    def _charge(self, frame: FrameType, spent: float) -> None:
        code = frame.f_code
        where = f"{_short(code.co_filename)}:{code.co_name}"
        with self._lock:
            self._charged += spent
            self._components[component(code.co_filename)] += spent
            self._frames[where] += spent


def _heaviest(spent: dict[str, float], count: int) -> dict[str, float]:
    ranked = sorted(spent.items(), key=lambda item: -item[1])[:count]
    return {key: round(seconds, 3) for key, seconds in ranked}


def component(filename: str) -> str:
    """The component a source file belongs to (see the module docstring)."""
    parts = Path(filename).parts
    if "site-packages" in parts:
        index = parts.index("site-packages")
        return parts[index + 1].removesuffix(".py") if index + 1 < len(parts) else "?"
    for part in reversed(parts[:-1]):
        if part in _OURS:
            return part
    if filename.startswith(_STDLIB):
        return "asyncio" if f"{os.sep}asyncio{os.sep}" in filename else "stdlib"
    return "other"


def _short(filename: str) -> str:
    return "/".join(Path(filename).parts[-2:])


def profiling_task() -> Callable[[], Awaitable[None]] | None:
    """With `SOVD_HUB_PROFILE_FILE` set: start the sampler; the task that writes breakdowns."""
    value = os.environ.get(PROFILE_FILE)
    if not value:
        return None
    path, sampler = Path(value), CpuSampler()

    async def write_breakdowns() -> None:
        with trio.open_signal_receiver(signal.SIGUSR2) as signals:
            async for _ in signals:
                breakdown = sampler.take()
                await trio.Path(path).write_text(json.dumps(breakdown))
                log.info("profile.written", path=str(path), cpu_s=breakdown["cpu_s"])

    return write_breakdowns
