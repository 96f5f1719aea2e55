"""Smoke tests of `python -m bench`: every scenario at its TINY size, the report, the charts.

The scenarios run as `python -m bench <name>` subprocesses (each starts its
own hub and load processes), so they cannot rot unnoticed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from bench import environment
from bench.charts import write_chart
from bench.report import reproduce, write_report
from bench.scenarios import NAMES, Outcome, load

ROOT = Path(__file__).parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCENARIO_TIMEOUT_S = 180
#: The floor's figures (`bench.baseline_hub` holding the same fleet after the hub) that a
#: TINY run must report, each positive; idle CPU is not among them: at TINY size it is 0.
FLOOR_FIGURES = {
    "hold": [
        "floor_time_until_all_registered_s",
        "floor_connect_rate_per_s",
        "floor_cpu_during_connect_s",
        "floor_cpu_ms_per_connect",
        "floor_rss_connected_mib",
        "floor_rss_per_vehicle_kib",
        "hub_cpu_ms_per_connect",
        "hub_vs_floor_cpu_per_connect",
        "hub_vs_floor_rss_per_vehicle",
    ],
    "reconnect": [
        "floor_initial_connect_s",
        "floor_time_until_all_registered_again_s",
        "floor_reconnect_rate_per_s",
        "floor_cpu_during_reconnect_s",
        "floor_cpu_ms_per_reconnect",
        "hub_cpu_ms_per_reconnect",
        "hub_vs_floor_cpu_per_reconnect",
        "hub_vs_floor_reconnect_time",
    ],
}


async def _bench(name: str, options: list[str], results: Path) -> tuple[int, str]:
    """Run `python -m bench name *options`; its exit status and output."""
    command = [sys.executable, "-m", "bench", name, *options, "--results-dir", str(results)]
    with trio.fail_after(SCENARIO_TIMEOUT_S):
        done = await trio.run_process(
            command, cwd=ROOT, capture_stdout=True, stderr=subprocess.STDOUT, check=False
        )
    return done.returncode, done.stdout.decode(errors="replace")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
async def test_scenario_runs_at_tiny_size(name: str, tmp_path: Path) -> None:
    returncode, output = await _bench(name, load(name).TINY, tmp_path)
    assert returncode == 0, f"bench {name} exited {returncode}:\n{output[-4000:]}"
    document = _only_result(tmp_path, name, output)
    assert document["scenario"] == name
    assert document["figures"], "the scenario reported no figures"
    assert document["machine"]["cores"] >= 1
    if name == "fanout":
        _assert_fanout_measured_the_noop_twin(document["figures"])
    if name in FLOOR_FIGURES:
        _assert_measured_the_floor(name, document["figures"])


def _assert_fanout_measured_the_noop_twin(figures: dict[str, Any]) -> None:
    """The no-op phase ran to the end: every socket got every command, figures positive."""
    assert figures["noop_missing_deliveries"] == 0, figures["noop_errors_by_code"]
    assert figures["noop_deliveries_received"] == figures["deliveries_expected"]
    for key in (
        "noop_submit_to_final_event_ms_p50",
        "noop_submit_to_final_event_ms_p99",
        "noop_final_event_spread_ms_p99",
        "noop_submit_to_subscribed_ms_p99",
        "noop_cpu_per_delivery_us",
        "hub_vs_noop_p99",
        "hub_vs_noop_cpu_per_delivery",
    ):
        assert figures[key] > 0, key
    # the vehicle's schedule is the hub's: 10 ms before each of three events, from the 202
    # on (which the client sees a little after the no-op starts the schedule)
    assert figures["noop_submit_to_final_event_ms_p50"] > 25


def _assert_measured_the_floor(name: str, figures: dict[str, Any]) -> None:
    """The floor phase (`bench.baseline_hub`) of `hold` or `reconnect` ran: figures positive."""
    floor = {key: figures.get(key) for key in FLOOR_FIGURES[name]}
    assert all(isinstance(v, int | float) and v > 0 for v in floor.values()), floor
    if name == "hold":
        assert figures["floor_idle_cpu_percent"] >= 0
    if name == "reconnect":
        assert figures["floor_all_registered_again"] is True


@pytest.mark.slow
async def test_skip_floor_measures_the_hub_alone(tmp_path: Path) -> None:
    returncode, output = await _bench("hold", [*load("hold").TINY, "--skip-floor"], tmp_path)
    assert returncode == 0, output[-4000:]
    document = _only_result(tmp_path, "hold", output)
    assert document["parameters"]["skip_floor"] is True
    assert document["figures"]["hub_cpu_ms_per_connect"] > 0
    assert not [key for key in document["figures"] if "floor" in key]


@pytest.mark.slow
async def test_commands_routed_between_two_nodes_all_succeed(tmp_path: Path) -> None:
    """`commands --routed`: the fleet on one node, operators on another, Redis between them."""
    tiny = [*load("commands").TINY, "--database", "postgres", "--routed", "--skip-noop"]
    returncode, output = await _bench("commands", tiny, tmp_path)
    assert returncode == 0, output[-4000:]
    document = _only_result(tmp_path, "commands", output)
    figures = document["figures"]
    assert document["parameters"]["routed"] is True
    assert figures["hub_final_statuses"] == {"succeeded": figures["hub_sent"]}
    assert figures["missing_in_database"] == 0
    assert figures["hub_run_entry_cpu_s"] > 0
    assert figures["hub_run_holder_cpu_s"] > 0


@pytest.mark.slow
async def test_a_phase_out_of_time_saves_how_far_it_got_instead_of_a_traceback(
    tmp_path: Path,
) -> None:
    tiny = [*load("hold").TINY, "--connect-timeout-s", "0.01"]
    returncode, output = await _bench("hold", tiny, tmp_path)
    assert returncode == 1, output[-4000:]
    assert "Traceback" not in output
    assert "phase 'connect' did not finish within 0.01 s (partial result)" in output
    figures = _only_result(tmp_path, "hold", output)["figures"]
    assert figures["timed_out_phase"] == "connect"
    vehicles = int(tiny[tiny.index("--vehicles") + 1])
    assert figures["vehicles_wanted"] == vehicles
    assert 0 <= figures["vehicles_connected"] < vehicles


def _only_result(results_dir: Path, name: str, output: str) -> dict[str, Any]:
    results = list(results_dir.glob(f"{name}-*.json"))
    assert len(results) == 1, output[-2000:]
    document: dict[str, Any] = json.loads(results[0].read_text())
    return document


def _fake_outcomes() -> dict[str, Outcome]:
    latencies = [float(v % 37) for v in range(200)]
    return {
        "hold": Outcome(
            {"vehicles": 20000, "fleet_processes": 4, "database": "sqlite"},
            {"hub_rss_per_vehicle_kib": 31.5, "connected": 20000},
            {"t_s": [0.0, 1.0, 2.0], "connected": [0, 10000, 20000], "rss_mib": [60, 360, 660]},
        ),
        "commands": Outcome(
            {"vehicles": 3, "rate_per_s": 300.0, "ramp_to_per_s": None, "database": "sqlite"},
            {"hub_vs_noop_cpu_per_command": 1.6, "hub_latency_p99_ms": 42.0, "errors": {}},
            {"latency_ms": latencies, "rate": [100, 200, 300], "p99": [10, 20, 90]},
        ),
        "overload": Outcome(
            {"rate_per_s": 400.0, "duration_s": 30.0, "max_open_commands_per_user": 100},
            {"admitted_rate_per_s": 255.1, "refused_rate_per_s": 144.9, "refused_503": 4346},
            {"admitted_latency_ms": latencies},
        ),
        "fanout": Outcome(
            {"subscribers": 200, "commands": 2},
            {"submit_to_final_event_ms_p99": 12.5},
            {"latency_ms": latencies},
        ),
        "reconnect": Outcome(
            {"vehicles": 10000},
            {"time_until_all_registered_again_s": 8.2, "commands_lost": 0},
            {"t_s": [0.0, 0.5, 1.0], "connected": [10000, 0, 10000]},
        ),
        "baseline": Outcome(
            {"streams": 4, "window": 2, "duration_s": 1.0, "database": "sqlite"},
            {
                "baseline_cpu_us_per_message": 16.0,
                "hub_cpu_us_per_message": 40.0,
                "hub_vs_baseline_cpu_per_message": 2.5,
            },
            {"server": ["baseline", "hub"], "cpu_us_per_message": [16.0, 40.0]},
        ),
        "groupcommit": Outcome(
            {"vehicles": 20, "concurrency": [1, 8], "step_s": 10.0, "database": "postgres"},
            {"group_vs_per_request_sustained": 2.8, "group_sustained_per_s": 358.4},
            {
                "concurrency": [1, 8],
                "group_accepted_per_s": [90, 300],
                "per_request_accepted_per_s": [60, 120],
            },
        ),
        "unknown": Outcome({}, {"something": 1}, {"odd": ["a", "b"]}),
    }


@pytest.mark.parametrize("name", [*_fake_outcomes()])
def test_write_chart_writes_a_png(name: str, tmp_path: Path) -> None:
    path = write_chart(name, _fake_outcomes()[name], tmp_path / f"{name}.png")

    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_write_chart_without_series_writes_a_text_figure(tmp_path: Path) -> None:
    path = write_chart("hold", Outcome({}, {"connected": 3}), tmp_path / "hold.png")

    assert path.read_bytes()[:8] == PNG_SIGNATURE


def _save(results_dir: Path, name: str, outcome: Outcome) -> Path:
    return environment.save_result(name, outcome.parameters, outcome.figures, results_dir)


def test_report_has_a_section_per_scenario_with_targets_and_commands(tmp_path: Path) -> None:
    results = tmp_path / "results"
    outcomes = _fake_outcomes()
    paths = {name: _save(results, name, outcomes[name]) for name in NAMES}
    chart = write_chart("baseline", outcomes["baseline"], paths["baseline"].with_suffix(".png"))
    output = tmp_path / "BENCHMARKS.md"

    assert write_report(results, output) == output
    text = output.read_text()

    assert "make bench" in text and "python -m bench report" in text
    assert "cores" in text and "git revision" in text
    assert "grpclib hub spent 16.0 us of CPU per vehicle message" in text  # the machine's speed
    for name in NAMES:
        assert f"## {name}" in text
        assert reproduce(name, outcomes[name].parameters) in text
    assert "python -m bench baseline --streams 4 --window 2 --duration-s 1 --database sqlite" in (
        text
    )
    assert "| `hub_vs_baseline_cpu_per_message` | 2.5 | **not met** |" in text
    assert "| `hub_rss_per_vehicle_kib` | 31.5 | met |" in text
    assert "| `time_until_all_registered_again_s` | 8.2 | met |" in text
    assert f"![baseline chart](results/{chart.name})" in text


def test_report_says_when_a_target_size_was_not_run(tmp_path: Path) -> None:
    results = tmp_path / "results"
    small: dict[str, Any] = {"vehicles": 2000}
    _save(results, "hold", Outcome(small, {"hub_rss_per_vehicle_kib": 30.0}))

    text = write_report(results, tmp_path / "B.md").read_text()

    assert "not judged: this run has vehicles = 2000, the target is set at 20,000" in text
    assert "| met |" not in text


def test_report_shows_every_run_newest_first(tmp_path: Path) -> None:
    results = tmp_path / "results"
    for rate in (100, 300):
        _save(results, "commands", Outcome({"rate_per_s": rate}, {"hub_latency_p99_ms": 40.0}))
        time.sleep(1.1)  # result names carry the second they were saved

    text = write_report(results, tmp_path / "B.md").read_text()

    newest, earlier = text.index("## commands"), text.index("### commands: an earlier run")
    assert newest < text.index("--rate 300", newest) < earlier < text.index("--rate 100", newest)


def test_report_without_results_says_so(tmp_path: Path) -> None:
    text = write_report(tmp_path, tmp_path / "B.md").read_text()

    assert "No results yet" in text
