"""`hold`: how many vehicles one hub process holds, at what memory and idle CPU.

The fleet connects to the hub (`sovd-hub serve`); the hub's CPU is metered
until it counts every vehicle, its RSS read before and after, then its CPU
over an idle window in which the vehicles only send heartbeats at the
interval the hub told them. Then, unless `--skip-floor`, the same fleet (the
same vehicles and tokens, simulator processes and heartbeat interval) does
the same against `bench.baseline_hub`, the cheapest server of this stack
doing the same vehicle-link work, measured the same way: its `floor_*`
figures, and the hub's as a ratio to them (`hub_vs_floor_*`).
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio

from bench.diagnosis import ask_hub, cpu_shares, per_vehicle_owners
from bench.phases import phase
from bench.procstat import CpuMeter, rss_bytes
from bench.scenarios import Outcome
from bench.simulator import VehicleSpec
from bench.stack import (
    HubProcess,
    check_open_files,
    connected_vehicles,
    open_baseline_hub_process,
    open_bench_database,
    open_fleet,
    open_hub_process,
    provision,
)

HELP = "connect N vehicles: hub RSS per vehicle, connect rate, idle CPU, against a grpclib floor"
QUICK = ["--vehicles", "2000", "--idle-s", "5"]
# 100 vehicles: enough that the floor's connect CPU is several of the meter's 10 ms ticks.
TINY = ["--vehicles", "100", "--idle-s", "1", "--fleet-processes", "1", "--database", "sqlite"]
#: After the last vehicle is counted: time for the last handshakes to settle before RSS is read.
SETTLE_S = 1.0


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
        "--profile",
        action="store_true",
        help="also sample where the hub's CPU goes, connecting and idle",
    )
    parser.add_argument(
        "--skip-floor",
        action="store_true",
        help="do not measure the pure-asyncio grpclib floor (bench.baseline_hub) after the hub",
    )


@dataclass
class _Held:
    """One server holding the fleet: what connecting it cost, and what holding it costs."""

    vehicles: int
    connect_s: float
    connect_cpu_s: float
    rss_empty_bytes: int
    rss_full_bytes: int
    idle_cpu_s: dict[str, float]  # per meter label: server, fleet, postgres

    @property
    def cpu_ms_per_connect(self) -> float:
        """Server CPU milliseconds per vehicle connected."""
        return 1000 * self.connect_cpu_s / self.vehicles

    @property
    def rss_per_vehicle_kib(self) -> float:
        """Resident memory the server grew by per vehicle held."""
        return (self.rss_full_bytes - self.rss_empty_bytes) / self.vehicles / 1024

    def idle_percent(self, label: str, window_s: float) -> float:
        """Percent of a core `label` spent in the idle window."""
        return 100 * self.idle_cpu_s[label] / window_s


@dataclass
class _Diagnosis:
    """The hub's own reports (`--tracemalloc`, `--profile`), asked for around the phases."""

    traced: Path | None
    profile: Path | None
    empty: dict[str, Any] | None = None
    full: dict[str, Any] | None = None
    sampled: dict[str, Any] | None = None
    idle_sampled: dict[str, Any] | None = None

    @property
    def settings(self) -> dict[str, str]:
        """The hub settings that turn the reports on."""
        settings = {}
        if self.traced is not None:
            settings["SOVD_HUB_TRACEMALLOC_FILE"] = str(self.traced)
        if self.profile is not None:
            settings["SOVD_HUB_PROFILE_FILE"] = str(self.profile)
        return settings

    async def before_connect(self, hub: HubProcess) -> None:
        """The allocations of the empty hub; the sampler's count so far (not the connects')."""
        if self.traced is not None:
            self.empty = await ask_hub(hub, self.traced, signal.SIGUSR1)
        if self.profile is not None:
            await ask_hub(hub, self.profile, signal.SIGUSR2)

    async def after_connect(self, hub: HubProcess) -> None:
        """Where the connects' CPU time went."""
        if self.profile is not None:
            self.sampled = await ask_hub(hub, self.profile, signal.SIGUSR2)

    async def before_idle(self, hub: HubProcess) -> None:
        """The sampler's count so far (the settling, not the idle window's)."""
        if self.profile is not None:
            await ask_hub(hub, self.profile, signal.SIGUSR2)

    async def after_idle(self, hub: HubProcess) -> None:
        """Where the idle window's CPU time went; the allocations of the hub holding the fleet."""
        if self.profile is not None:
            self.idle_sampled = await ask_hub(hub, self.profile, signal.SIGUSR2)
        if self.traced is not None:
            self.full = await ask_hub(hub, self.traced, signal.SIGUSR1)

    def figures(self, vehicles: int) -> dict[str, Any]:
        """The CPU shares and the KiB per vehicle by owner, where they were asked for."""
        figures: dict[str, Any] = {}
        if self.sampled is not None:
            figures |= cpu_shares(self.sampled)
        if self.idle_sampled is not None:
            figures |= {f"idle_{k}": v for k, v in cpu_shares(self.idle_sampled).items()}
        if self.empty is not None and self.full is not None:
            figures |= per_vehicle_owners(self.empty, self.full, vehicles)
        return figures


async def run(args: argparse.Namespace, workdir: Path) -> Outcome:
    """Connect the fleet to the hub, measure it at rest; then the same against the floor."""
    check_open_files(args.vehicles)
    parameters = {
        "vehicles": args.vehicles,
        "fleet_processes": args.fleet_processes,
        "heartbeat_interval_s": args.heartbeat_s,
        "idle_window_s": args.idle_s,
        "database": args.database,
        "profile": args.profile,
        "tracemalloc": args.tracemalloc,
        "skip_floor": args.skip_floor,
    }
    diagnosis = _Diagnosis(
        workdir / "memory.json" if args.tracemalloc else None,
        workdir / "profile.json" if args.profile else None,
    )
    series: dict[str, list[float]] = {"t_s": [], "connected": [], "rss_mib": []}
    settings = {"SOVD_HUB_HEARTBEAT_INTERVAL_S": str(args.heartbeat_s), **diagnosis.settings}
    async with open_bench_database(args.database, workdir) as url:
        specs = await provision(url, args.vehicles)
        async with open_hub_process(url, settings) as hub:
            held = await _hold(hub, specs, args, workdir, diagnosis=diagnosis, series=series)
    figures = _hub_figures(held, args.idle_s) | diagnosis.figures(args.vehicles)
    if not args.skip_floor:
        async with open_baseline_hub_process(args.heartbeat_s) as floor_hub:
            floor = await _hold(
                floor_hub, specs, args, workdir, phase_name="floor connect", so_far=figures
            )
        figures |= _floor_figures(held, floor, args.idle_s)
    return Outcome(parameters, figures, series)


async def _hold(
    server: HubProcess,
    specs: Sequence[VehicleSpec],
    args: argparse.Namespace,
    workdir: Path,
    *,
    phase_name: str = "connect",
    so_far: dict[str, Any] | None = None,
    diagnosis: _Diagnosis | None = None,
    series: dict[str, list[float]] | None = None,
) -> _Held:
    """Connect the fleet to `server`, metering its CPU and RSS, then hold it for the idle window.

    The connect is phase `phase_name`; should it run out of time, the partial
    result is `so_far` (the figures already measured: the floor's keeps the
    hub's) and how many vehicles were connected.
    """
    rss_empty = rss_bytes(server.pid)
    if diagnosis is not None:
        await diagnosis.before_connect(server)
    connect_cpu = CpuMeter("server", [server.pid])
    connect_cpu.start()
    started = trio.current_time()  # the simulators' start-up counts, as a fleet's would
    async with (
        open_fleet(specs, server.grpc_port, workdir, processes=args.fleet_processes) as fleet,
        httpx.AsyncClient(base_url=server.http_url, timeout=60) as http,
    ):
        await _wait_all_connected(
            server, http, args, started, phase_name=phase_name, so_far=so_far, series=series
        )
        connect_s = trio.current_time() - started
        connect_cpu_s = connect_cpu.stop()
        if diagnosis is not None:
            await diagnosis.after_connect(server)
        await trio.sleep(SETTLE_S)
        rss_full = rss_bytes(server.pid)
        if diagnosis is not None:
            await diagnosis.before_idle(server)
        meters = [
            CpuMeter("server", [server.pid]),
            CpuMeter("fleet", fleet.pids),
            CpuMeter("postgres", by_name="postgres"),
        ]
        for meter in meters:
            meter.start()
        await trio.sleep(args.idle_s)
        idle = {m.label: m.stop() for m in meters}
        if diagnosis is not None:
            await diagnosis.after_idle(server)
    return _Held(args.vehicles, connect_s, connect_cpu_s, rss_empty, rss_full, idle)


async def _wait_all_connected(
    server: HubProcess,
    http: httpx.AsyncClient,
    args: argparse.Namespace,
    started: float,
    *,
    phase_name: str,
    so_far: dict[str, Any] | None,
    series: dict[str, list[float]] | None,
) -> None:
    """Return once `server` counts every vehicle; count and RSS go to `series` every 0.25 s."""
    progress = {**(so_far or {}), "vehicles_wanted": args.vehicles, "vehicles_connected": 0}
    with phase(phase_name, args.connect_timeout_s, progress):
        while True:  # polling: neither server has a push for this
            count = progress["vehicles_connected"] = await connected_vehicles(http)
            if series is not None:
                series["t_s"].append(round(trio.current_time() - started, 3))
                series["connected"].append(count)
                series["rss_mib"].append(round(rss_bytes(server.pid) / 2**20, 1))
            if count >= args.vehicles:
                return
            await trio.sleep(0.25)


def _hub_figures(hub: _Held, idle_s: float) -> dict[str, Any]:
    return {
        "connected": hub.vehicles,
        "time_until_all_registered_s": round(hub.connect_s, 2),
        "connect_rate_per_s": round(hub.vehicles / hub.connect_s, 1),
        "hub_cpu_during_connect_s": round(hub.connect_cpu_s, 2),
        "hub_cpu_ms_per_connect": round(hub.cpu_ms_per_connect, 3),
        "hub_rss_empty_mib": round(hub.rss_empty_bytes / 2**20, 1),
        "hub_rss_connected_mib": round(hub.rss_full_bytes / 2**20, 1),
        "hub_rss_per_vehicle_kib": round(hub.rss_per_vehicle_kib, 1),
        "idle_hub_cpu_percent": round(hub.idle_percent("server", idle_s), 1),
        "idle_fleet_cpu_percent": round(hub.idle_percent("fleet", idle_s), 1),
        "idle_postgres_cpu_percent": round(hub.idle_percent("postgres", idle_s), 1),
    }


def _floor_figures(hub: _Held, floor: _Held, idle_s: float) -> dict[str, Any]:
    """The floor's figures, named as the hub's with `floor_`, and the hub's as ratios to them."""
    return {
        "floor_time_until_all_registered_s": round(floor.connect_s, 2),
        "floor_connect_rate_per_s": round(floor.vehicles / floor.connect_s, 1),
        "floor_cpu_during_connect_s": round(floor.connect_cpu_s, 2),
        "floor_cpu_ms_per_connect": round(floor.cpu_ms_per_connect, 3),
        "floor_rss_empty_mib": round(floor.rss_empty_bytes / 2**20, 1),
        "floor_rss_connected_mib": round(floor.rss_full_bytes / 2**20, 1),
        "floor_rss_per_vehicle_kib": round(floor.rss_per_vehicle_kib, 1),
        "floor_idle_cpu_percent": round(floor.idle_percent("server", idle_s), 1),
        "floor_idle_fleet_cpu_percent": round(floor.idle_percent("fleet", idle_s), 1),
        "hub_vs_floor_cpu_per_connect": _ratio(hub.connect_cpu_s, floor.connect_cpu_s),
        "hub_vs_floor_rss_per_vehicle": _ratio(hub.rss_per_vehicle_kib, floor.rss_per_vehicle_kib),
        "hub_vs_floor_idle_cpu": _ratio(hub.idle_cpu_s["server"], floor.idle_cpu_s["server"]),
    }


def _ratio(hub: float, floor: float) -> float | None:
    """`hub / floor`, or None when the floor measured nothing (a CPU meter ticks in 10 ms)."""
    return round(hub / floor, 2) if floor > 0 else None
