"""`overload`: commands offered above the hub's capacity, against its admission control.

The generators offer `--rate` (by default 400/s: a hub process here completes
about 200-250/s at this size, with the generators on the same two cores) for
`--duration-s`, over `--connections` (more than the hub's
`max_concurrent_requests`, so that the hub's bound decides, not the clients'
pools); the hub bounds the unfinished commands of the bench user at
`--max-open` (`max_open_commands_per_user`). What matters is that the hub
refuses what it cannot take (503 `overloaded`, before anything is written) and
keeps the commands it admits fast: the figures are the admitted and refused
rates, the admitted commands' latency, the POST's answer time, and what else
went wrong; the generators' CPU and schedule lag say whether they kept up.

The open-commands bound must fit the node (Little's law: its rate times the
wait it may add). Measured here at 400/s offered: 20 kept the admitted p99 at
0.4-0.44 s; with 50 and 100 the POSTs were still answered fast (p99 0.24-0.38
s), but the node admitted more than it then delivered: admitted commands were
final in the database while their status frames came up to the 10 s timeout
late (ARCHITECTURE.md, "Overload").
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.open_loop import check_database, drive, write_vin_files
from bench.procstat import CpuMeter
from bench.scenarios import Outcome
from bench.stack import open_bench_database, open_fleet, open_hub_process, provision, wait_connected
from bench.stats import percentile, thin

HELP = "offer about 2x capacity: admitted and refused (503) rates, admitted p99"
QUICK = ["--rate", "400", "--duration-s", "15"]
TINY = [
    "--vehicles", "3", "--rate", "20", "--duration-s", "3", "--max-open", "1",
    "--generators", "1", "--database", "sqlite",
]  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The scenario's options."""
    parser.add_argument("--vehicles", type=int, default=50, help="connected vehicles")
    parser.add_argument("--rate", type=float, default=400.0, help="commands offered per second")
    parser.add_argument("--duration-s", type=float, default=30.0)
    parser.add_argument(
        "--max-open",
        type=int,
        default=20,
        help="max_open_commands_per_user: the node's rate times the wait it may add"
        " (about 200/s x 0.1 s here)",
    )
    parser.add_argument("--generators", type=int, default=2, help="load generator processes")
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--timeout-s", type=float, default=10.0, help="per-command wait")
    parser.add_argument(
        "--connections",
        type=int,
        default=256,
        help="HTTP connections of all generators together: more than the hub's"
        " max_concurrent_requests (64), so that its bound, not the clients' pools, decides",
    )


async def run(args: argparse.Namespace, workdir: Path) -> Outcome:
    """Offer the rate to a hub whose bench user may hold `--max-open` commands."""
    args.ramp_to = None
    parameters = {
        "vehicles": args.vehicles,
        "rate_per_s": args.rate,
        "duration_s": args.duration_s,
        "max_open_commands_per_user": args.max_open,
        "generators": args.generators,
        "database": args.database,
        "timeout_s": args.timeout_s,
        "connections": args.connections,
    }
    vin_files = write_vin_files(args, workdir)
    settings = {"SOVD_HUB_MAX_OPEN_COMMANDS_PER_USER": str(args.max_open)}
    async with open_bench_database(args.database, workdir) as url:
        specs = await provision(url, args.vehicles)
        async with (
            open_hub_process(url, settings) as hub,
            open_fleet(specs, hub.grpc_port, workdir, processes=1),
        ):
            await wait_connected(hub, args.vehicles, timeout_s=120)
            run_ = await drive(args, hub.http_url, vin_files, [CpuMeter("hub", [hub.pid])])
        check = await check_database(url, run_)
    figures = _figures(run_, args)
    figures.update(check)
    return Outcome(parameters, figures, {"admitted_latency_ms": thin(run_["latencies_ms"], 5000)})


def _figures(run: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    errors = dict(run["errors"])
    refused = errors.pop("http_503", 0)
    latencies = run["latencies_ms"]
    figures: dict[str, Any] = {
        "offered": run["sent"],
        "admitted_completed": run["completed"],
        "refused_503": refused,
        "other_errors": errors,
        "admitted_rate_per_s": round(run["completed"] / args.duration_s, 1),
        "refused_rate_per_s": round(refused / args.duration_s, 1),
        "hub_cpu_s": round(run["cpu"]["hub"], 2),
        "generator_cpu_s": round(run["generator_cpu_s"], 2),
        "machine_cpu_s": round(run["cpu"]["machine"], 2),
        "wall_s": round(run["wall_s"], 2),
        "schedule_lag_p99_ms": run["lag_p99_ms"],
    }
    answers = run["post_ms"]  # until the POST's answer (202 or 503), of those that got one
    for name, q in (("p50", 50), ("p99", 99)):
        figures[f"post_answer_{name}_ms"] = round(percentile(answers, q), 2) if answers else None
    for name, q in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100)):
        value = percentile(latencies, q)
        figures[f"admitted_latency_{name}_ms"] = round(value, 2) if latencies else None
    return figures
