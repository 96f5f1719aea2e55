"""What a process costs, read from /proc (Linux): CPU seconds and resident memory."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def rss_bytes(pid: int) -> int:
    """The process's resident set size."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def pids_named(name: str) -> list[int]:
    """Every process whose command name is `name` (e.g. the PostgreSQL server's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue  # it ended meanwhile
    return found


@dataclass
class CpuMeter:
    """CPU seconds a group of processes spends between `start()` and `stop()`.

    Each process is measured on its own: one that ends before `stop()`
    contributes nothing (measure before stopping processes), never a negative.
    """

    label: str
    pids: list[int]
    started: dict[int, float] = field(default_factory=dict)
    spent: float = 0.0

    def _read(self) -> dict[int, float]:
        seen = {}
        for pid in self.pids:
            with contextlib.suppress(OSError):  # it ended
                seen[pid] = cpu_seconds(pid)
        return seen

    def start(self) -> None:
        """Begin a measurement."""
        self.started = self._read()

    def stop(self) -> float:
        """End the measurement; returns (and keeps) the CPU seconds spent since `start`."""
        now = self._read()
        self.spent = sum(now[pid] - t for pid, t in self.started.items() if pid in now)
        return self.spent
