"""`python -m bench check` compares each guarded figure with the baseline, and fails on losses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import check


def _runs(*, cpu_ratio: float = 4.0, lost: int = 0, kib: float = 60.0) -> dict[str, Any]:
    return {
        "baseline": {"baseline_cpu_us_per_message": 20.0, "hub_vs_baseline_cpu_per_message": 2.5},
        "commands": {
            "hub_vs_noop_cpu_per_command": cpu_ratio,
            "hub_vs_noop_p99": 30.0,
            "missing_in_database": 0,
            "not_succeeded": 0,
        },
        "fanout": {"hub_cpu_per_delivery_us": 2000.0, "missing_deliveries": 0},
        "hold": {
            "hub_cpu_during_connect_s": 8.0,
            "connected": 2000,
            "hub_rss_per_vehicle_kib": kib,
        },
        "reconnect": {
            "hub_cpu_during_reconnect_s": 6.0,
            "vehicles": 2000,
            "commands_lost": lost,
            "all_registered_again": True,
        },
    }


def _baseline(tmp_path: Path) -> dict[str, float]:
    path = tmp_path / "baseline.json"
    check.record(_runs(), path)
    return check.read_baseline(path)


def test_figures_are_ratios_to_the_same_runs_grpclib_cost(tmp_path: Path) -> None:
    baseline = _baseline(tmp_path)
    assert baseline["fanout_cpu_per_delivery"] == 100.0  # 2,000 us / 20 us
    assert baseline["connect_cpu_per_vehicle"] == 200.0  # 8 s / 2,000 = 4,000 us
    assert baseline["reconnect_cpu_per_vehicle"] == 150.0
    assert baseline["commands_cpu_vs_noop"] == 4.0


def test_within_tolerance_passes_and_beyond_it_fails(tmp_path: Path) -> None:
    baseline = _baseline(tmp_path)
    lines, passed = check.compare(_runs(cpu_ratio=4.7), baseline)  # 17.5 % worse
    assert passed, lines
    lines, passed = check.compare(_runs(cpu_ratio=4.9), baseline)  # 22.5 % worse
    assert not passed
    assert any(line.startswith("commands_cpu_vs_noop") and "WORSE" in line for line in lines)


def test_better_is_never_a_failure(tmp_path: Path) -> None:
    lines, passed = check.compare(_runs(cpu_ratio=1.5, kib=30.0), _baseline(tmp_path))
    assert passed, lines


def test_a_lost_command_fails_whatever_the_figures(tmp_path: Path) -> None:
    lines, passed = check.compare(_runs(lost=1), _baseline(tmp_path))
    assert not passed
    assert "LOST: reconnect: 1 commands lost, all registered again: True" in lines


def test_no_baseline_says_how_to_record_one(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="run `python -m bench check --record`"):
        check.read_baseline(tmp_path / "none.json")
