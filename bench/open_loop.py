"""Open-loop load: generator processes at a rate against one API, and the database checked.

Shared by the `commands` and `overload` scenarios: `write_vin_files` splits
the VINs among the generators, `drive` runs them (`bench.loadgen`) with CPU
meters started at their common start, `check_database` looks up every command
they saw accepted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import trio

from bench.procstat import CpuMeter, MachineMeter
from bench.stack import BENCH_PASSWORD, BENCH_USER, bench_vin
from hub import CommandStatus
from storage import open_database

#: Generators get this long to start, log in and authenticate before the common start.
START_DELAY_S = 3.0


def write_vin_files(args: argparse.Namespace, workdir: Path) -> list[Path]:
    vins = [bench_vin(n) for n in range(1, args.vehicles + 1)]
    generators = max(1, min(args.generators, args.vehicles))
    files = []
    for index in range(generators):
        path = workdir / f"vins-{index}.json"
        path.write_bytes(orjson.dumps(vins[index::generators]))
        files.append(path)
    return files


async def drive(
    args: argparse.Namespace, http_url: str, vin_files: list[Path], meters: list[CpuMeter]
) -> dict[str, Any]:
    """Run the generators in parallel against `http_url`; their merged results and CPU
    (`meters`, started together with the load)."""
    share = len(vin_files)
    command = [
        sys.executable, "-m", "bench.loadgen", "--url", http_url,
        "--username", BENCH_USER, "--password", BENCH_PASSWORD,
        "--rate", str(args.rate / share), "--duration-s", str(args.duration_s),
        "--timeout-s", str(args.timeout_s),
    ]  # fmt: skip
    if args.ramp_to is not None:
        command += ["--ramp-to", str(args.ramp_to / share)]
    if getattr(args, "connections", None):
        command += ["--connections", str(max(1, args.connections // share))]
    outputs: list[dict[str, Any]] = []

    async def one(vin_file: Path) -> None:
        done = await trio.run_process(
            [*command, "--vins-file", str(vin_file)],
            capture_stdout=True, capture_stderr=True, check=False, env=dict(os.environ),
        )  # fmt: skip
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace")[-2000:]
            raise RuntimeError(f"a load generator exited with {done.returncode}:\n{tail}")
        outputs.append(orjson.loads(done.stdout.splitlines()[-1]))

    meters = [*meters, MachineMeter("machine")]
    start_at = time.time() + START_DELAY_S
    command += ["--start-at", repr(start_at)]
    async with trio.open_nursery() as nursery:
        for vin_file in vin_files:
            nursery.start_soon(one, vin_file)
        await trio.sleep(max(0.0, start_at - time.time()))
        for meter in meters:
            meter.start()
        started = trio.current_time()
    wall_s = trio.current_time() - started
    cpu = {meter.label: meter.stop() for meter in meters}
    return _merge(outputs, cpu, wall_s)


def _merge(outputs: list[dict[str, Any]], cpu: dict[str, float], wall_s: float) -> dict[str, Any]:
    errors: dict[str, int] = {}
    statuses: dict[str, int] = {}
    for output in outputs:
        for kind, count in output["errors"].items():
            errors[kind] = errors.get(kind, 0) + count
        for status, count in output["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    return {
        "sent": sum(o["sent"] for o in outputs),
        "completed": sum(o["completed"] for o in outputs),
        "errors": errors,
        "statuses": statuses,
        "latencies_ms": [v for o in outputs for v in o["latencies_ms"]],
        "offsets_s": [v for o in outputs for v in o["offsets_s"]],
        "post_ms": [v for o in outputs for v in o["post_ms"]],
        "ids": [v for o in outputs for v in o["ids"]],
        "unfinished_ids": [v for o in outputs for v in o["unfinished_ids"]],
        "lag_max_ms": max((o["lag_max_ms"] for o in outputs), default=0.0),
        "lag_p99_ms": max((o["lag_p99_ms"] for o in outputs), default=0.0),
        "start_late_ms": max((o["start_late_ms"] for o in outputs), default=0.0),
        "generator_cpu_s": sum(o["cpu_load_s"] for o in outputs),
        "generator_cpu_total_s": sum(o["cpu_s"] for o in outputs),
        "cpu": cpu,
        "wall_s": wall_s,
    }


async def check_database(url: str, run: dict[str, Any]) -> dict[str, Any]:
    """Every completed command stored as `succeeded`; every accepted one stored at all."""
    missing: list[str] = []
    not_succeeded: dict[str, int] = {}
    unfinished: dict[str, int] = {}  # what became of the commands we saw no status frame for
    completed = set(run["ids"])
    async with open_database(url) as db:
        for text in [*run["ids"], *run["unfinished_ids"]]:
            row = await db.commands.get_command(uuid.UUID(text))
            if row is None:
                missing.append(text)
            elif text not in completed:
                unfinished[row.status.value] = unfinished.get(row.status.value, 0) + 1
            elif row.status is not CommandStatus.SUCCEEDED:
                not_succeeded[row.status.value] = not_succeeded.get(row.status.value, 0) + 1
    return {
        "database_checked": len(run["ids"]) + len(run["unfinished_ids"]),
        "missing_in_database": len(missing),
        "not_succeeded": sum(not_succeeded.values()),
        "not_succeeded_by_status": not_succeeded,
        "unfinished_in_database_by_status": unfinished,
        "unfinished_final_in_database": sum(
            n for status, n in unfinished.items() if CommandStatus(status).is_final
        ),
    }
