"""The issue-13 scorecard of BENCHMARKS.md: each row from the newest run that fits it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.report import write_report

SINGLE_100: dict[str, Any] = {
    "hub_cpu_ms_per_processed_command": 7.0,
    "hub_vs_noop_cpu_per_command": 5.6,
    "noop_cpu_ms_per_command": 1.25,
    "cost_statements_per_command": 8.0,
    "cost_transactions_per_command": 2.0,
    "profile_percent_by_component": {"asyncio": 21.5, "sqlalchemy": 21.4},
}


def _save(results: Path, name: str, parameters: dict[str, Any], figures: dict[str, Any]) -> None:
    """A result named like `environment.save_result`'s, one second after the previous one."""
    results.mkdir(exist_ok=True)
    at = f"20261204T0000{len(list(results.iterdir())):02d}Z"
    document = {"scenario": name, "at": at, "git": "abc1234", "machine": {}, "versions": {},
                "parameters": parameters, "figures": figures}  # fmt: skip
    (results / f"{name}-{at}.json").write_text(json.dumps(document))


def test_each_row_reads_the_run_that_fits_it(tmp_path: Path) -> None:
    results = tmp_path / "results"
    single = {"rate_per_s": 100.0, "ramp_to_per_s": None, "redis": False}
    _save(results, "commands", single, SINGLE_100)
    scale_out = {**single, "redis": True, "routed": False}
    _save(results, "commands", scale_out, {"hub_cpu_ms_per_processed_command": 7.7,
                                           "hub_latency_p99_ms": 80.0})  # fmt: skip
    _save(results, "hold", {"vehicles": 19_700}, {
        "connected": 19_700, "hub_cpu_during_connect_s": 39.4, "connect_rate_per_s": 450.0,
        "hub_rss_per_vehicle_kib": 39.0, "idle_hub_cpu_percent": 20.0,
    })  # fmt: skip
    _save(results, "hold", {"vehicles": 2000}, {"connected": 2000})  # too small: not read

    text = write_report(results, tmp_path / "B.md").read_text()

    assert "| 7.0 ms (5.6x) | no-op 1.25 ms | ≤ 1.5x the no-op server (stretch 1.25x) | **not" in (
        text
    )
    assert "| 7.7 ms, p99 80.0 ms |" in text and "| 1.10x: met |" in text
    assert "| 2.00 ms (19,700 connect at 450.0/s) | - | ≤ 1 ms | **not met** |" in text
    assert "39.0 KiB per vehicle at 19,700; idle 20.0 % of a core" in text
    assert "| `commands --rate 300`: latency | p99 89-316 ms |" in text  # before.json's column
    assert text.count("| not run | - |") == 7  # 300/s, ramp, baseline, fanout, reconnect, ...
    assert "| statements | 14.5 (5.9 of them for the audit chain) | 8.0 |" in text
    assert "| CPU by component |" in text and "asyncio 21.5 %, sqlalchemy 21.4 %" in text


FANOUT_HUB: dict[str, Any] = {
    "submit_to_final_event_ms_p99": 994.31,
    "hub_cpu_per_delivery_us": 994.5,
}


def test_the_fanout_row_shows_the_same_runs_noop_beside_the_hub(tmp_path: Path) -> None:
    results = tmp_path / "results"
    noop = {
        "noop_submit_to_final_event_ms_p99": 52.1,
        "noop_cpu_per_delivery_us": 180.0,
        "hub_vs_noop_p99": 19.08,
        "hub_vs_noop_cpu_per_delivery": 5.53,
    }
    _save(results, "fanout", {"subscribers": 1000}, {**FANOUT_HUB, **noop})

    text = write_report(results, tmp_path / "B.md").read_text()

    assert (
        "| p99 994.31 ms (19.08x), 994.5 us hub CPU per delivery (5.53x)"
        " | no-op p99 52.1 ms, 180.0 us per delivery | p99 < 50 ms | **not met** |"
    ) in text


def test_an_older_fanout_run_without_a_noop_still_renders(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _save(results, "fanout", {"subscribers": 1000}, FANOUT_HUB)

    text = write_report(results, tmp_path / "B.md").read_text()

    assert "| p99 994.31 ms, 994.5 us hub CPU per delivery | - | p99 < 50 ms | **not met** |" in (
        text
    )


def test_hold_and_reconnect_rows_show_the_same_runs_floor(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _save(results, "hold", {"vehicles": 20_000}, {
        "connected": 20_000, "hub_cpu_during_connect_s": 75.0, "connect_rate_per_s": 210.0,
        "hub_rss_per_vehicle_kib": 49.7, "idle_hub_cpu_percent": 33.0,
        "floor_cpu_ms_per_connect": 1.25, "floor_connect_rate_per_s": 800.0,
        "floor_rss_per_vehicle_kib": 30.1, "floor_idle_cpu_percent": 5.5,
        "hub_vs_floor_cpu_per_connect": 3.0, "hub_vs_floor_rss_per_vehicle": 1.65,
        "hub_vs_floor_idle_cpu": 6.0,
    })  # fmt: skip
    _save(results, "reconnect", {"vehicles": 10_000}, {
        "vehicles": 10_000, "time_until_all_registered_again_s": 42.0, "commands_lost": 0,
        "hub_cpu_during_reconnect_s": 31.0, "floor_time_until_all_registered_again_s": 6.0,
        "floor_cpu_ms_per_reconnect": 0.5, "hub_vs_floor_reconnect_time": 7.0,
    })  # fmt: skip

    text = write_report(results, tmp_path / "B.md").read_text()

    assert "| 3.75 ms (3.0x; 20,000 connect at 210.0/s) | floor 1.25 ms (800.0/s) | ≤ 1 ms |" in (
        text
    )
    assert (
        "| 49.7 KiB per vehicle at 20,000 (1.65x); idle 33.0 % of a core (6.0x)"
        " | floor 30.1 KiB per vehicle; idle 5.5 % |"
    ) in text
    assert (
        "| 10,000 back in 42.0 s (7.0x), 0 commands lost"
        " | floor 6.0 s, 0.50 ms CPU per reconnect (hub 3.10 ms) |"
    ) in text
    # the sections' target tables: the floor beside the hub, and whether even it is in the limit
    assert "| `hub_rss_per_vehicle_kib` | 49.7 | 30.1 (within the limit) | **not met** |" in text
    assert "| `idle_hub_cpu_percent` | 33.0 | 5.5 (within the limit) | **not met** |" in text
    assert "| `commands_lost` | 0 | - | met |" in text
