"""`groupcommit`: sustained submissions per second, group commit against per-request commits.

The hub runs twice (or more) at once, each on a fresh database with its
vehicles connected: with per-request commits
(`SOVD_HUB_JOURNAL_MAX_BATCH_RECORDS=1`: one transaction per record call),
with the group-commit defaults, and once per `--wait-ms` value
(`SOVD_HUB_JOURNAL_MAX_WAIT_MS`). Against each, a `bench.closed_loop` process
submits at every `--concurrency` level: N connections, each POSTing the next
command as soon as its 202 came, counted over `--step-s` after a warm-up.
The steps alternate between the hubs (the others idle meanwhile), so load
from outside the benchmark weighs on each variant alike.
The commands run on the simulated vehicles meanwhile, so their response
events go through the same journal. Each step records the CPU of the hub,
Postgres, the fleet, the load generator and the whole machine, the journal's
mean batch and commit time (from `/metrics`), and names its ceiling. Then,
unless --skip-storage, `bench.journal_bench` measures the journal alone.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio

from bench.journal_bench import measure_journal
from bench.procstat import CpuMeter, MachineMeter
from bench.scenarios import Outcome
from bench.stack import (
    BENCH_PASSWORD,
    BENCH_USER,
    HubProcess,
    bench_vin,
    open_bench_database,
    open_fleet,
    open_hub_process,
    provision,
    wait_connected,
)
from bench.stats import percentile
from hub import HubConfig

HELP = "closed-loop submissions: sustained 202/s, group commit vs per-request commits"
QUICK = ["--vehicles", "20", "--concurrency", "8", "32", "--step-s", "5", "--storage-s", "3"]
TINY = [
    "--vehicles", "2", "--concurrency", "2", "--step-s", "1", "--warmup-s", "0.5",
    "--database", "sqlite", "--storage-s", "0.5", "--storage-tasks", "4",
]  # fmt: skip
#: The generator gets this long to log in and connect before the common start.
START_DELAY_S = 2.0
#: A process this busy (fraction of one core; of every core for the machine) is a ceiling.
SATURATED = 0.8
#: The journal writer committing this much of the time commits back to back.
WRITER_BUSY = 0.9
PER_REQUEST = "per_request"
GROUP = "group"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The scenario's options."""
    parser.add_argument("--vehicles", type=int, default=20, help="connected vehicles")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 8, 32, 64], help="submitters per step"
    )
    parser.add_argument("--step-s", type=float, default=10.0, help="counted seconds per step")
    parser.add_argument("--warmup-s", type=float, default=2.0, help="uncounted, before each step")
    parser.add_argument(
        "--wait-ms", type=float, nargs="*", default=[], help="also run group commit with these"
    )
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--storage-s", type=float, default=5.0, help="journal-alone seconds")
    parser.add_argument("--storage-tasks", type=int, default=32, help="journal-alone tasks")
    parser.add_argument("--skip-storage", action="store_true", help="no journal-alone phase")


async def run(args: argparse.Namespace, workdir: Path) -> Outcome:
    """Run every variant's steps, then the journal alone; figures and ratios."""
    defaults = HubConfig()
    parameters: dict[str, Any] = {
        "vehicles": args.vehicles,
        "concurrency": args.concurrency,
        "step_s": args.step_s,
        "warmup_s": args.warmup_s,
        "wait_ms": args.wait_ms or None,
        "database": args.database,
        "storage_s": None if args.skip_storage else args.storage_s,
        "storage_tasks": args.storage_tasks,
        "skip_storage": args.skip_storage,
        "default_journal_max_batch_records": defaults.journal_max_batch_records,
        "default_journal_max_wait_ms": defaults.journal_max_wait_ms,
        "command": "ReadDTC 0x10 (2 progress + 1 result events), 202 awaited, not the result",
    }
    variants: dict[str, dict[str, str]] = {
        PER_REQUEST: {"SOVD_HUB_JOURNAL_MAX_BATCH_RECORDS": "1"},
        GROUP: {},
    }
    for wait in args.wait_ms:
        variants[f"wait_{wait:g}ms"] = {"SOVD_HUB_JOURNAL_MAX_WAIT_MS": f"{wait:g}"}
    vin_file = workdir / "vins.json"
    vin_file.write_bytes(orjson.dumps([bench_vin(n) for n in range(1, args.vehicles + 1)]))
    steps: dict[str, list[dict[str, Any]]] = {label: [] for label in variants}
    async with contextlib.AsyncExitStack() as stack:
        # Every variant's hub runs throughout, idle while another is measured, and the
        # steps alternate between them: other load on the machine then weighs on each alike.
        stacks = {
            label: await stack.enter_async_context(_open_variant(args, workdir / label, settings))
            for label, settings in variants.items()
        }
        for concurrency in args.concurrency:
            for label, (hub, fleet_pids) in stacks.items():
                print(f"  {label}, {concurrency} submitters ...", flush=True)
                steps[label].append(await _step(args, hub, fleet_pids, vin_file, concurrency))
    figures = headline(steps)
    for label, variant_steps in steps.items():
        for step in variant_steps:
            figures[f"{label}_c{step['concurrency']}"] = step
    if not args.skip_storage:
        own = workdir / "storage"
        own.mkdir()
        async with open_bench_database(args.database, own) as url:
            await provision(url, 1)
            figures.update(await measure_journal(url, args.storage_tasks, args.storage_s))
    series = {
        f"{label}_accepted_per_s": [s["accepted_per_s"] for s in variant_steps]
        for label, variant_steps in steps.items()
    }
    series["concurrency"] = list(args.concurrency)
    return Outcome(parameters, figures, series)


@contextlib.asynccontextmanager
async def _open_variant(
    args: argparse.Namespace, workdir: Path, settings: dict[str, str]
) -> AsyncIterator[tuple[HubProcess, list[int]]]:
    """A hub with `settings` on a fresh database (SQLite: its own file), its fleet connected."""
    await trio.Path(workdir).mkdir()
    async with open_bench_database(args.database, workdir) as url:
        specs = await provision(url, args.vehicles)
        async with (
            open_hub_process(url, settings) as hub,
            open_fleet(specs, hub.grpc_port, workdir, processes=1) as fleet,
        ):
            await wait_connected(hub, args.vehicles, timeout_s=120)
            yield hub, fleet.pids


async def _step(
    args: argparse.Namespace, hub: HubProcess, fleet_pids: list[int], vin_file: Path, n: int
) -> dict[str, Any]:
    """One closed-loop step of `n` submitters; its rate, latency, CPU shares and ceiling."""
    start_at = time.time() + START_DELAY_S
    command = [
        sys.executable, "-m", "bench.closed_loop", "--url", hub.http_url,
        "--username", BENCH_USER, "--password", BENCH_PASSWORD, "--vins-file", str(vin_file),
        "--concurrency", str(n), "--warmup-s", str(args.warmup_s),
        "--duration-s", str(args.step_s), "--start-at", repr(start_at),
    ]  # fmt: skip
    done: list[subprocess.CompletedProcess[bytes]] = []

    async def generate(*, task_status: trio.TaskStatus[trio.Process]) -> None:
        run_process = functools.partial(
            trio.run_process, command, capture_stdout=True, capture_stderr=True, check=False,
            env=dict(os.environ),
        )  # fmt: skip
        done.append(await run_process(task_status=task_status))

    async with trio.open_nursery() as nursery, httpx.AsyncClient(base_url=hub.http_url) as http:
        process: trio.Process = await nursery.start(generate)
        meters = [
            CpuMeter("hub", [hub.pid]),
            CpuMeter("postgres", by_name="postgres"),
            CpuMeter("fleet", fleet_pids),
            CpuMeter("generator", [process.pid]),
            MachineMeter("machine"),
        ]
        await trio.sleep(max(0.0, start_at + args.warmup_s - time.time()))
        before = await _journal_metrics(http)
        for meter in meters:
            meter.start()
        await trio.sleep(args.step_s)
        cpu = {meter.label: meter.stop() for meter in meters}
        after = await _journal_metrics(http)
    if done[0].returncode != 0:
        tail = done[0].stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"the load generator exited with {done[0].returncode}:\n{tail}")
    output = orjson.loads(done[0].stdout.splitlines()[-1])
    return step_figures(output, cpu, before, after, args.step_s)


_METRIC = re.compile(rb"^(sovd_hub_journal_(?:batch_records|commit_seconds)_(?:sum|count)) (\S+)$")


async def _journal_metrics(http: httpx.AsyncClient) -> dict[str, float]:
    """The journal histograms' sums and counts from `/metrics`."""
    found: dict[str, float] = {}
    for line in (await http.get("/metrics")).content.splitlines():
        match = _METRIC.match(line)
        if match:
            found[match.group(1).decode()] = float(match.group(2))
    return found


def step_figures(
    output: dict[str, Any],
    cpu: dict[str, float],
    before: dict[str, float],
    after: dict[str, float],
    window_s: float,
) -> dict[str, Any]:
    """One step's figures from the generator's output, the CPU meters and `/metrics` deltas."""

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    batches = delta("sovd_hub_journal_batch_records_count")
    commit_s = delta("sovd_hub_journal_commit_seconds_sum")
    latencies = output["latencies_ms"]
    share = {label: round(100 * spent / window_s, 1) for label, spent in cpu.items()}
    cores = os.cpu_count() or 1
    ours = sum(v for k, v in share.items() if k != "machine")
    share["others"] = round(max(0.0, share["machine"] - ours), 1)  # not this benchmark's
    share["machine"] = round(share["machine"] / cores, 1)  # of every core
    writer_busy = round(100 * commit_s / window_s, 1)
    refused = {code: n for code, n in output["statuses"].items() if code != "202"}
    return {
        "concurrency": output["concurrency"],
        "accepted_per_s": round(output["accepted"] / window_s, 1),
        # robust to other load on the machine: what one CPU-second of the hub accepts
        "accepted_per_hub_cpu_s": round(output["accepted"] / cpu["hub"], 1) if cpu["hub"] else None,
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "refused": refused,
        "transport_errors": output["transport_errors"],
        "journal_batches_per_s": round(batches / window_s, 1),
        "journal_calls_per_batch": round(delta("sovd_hub_journal_batch_records_sum") / batches, 2)
        if batches
        else None,
        "journal_commit_ms_mean": round(1000 * commit_s / batches, 2) if batches else None,
        "journal_writer_busy_pct": writer_busy,
        "cpu_pct": share,
        "ceiling": ceiling(share, writer_busy),
    }


def ceiling(share: dict[str, float], writer_busy_pct: float) -> str:
    """What limited a step: every saturated resource, from the CPU shares (% of one core;
    `machine`: % of every core) and the share of the time the journal writer spent committing.
    """
    limit = 100 * SATURATED
    found = []
    if share.get("generator", 0.0) >= limit:
        found.append("load generator CPU (the figure is the generator's, not the hub's)")
    if share.get("hub", 0.0) >= limit:
        found.append(f"hub CPU ({share['hub']:g}% of its one core)")
    if share.get("postgres", 0.0) >= limit:
        found.append(f"Postgres CPU ({share['postgres']:g}% of a core)")
    if share.get("machine", 0.0) >= limit:
        found.append(f"machine CPU ({share['machine']:g}% of every core)")
    if writer_busy_pct >= 100 * WRITER_BUSY:
        found.append(f"journal writer committing {writer_busy_pct:g}% of the time")
    return "; ".join(found) or "nothing saturated (latency-bound)"


def headline(steps: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Each variant's best sustained rate and its step; group vs per-request ratios."""
    figures: dict[str, Any] = {}
    for label, variant_steps in steps.items():
        best = max(variant_steps, key=lambda s: s["accepted_per_s"])
        figures[f"{label}_sustained_per_s"] = best["accepted_per_s"]
        figures[f"{label}_sustained_at_concurrency"] = best["concurrency"]
        figures[f"{label}_sustained_p50_ms"] = best["p50_ms"]
        figures[f"{label}_sustained_p99_ms"] = best["p99_ms"]
        figures[f"{label}_sustained_ceiling"] = best["ceiling"]
        figures[f"{label}_sustained_per_hub_cpu_s"] = best["accepted_per_hub_cpu_s"]
    for name, figure in (
        ("sustained", "sustained_per_s"),
        ("per_hub_cpu_s", "sustained_per_hub_cpu_s"),
    ):
        group, single = figures.get(f"{GROUP}_{figure}"), figures.get(f"{PER_REQUEST}_{figure}")
        figures[f"group_vs_per_request_{name}"] = (
            round(group / single, 2) if group and single else None
        )
    for mine, theirs in zip(steps.get(GROUP, []), steps.get(PER_REQUEST, []), strict=False):
        rate = theirs["accepted_per_s"]
        figures[f"group_vs_per_request_c{mine['concurrency']}"] = (
            round(mine["accepted_per_s"] / rate, 2) if rate else None
        )
    return figures
