"""The `groupcommit` scenario's arithmetic, its journal-alone phase on a real database, its report.

The whole scenario runs at its TINY size in `test_scenarios.py` (every NAME).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bench import environment
from bench.journal_bench import VARIANTS, measure_journal
from bench.report import write_report
from bench.scenarios.groupcommit import ceiling, headline, step_figures
from bench.stack import provision
from storage import CommandFilter, open_database


def _output(accepted: int, latencies: list[float], **statuses: int) -> dict[str, Any]:
    return {
        "concurrency": 8,
        "window_s": 2.0,
        "accepted": accepted,
        "statuses": {"202": accepted, **statuses},
        "latencies_ms": latencies,
        "transport_errors": {},
        "cpu_window_s": 0.1,
        "cpu_s": 1.0,
        "start_late_ms": 0.0,
    }


def test_step_figures_combine_generator_cpu_and_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    before = {
        "sovd_hub_journal_batch_records_count": 100.0,
        "sovd_hub_journal_batch_records_sum": 400.0,
        "sovd_hub_journal_commit_seconds_sum": 1.0,
    }
    after = {
        "sovd_hub_journal_batch_records_count": 300.0,  # 200 batches in 2 s
        "sovd_hub_journal_batch_records_sum": 2400.0,  # 2000 calls: 10 per batch
        "sovd_hub_journal_commit_seconds_sum": 2.9,  # 1.9 s committing: 95 % of the window
    }
    cpu = {"hub": 1.9, "postgres": 0.2, "fleet": 0.1, "generator": 0.2, "machine": 3.0}

    step = step_figures(
        _output(600, [float(v) for v in range(1, 101)], **{"503": 4}), cpu, before, after, 2.0
    )

    assert step["accepted_per_s"] == 300.0
    assert step["accepted_per_hub_cpu_s"] == 315.8  # 600 accepted for 1.9 hub CPU-seconds
    assert (step["p50_ms"], step["p99_ms"]) == (50.0, 99.0)
    assert step["refused"] == {"503": 4}
    assert step["journal_batches_per_s"] == 100.0
    assert step["journal_calls_per_batch"] == 10.0
    assert step["journal_commit_ms_mean"] == 9.5
    assert step["journal_writer_busy_pct"] == 95.0
    assert step["cpu_pct"] == {
        "hub": 95.0,
        "postgres": 10.0,
        "fleet": 5.0,
        "generator": 10.0,
        "machine": 75.0,  # 3 CPU-seconds of 2 cores x 2 s
        "others": 30.0,  # 150 % busy, 120 % of it ours
    }
    assert (
        step["ceiling"]
        == "hub CPU (95% of its one core); journal writer committing 95% of the time"
    )


def test_ceiling_says_when_nothing_and_when_the_generator_was_saturated() -> None:
    idle = {"hub": 40.0, "postgres": 5.0, "generator": 10.0, "machine": 30.0}
    assert ceiling(idle, 20.0) == "nothing saturated (latency-bound)"
    busy_generator = {**idle, "generator": 97.0, "machine": 85.0}
    assert ceiling(busy_generator, 20.0) == (
        "load generator CPU (the figure is the generator's, not the hub's);"
        " machine CPU (85% of every core)"
    )


def test_headline_takes_each_variants_best_step_and_the_ratio() -> None:
    def step(concurrency: int, rate: float) -> dict[str, Any]:
        return {"concurrency": concurrency, "accepted_per_s": rate, "p50_ms": 1.0,
                "p99_ms": 2.0, "ceiling": "x", "accepted_per_hub_cpu_s": rate * 2}  # fmt: skip

    figures = headline(
        {
            "per_request": [step(1, 50.0), step(8, 120.0), step(32, 110.0)],
            "group": [step(1, 60.0), step(8, 300.0), step(32, 330.0)],
        }
    )

    assert figures["per_request_sustained_per_s"] == 120.0
    assert figures["per_request_sustained_at_concurrency"] == 8
    assert figures["group_sustained_per_s"] == 330.0
    assert figures["group_vs_per_request_sustained"] == 2.75
    assert figures["group_vs_per_request_per_hub_cpu_s"] == 2.75
    assert figures["group_vs_per_request_c1"] == 1.2
    assert figures["group_vs_per_request_c32"] == 3.0


async def test_journal_alone_commits_every_record_of_every_variant(
    aio_loop: asyncio.AbstractEventLoop, database_url: str
) -> None:
    await provision(database_url, 1)

    figures = await measure_journal(database_url, tasks=4, duration_s=0.3)

    async with open_database(database_url) as db:
        stored = (await db.commands.list_commands(CommandFilter(), limit=1)).total
    for variant in VARIANTS:
        assert figures[f"storage_{variant}"]["records_per_s"] > 0
    assert stored == sum(figures[f"storage_{variant}"]["records"] for variant in VARIANTS)
    assert isinstance(figures["storage_group_vs_per_call"], float)


def test_report_judges_group_commit_against_per_request(tmp_path: Path) -> None:
    results = tmp_path / "results"
    environment.save_result(
        "groupcommit",
        {"vehicles": 20, "concurrency": [1, 8, 32], "step_s": 10.0},
        {"group_vs_per_request_sustained": 2.77},
        results,
    )

    text = write_report(results, tmp_path / "B.md").read_text()

    assert "| `group_vs_per_request_sustained` | 2.77 | met |" in text
    assert "python -m bench groupcommit --vehicles 20 --concurrency 1 8 32 --step-s 10" in text
