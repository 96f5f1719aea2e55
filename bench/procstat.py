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

    The group is `pids`, or, with `by_name`, every process of that name alive
    at either end (so database backends that come and go count from their
    start). Each process is measured on its own: one that ends before `stop()`
    loses its share (measure before stopping processes), never a negative.
    """

    label: str
    pids: list[int] = field(default_factory=list)
    by_name: str | None = None
    started: dict[int, float] = field(default_factory=dict)
    spent: float = 0.0

    def _read(self) -> dict[int, float]:
        seen = {}
        for pid in pids_named(self.by_name) if self.by_name else self.pids:
            with contextlib.suppress(OSError):  # it ended
                seen[pid] = cpu_seconds(pid)
        return seen

    def start(self) -> None:
        """Begin a measurement."""
        self.started = self._read()

    def stop(self) -> float:
        """End the measurement; returns (and keeps) the CPU seconds spent since `start`."""
        now = self._read()
        self.spent = sum(cpu - self.started.get(pid, 0.0) for pid, cpu in now.items())
        return self.spent


class MachineMeter(CpuMeter):
    """Busy CPU seconds of the whole machine (all cores, from /proc/stat)."""

    def _read(self) -> dict[int, float]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return {0: (sum(fields[:8]) - idle) / _TICKS_PER_S}
