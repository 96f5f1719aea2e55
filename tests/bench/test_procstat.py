"""The bench's CPU meters, measured on this very process."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.procstat import CpuMeter, MachineMeter


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_meters_see_a_busy_process() -> None:
    name = Path(f"/proc/{os.getpid()}/comm").read_text().strip()
    meters = [CpuMeter("pid", [os.getpid()]), CpuMeter("name", by_name=name), MachineMeter("m")]
    for meter in meters:
        meter.start()
    _spin(0.3)
    spent = {meter.label: meter.stop() for meter in meters}
    assert 0.25 <= spent["pid"] <= 0.5
    assert spent["name"] >= spent["pid"] - 0.02  # this process is among those of its name
    assert spent["m"] >= 0.25  # the machine was at least this busy


def test_a_process_gone_before_the_end_counts_nothing() -> None:
    meter = CpuMeter("gone", [2**22 + 7])  # no such process
    meter.start()
    assert meter.stop() == 0.0
