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
