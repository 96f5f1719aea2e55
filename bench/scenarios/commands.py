"""`commands`: open-loop REST submissions to M vehicles, each followed to its end over WebSocket.

The hub runs with its database and a simulated fleet; G `bench.loadgen`
processes share the rate and the VINs. Afterwards every completed command is
looked up in the database. Then, unless --skip-noop, the same generators run
at the same rate against `bench.noop_server` (the bare Quart-Trio edge of the
same API), so CPU per command and p99 are also given as ratios to it. The
work behind each processed command (transactions, statements, rows written,
bridge crossings, WebSocket frames) comes from `bench.costs`. With --redis the
hub runs as a scale-out node (leases, its own command stream, the Redis bus),
alone: the cost of scale-out on a command to a vehicle the node holds. With
--routed a second node joins it on the same database and Redis: the fleet
connects to the first (the holder), operators submit and subscribe on the
second (the entry), so every command and its events cross Redis between
two hub processes. `hub_*` CPU is then both nodes' together, with each one's
share beside it (`hub_run_entry_cpu_s`, `hub_run_holder_cpu_s`); counters
are summed over both; --profile samples the holder.
"""

from __future__ import annotations

import argparse
import math
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

from bench import costs
from bench.diagnosis import ask_hub, cpu_shares
from bench.loadgen import planned_count
from bench.open_loop import check_database, drive, write_vin_files
from bench.procstat import CpuMeter
from bench.scenarios import Outcome
from bench.stack import (
    HubProcess,
    open_bench_database,
    open_bench_redis,
    open_fleet,
    open_hub_process,
    open_noop_process,
    provision,
    wait_connected,
)
from bench.stats import percentile, thin

HELP = "open-loop commands at a rate: end-to-end latency, hub CPU per command, vs a no-op server"
QUICK = ["--vehicles", "20", "--rate", "200", "--duration-s", "15"]
TINY = [
    "--vehicles", "3", "--rate", "10", "--duration-s", "3", "--generators", "1",
    "--database", "sqlite",
]  # fmt: skip
#: A PostgreSQL backend reports its counters when it goes idle, 10 s later at the latest.
STATS_DELAY_S = 11.0
#: Latency samples kept per target for the chart.
MAX_SAMPLES = 5000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The scenario's options."""
    parser.add_argument("--vehicles", type=int, default=50, help="connected vehicles (M)")
    parser.add_argument("--rate", type=float, default=300.0, help="commands per second")
    parser.add_argument("--ramp-to", type=float, help="ramp linearly from --rate to this")
    parser.add_argument("--duration-s", type=float, default=20.0)
    parser.add_argument("--generators", type=int, default=2, help="load generator processes")
    parser.add_argument("--fleet-processes", type=int, default=1, help="simulator processes")
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--event-latency-ms", type=float, default=0.0, help="simulator latency")
    parser.add_argument("--timeout-s", type=float, default=10.0, help="per-command wait")
    parser.add_argument("--skip-noop", action="store_true", help="do not measure the no-op edge")
    parser.add_argument(
        "--redis", action="store_true", help="run the hub as a scale-out node (leases, streams)"
    )
    parser.add_argument(
        "--routed",
        action="store_true",
        help="submit through a second scale-out node: commands routed between two hubs",
    )
    parser.add_argument(
        "--profile", action="store_true", help="also sample where the hub's CPU time goes"
    )


async def run(args: argparse.Namespace, workdir: Path) -> Outcome:
    """Measure the hub, check its database, then measure the no-op server the same way."""
    parameters = {
        "vehicles": args.vehicles,
        "rate_per_s": args.rate,
        "ramp_to_per_s": args.ramp_to,
        "duration_s": args.duration_s,
        "generators": args.generators,
        "fleet_processes": args.fleet_processes,
        "database": args.database,
        "event_latency_ms": args.event_latency_ms,
        "timeout_s": args.timeout_s,
        "redis": args.redis or args.routed,
        "routed": args.routed,
        "profile": args.profile,
        "command": "ReadDTC 0x10 (2 progress + 1 result events)",
    }
    vin_files = write_vin_files(args, workdir)
    async with (
        open_bench_database(args.database, workdir) as url,
        open_bench_redis(args.redis or args.routed) as scale_out,
    ):
        specs = await provision(url, args.vehicles)
        profile = workdir / "profile.json"
        settings = {
            **scale_out,
            **({"SOVD_HUB_PROFILE_FILE": str(profile)} if args.profile else {}),
        }
        async with _open_nodes(url, settings, args.routed) as (entry, holder), open_fleet(
            specs, holder.grpc_port, workdir,
            processes=args.fleet_processes, event_latency_ms=args.event_latency_ms,
        ) as fleet:  # fmt: skip
            await wait_connected(holder, args.vehicles, timeout_s=120)
            nodes = [entry] if entry is holder else [entry, holder]
            meters = [
                CpuMeter("hub", [node.pid for node in nodes]),
                CpuMeter("fleet", fleet.pids),
                CpuMeter("postgres", by_name="postgres"),
            ]
            if args.routed:
                meters += [CpuMeter("entry", [entry.pid]), CpuMeter("holder", [holder.pid])]
            async with AsyncExitStack() as clients:
                https = [
                    await clients.enter_async_context(
                        httpx.AsyncClient(base_url=node.http_url, timeout=30)
                    )
                    for node in nodes
                ]
                before = await costs.snapshot(https, url)
                if args.profile:  # what the sampler charged so far is not the run's
                    await ask_hub(holder, profile, signal.SIGUSR2)
                hub_run = await drive(args, entry.http_url, vin_files, meters)
                ended = trio.current_time()
                sampled = await ask_hub(holder, profile, signal.SIGUSR2) if args.profile else None
                check = await check_database(url, hub_run)
                if args.database == "postgres":  # its counters lag
                    await trio.sleep_until(ended + STATS_DELAY_S)
                after = await costs.snapshot(https, url)
    figures = _figures("hub", hub_run, args)
    figures.update(check)
    processed = hub_run["completed"] + check["unfinished_final_in_database"]
    figures["hub_processed"] = processed
    figures["hub_cpu_ms_per_processed_command"] = _round(
        1000 * hub_run["cpu"]["hub"] / processed if processed else math.nan, 3
    )
    figures.update(costs.per_command(before, after, processed))
    if sampled is not None:
        figures.update(cpu_shares(sampled))
    series = {"hub_latency_ms": thin(hub_run["latencies_ms"], MAX_SAMPLES)}
    if args.ramp_to is not None:
        series.update(_ramp_series(hub_run, args, "hub"))
    if not args.skip_noop:
        noop_run = await _measure_noop(args, vin_files)
        figures.update(_figures("noop", noop_run, args))
        figures.update(_ratios(figures))
        series["noop_latency_ms"] = thin(noop_run["latencies_ms"], MAX_SAMPLES)
        if args.ramp_to is not None:
            series.update(_ramp_series(noop_run, args, "noop"))
    return Outcome(parameters, figures, series)


@asynccontextmanager
async def _open_nodes(
    url: str, settings: dict[str, str], routed: bool
) -> AsyncIterator[tuple[HubProcess, HubProcess]]:
    """(entry, holder): the node operators use and the node the fleet connects to.

    One node is both unless `routed`; two are started on the same database and Redis.
    """
    if not routed:
        async with open_hub_process(url, settings) as hub:
            yield hub, hub
        return
    holder_settings = {**settings, "SOVD_HUB_NODE_ID": "bench-holder"}
    entry_settings = {
        key: value for key, value in settings.items() if key != "SOVD_HUB_PROFILE_FILE"
    }
    async with (
        open_hub_process(url, holder_settings) as holder,
        open_hub_process(url, {**entry_settings, "SOVD_HUB_NODE_ID": "bench-entry"}) as entry,
    ):
        yield entry, holder


async def _measure_noop(args: argparse.Namespace, vin_files: list[Path]) -> dict[str, Any]:
    """Start the no-op server, drive it like the hub, stop it."""
    async with open_noop_process() as noop:
        return await drive(args, noop.http_url, vin_files, [CpuMeter("noop", [noop.pid])])


def _figures(label: str, run: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    latencies = run["latencies_ms"]
    completed = run["completed"]
    server_cpu = run["cpu"][label]
    figures: dict[str, Any] = {
        f"{label}_offered_rate_per_s": round(
            planned_count(args.rate, args.ramp_to, args.duration_s) / args.duration_s, 1
        ),
        f"{label}_achieved_rate_per_s": round(completed / args.duration_s, 1),
        f"{label}_sent": run["sent"],
        f"{label}_completed": completed,
        # latencies are of completed commands only: read them beside this
        f"{label}_completed_fraction": round(completed / run["sent"], 4) if run["sent"] else 0.0,
        f"{label}_errors": run["errors"],
        f"{label}_final_statuses": run["statuses"],
    }
    for name, q in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100)):
        figures[f"{label}_latency_{name}_ms"] = _round(percentile(latencies, q))
    figures[f"{label}_post_p50_ms"] = _round(percentile(run["post_ms"], 50))
    figures[f"{label}_post_p99_ms"] = _round(percentile(run["post_ms"], 99))
    figures[f"{label}_cpu_s"] = round(server_cpu, 2)
    figures[f"{label}_cpu_ms_per_command"] = _round(
        1000 * server_cpu / completed if completed else math.nan, 3
    )
    for other, spent in run["cpu"].items():
        if other not in (label, "machine"):
            figures[f"{label}_run_{other}_cpu_s"] = round(spent, 2)
    figures[f"{label}_run_generator_cpu_s"] = round(run["generator_cpu_s"], 2)
    figures[f"{label}_run_generator_cpu_ms_per_command"] = _round(
        1000 * run["generator_cpu_s"] / completed if completed else math.nan, 3
    )
    figures[f"{label}_run_wall_s"] = round(run["wall_s"], 2)
    ours = sum(v for k, v in run["cpu"].items() if k != "machine") + run["generator_cpu_s"]
    # CPU of processes not part of this run (another benchmark on the machine skews everything)
    figures[f"{label}_run_foreign_cpu_s"] = round(max(0.0, run["cpu"]["machine"] - ours), 2)
    figures[f"{label}_generator_lag_max_ms"] = run["lag_max_ms"]
    figures[f"{label}_generator_lag_p99_ms"] = run["lag_p99_ms"]
    figures[f"{label}_generator_start_late_ms"] = run["start_late_ms"]
    if args.ramp_to is not None:
        figures[f"{label}_highest_rate_p99_under_100ms"] = _highest_rate_under(run, args, 100.0)
    return figures


def _ratios(figures: dict[str, Any]) -> dict[str, Any]:
    def ratio(a: str, b: str) -> float | None:
        x, y = figures.get(a), figures.get(b)
        return round(x / y, 2) if isinstance(x, float) and isinstance(y, float) and y else None

    found = {
        "hub_vs_noop_cpu_per_command": ratio("hub_cpu_ms_per_command", "noop_cpu_ms_per_command"),
        "hub_vs_noop_p99": ratio("hub_latency_p99_ms", "noop_latency_p99_ms"),
    }
    if "hub_highest_rate_p99_under_100ms" in figures:
        found["hub_vs_noop_highest_rate_p99_under_100ms"] = ratio(
            "hub_highest_rate_p99_under_100ms", "noop_highest_rate_p99_under_100ms"
        )
    return found


def _bins(run: dict[str, Any], args: argparse.Namespace) -> list[tuple[float, float]]:
    """(scheduled rate, p99 ms) per second of a ramp, from the commands due in that second."""
    buckets: dict[int, list[float]] = {}
    for offset, latency in zip(run["offsets_s"], run["latencies_ms"], strict=True):
        buckets.setdefault(int(offset), []).append(latency)
    span = args.ramp_to - args.rate
    return [
        (args.rate + span * (second + 0.5) / args.duration_s, percentile(values, 99))
        for second, values in sorted(buckets.items())
    ]


def _ramp_series(run: dict[str, Any], args: argparse.Namespace, label: str) -> dict[str, list[Any]]:
    bins = _bins(run, args)
    return {
        f"{label}_ramp_rate_per_s": [round(rate, 1) for rate, _ in bins],
        f"{label}_ramp_p99_ms": [_round(p99) for _, p99 in bins],
    }


def _highest_rate_under(run: dict[str, Any], args: argparse.Namespace, limit_ms: float) -> float:
    """The highest scheduled rate of a ramp below which every second kept p99 under the limit.

    A second in which commands failed (an error or timeout lands in no bucket)
    is not detected here; read the errors beside it.
    """
    best = 0.0
    for rate, p99 in sorted(_bins(run, args)):
        if p99 >= limit_ms:
            break
        best = rate
    return round(best, 1)


def _round(value: float, digits: int = 2) -> float:
    return value if math.isnan(value) else round(value, digits)
