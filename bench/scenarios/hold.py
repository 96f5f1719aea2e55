"""`hold`: how many vehicles one hub process holds, at what memory and idle CPU."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

import httpx
import trio

from bench.diagnosis import ask_hub, cpu_shares, per_vehicle_owners
from bench.phases import phase
from bench.procstat import CpuMeter, rss_bytes
from bench.scenarios import Outcome
from bench.stack import (
    check_open_files,
    connected_vehicles,
    open_bench_database,
    open_fleet,
    open_hub_process,
    provision,
)

HELP = "connect N vehicles: hub RSS per vehicle, connect rate, idle CPU"
QUICK = ["--vehicles", "2000", "--idle-s", "5"]
TINY = ["--vehicles", "20", "--idle-s", "1", "--fleet-processes", "1", "--database", "sqlite"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The scenario's options."""
    parser.add_argument("--vehicles", type=int, default=20000, help="vehicles to connect")
    parser.add_argument("--fleet-processes", type=int, default=4, help="simulator processes")
    parser.add_argument("--heartbeat-s", type=float, default=10.0, help="hub heartbeat interval")
    parser.add_argument("--idle-s", type=float, default=10.0, help="idle CPU measuring window")
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--connect-timeout-s", type=float, default=300.0)
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="also trace the hub's allocations: what each vehicle holds, by owner (slower)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="also sample where the connects' CPU time goes"
    )


async def run(args: argparse.Namespace, workdir: Path) -> Outcome:
    """Connect the fleet, watch RSS grow, then measure the hub at rest."""
    check_open_files(args.vehicles)
    parameters = {
        "vehicles": args.vehicles,
        "fleet_processes": args.fleet_processes,
        "heartbeat_interval_s": args.heartbeat_s,
        "idle_window_s": args.idle_s,
        "database": args.database,
        "profile": args.profile,
    }
    settings = {"SOVD_HUB_HEARTBEAT_INTERVAL_S": str(args.heartbeat_s)}
    traced = workdir / "memory.json"
    if args.tracemalloc:
        settings["SOVD_HUB_TRACEMALLOC_FILE"] = str(traced)
    profile = workdir / "profile.json"
    if args.profile:
        settings["SOVD_HUB_PROFILE_FILE"] = str(profile)
    async with open_bench_database(args.database, workdir) as url:
        specs = await provision(url, args.vehicles)
        async with open_hub_process(url, settings) as hub:
            rss_empty = rss_bytes(hub.pid)
            empty = await ask_hub(hub, traced, signal.SIGUSR1) if args.tracemalloc else None
            series: dict[str, list[float]] = {"t_s": [], "connected": [], "rss_mib": []}
            if args.profile:  # what the sampler charged so far is not the connects'
                await ask_hub(hub, profile, signal.SIGUSR2)
            hub_cpu = CpuMeter("hub", [hub.pid])
            hub_cpu.start()
            started = trio.current_time()
            async with (
                open_fleet(specs, hub.grpc_port, workdir, processes=args.fleet_processes) as fleet,
                httpx.AsyncClient(base_url=hub.http_url, timeout=60) as http,
            ):
                progress = {"vehicles_wanted": args.vehicles, "vehicles_connected": 0}
                with phase("connect", args.connect_timeout_s, progress):
                    while True:
                        count = progress["vehicles_connected"] = await connected_vehicles(http)
                        series["t_s"].append(round(trio.current_time() - started, 3))
                        series["connected"].append(count)
                        series["rss_mib"].append(round(rss_bytes(hub.pid) / 2**20, 1))
                        if count >= args.vehicles:
                            break
                        await trio.sleep(0.25)
                all_in_s = trio.current_time() - started
                connect_cpu_s = hub_cpu.stop()
                sampled = await ask_hub(hub, profile, signal.SIGUSR2) if args.profile else None
                await trio.sleep(1)  # let the last handshakes settle
                rss_full = rss_bytes(hub.pid)
                meters = [
                    CpuMeter("hub", [hub.pid]),
                    CpuMeter("fleet", fleet.pids),
                    CpuMeter("postgres", by_name="postgres"),
                ]
                for meter in meters:
                    meter.start()
                await trio.sleep(args.idle_s)
                idle = {m.label: m.stop() for m in meters}
                full = await ask_hub(hub, traced, signal.SIGUSR1) if args.tracemalloc else None
    per_vehicle = (rss_full - rss_empty) / args.vehicles
    figures = {
        "connected": args.vehicles,
        "time_until_all_registered_s": round(all_in_s, 2),
        "connect_rate_per_s": round(args.vehicles / all_in_s, 1),
        "hub_cpu_during_connect_s": round(connect_cpu_s, 2),
        "hub_rss_empty_mib": round(rss_empty / 2**20, 1),
        "hub_rss_connected_mib": round(rss_full / 2**20, 1),
        "hub_rss_per_vehicle_kib": round(per_vehicle / 1024, 1),
        "idle_hub_cpu_percent": round(100 * idle["hub"] / args.idle_s, 1),
        "idle_fleet_cpu_percent": round(100 * idle["fleet"] / args.idle_s, 1),
        "idle_postgres_cpu_percent": round(100 * idle["postgres"] / args.idle_s, 1),
    }
    if sampled is not None:
        figures.update(cpu_shares(sampled))
    if empty is not None and full is not None:
        figures.update(per_vehicle_owners(empty, full, args.vehicles))
    return Outcome(parameters, figures, series)
