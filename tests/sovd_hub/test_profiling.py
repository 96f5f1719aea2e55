"""The CPU sampler charges the main thread's CPU time to the code that spent it, by component."""

from __future__ import annotations

import sysconfig
import time

from bench.diagnosis import cpu_shares
from sovd_hub.profiling import CpuSampler, component


def _burn(seconds: float) -> int:
    deadline, n = time.process_time() + seconds, 0
    while time.process_time() < deadline:
        n += sum(range(100))
    return n


def test_cpu_time_is_charged_to_the_frame_that_spent_it() -> None:
    sampler = CpuSampler()
    try:
        sampler.take()  # start afresh
        _burn(0.3)
        time.sleep(0.2)  # waiting is not charged
        breakdown = sampler.take()
    finally:
        sampler.stop()
    assert 0.15 <= breakdown["cpu_s"] <= 0.45, breakdown
    heaviest = next(iter(breakdown["by_innermost_frame"]))
    assert heaviest == "sovd_hub/test_profiling.py:_burn"
    shares = cpu_shares(breakdown)
    assert shares["profile_percent_by_component"]["sovd_hub"] >= 50


def test_components_are_our_packages_libraries_asyncio_and_the_stdlib() -> None:
    stdlib = sysconfig.get_paths()["stdlib"]
    assert component("/work/main/hub/actor.py") == "hub"
    assert component("/work/main/storage/engine.py") == "storage"
    assert component("/x/.venv/lib/python3.11/site-packages/sqlalchemy/engine/base.py") == (
        "sqlalchemy"
    )
    assert component(f"{stdlib}/asyncio/events.py") == "asyncio"
    assert component(f"{stdlib}/json/decoder.py") == "stdlib"
