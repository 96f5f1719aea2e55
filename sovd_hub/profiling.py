"""Where the hub's CPU time goes, by component: for `python -m bench commands --profile`.

With `SOVD_HUB_PROFILE_FILE` set, `sovd-hub serve` samples where its CPU
time goes (`CpuSampler`): every `INTERVAL_S` of CPU the process uses, the
kernel interrupts it and the sample is charged to the Python frame the main
thread (trio's, where all of the hub runs) was in. Unlike a wall-clock
sampler it never counts time the hub spent waiting, for I/O or for a core on
a shared machine. Each
SIGUSR2 writes to that file what was charged since the previous one (JSON:
the CPU seconds in all, by component of the innermost frame, and the
heaviest stacks' innermost frames) and starts afresh.

A component is the package of the innermost frame: `hub`, `api`, `storage`,
`sovd_hub`, a library (`sqlalchemy`, `asyncpg`, `trio`, `grpclib`,
`hypercorn`, ...), `asyncio` or `stdlib`. Time in C code is charged to the
Python frame that called it. Diagnosis only: each sample interrupts the hub.
"""

from __future__ import annotations

import os
import signal
import sysconfig
from collections import defaultdict
from pathlib import Path
from types import FrameType
from typing import Any

#: CPU time between samples.
INTERVAL_S = 0.005
#: Innermost frames listed in a breakdown, heaviest first.
TOP_FRAMES = 40
_OURS = ("hub", "api", "storage", "sovd_hub", "proto")
_STDLIB = sysconfig.get_paths()["stdlib"]


class CpuSampler:
    """Charges the process's CPU time to the main thread's stack, `INTERVAL_S` at a time.

    The kernel counts the CPU time (`ITIMER_PROF`) and sends SIGPROF each
    `INTERVAL_S` of it; Python runs the handler in the main thread at its next
    bytecode, with the frame it interrupted. Construct and `stop` it in the
    main thread.
    """

    def __init__(self) -> None:
        self._components: dict[str, float] = defaultdict(float)
        self._frames: dict[str, float] = defaultdict(float)
        self._charged = 0.0
        self._previous = signal.signal(signal.SIGPROF, self._sample)
        signal.setitimer(signal.ITIMER_PROF, INTERVAL_S, INTERVAL_S)

    def stop(self) -> None:
        """Stop sampling and give SIGPROF back."""
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, self._previous)

    def take(self) -> dict[str, Any]:
        """What was charged since the last `take` (see the module docstring); starts afresh."""
        components, frames, charged = self._components, self._frames, self._charged
        self._components, self._frames = defaultdict(float), defaultdict(float)
        self._charged = 0.0
        return {
            "cpu_s": round(charged, 3),
            "by_component": _heaviest(components, len(components)),
            "by_innermost_frame": _heaviest(frames, TOP_FRAMES),
        }

    def _sample(self, signum: int, frame: FrameType | None) -> None:
        if frame is None:
            return
        code = frame.f_code
        self._charged += INTERVAL_S
        self._components[component(code.co_filename)] += INTERVAL_S
        self._frames[f"{_short(code.co_filename)}:{code.co_name}"] += INTERVAL_S


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
