"""`reconnect`: every vehicle link cut at once; how fast the fleet is back, and no command lost.

N vehicles connect (spread over simulator processes). A few commands are
submitted to different vehicles, with `--event-latency-ms` long enough that
they are still running. Then SIGUSR1 to every simulator process makes each
of its vehicles `break_link()` (an abrupt close of its TCP connection), and
`run_fleet`'s loop reconnects each after its jittered backoff: uniform in
0.25-0.5 s after a welcomed session, doubling per failed attempt. That
backoff is a floor under `time_until_all_registered_again_s`.

The time is measured from the signal, polling `/health/live`
(`connected_vehicles`) every 50 ms: when it first drops, its minimum, and
when all N are registered again. Afterwards every submitted command is read
from the database: each must have ended `succeeded` or `interrupted` (the
link ended while it ran); one still pending/dispatched/running is lost.

Then, unless `--skip-floor`, the same fleet (the same vehicles, simulator
processes and heartbeat interval) connects to `bench.baseline_hub`, the
cheapest server of this stack doing the same vehicle-link work, and has
every link cut the same way: its `floor_*` figures (time until all are back,
CPU per reconnect) and the hub's as ratios to them (`hub_vs_floor_*`). The
floor runs no commands: losing none is the hub's alone to show.
"""

from __future__ import annotations

import argparse
import signal
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio

from bench.phases import phase
from bench.procstat import CpuMeter
from bench.scenarios import Outcome
from bench.simulator import VehicleSpec
from bench.stack import (
    BENCH_PASSWORD,
    BENCH_USER,
    Fleet,
    bench_vin,
    check_open_files,
    connected_vehicles,
    open_baseline_hub_process,
    open_bench_database,
    open_fleet,
    open_hub_process,
    provision,
)
from storage import open_database

HELP = "cut every vehicle link at once: time until all are back, no command lost; vs a floor"
QUICK = ["--vehicles", "2000"]
# 100 vehicles: enough that the floor's reconnect CPU is several of the meter's 10 ms ticks.
TINY = [
    "--vehicles", "100", "--fleet-processes", "1", "--commands", "5", "--database", "sqlite",
]  # fmt: skip
#: What the fleet's reconnect loop waits after a lost session (`bench.simulator`).
BACKOFF_AFTER_SESSION_S = (0.25, 0.5)
_POLL_S = 0.05
_PROBE_TIMEOUT_S = 300.0  # a hub busy with a connect storm answers slowly
_SERIES_LIMIT = 5000


@dataclass
class _Probe:
    """Polls `connected_vehicles`, timing each answer (a busy hub answers slowly)."""

    http: httpx.AsyncClient
    slowest_s: float = 0.0

    async def count(self) -> int:
        """The hub's registered vehicles, now."""
        asked = trio.current_time()
        count = await connected_vehicles(self.http)
        self.slowest_s = max(self.slowest_s, trio.current_time() - asked)
        return count

    async def wait_for(
        self,
        vehicles: int,
        timeout_s: float,
        phase_name: str = "connect",
        so_far: dict[str, Any] | None = None,
    ) -> float:
        """Seconds until `vehicles` are registered.

        The wait is phase `phase_name`; should it run out of time, the partial
        result is `so_far` (the figures already measured) and how many were registered.
        """
        started = trio.current_time()
        progress = {**(so_far or {}), "vehicles_wanted": vehicles, "vehicles_connected": 0}
        with phase(phase_name, timeout_s, progress):
            while True:  # polling: the hub has no push for this
                progress["vehicles_connected"] = await self.count()
                if progress["vehicles_connected"] >= vehicles:
                    return trio.current_time() - started
                await trio.sleep(_POLL_S)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The scenario's options."""
    parser.add_argument("--vehicles", type=int, default=10000, help="vehicles connected (N)")
    parser.add_argument("--fleet-processes", type=int, default=4, help="simulator processes")
    parser.add_argument(
        "--commands", type=int, default=20, help="commands running when the links are cut"
    )
    parser.add_argument(
        "--event-latency-ms",
        type=float,
        default=3000.0,
        help="vehicle delay before each event (keeps the commands running across the cut)",
    )
    parser.add_argument("--heartbeat-s", type=float, default=10.0, help="hub heartbeat interval")
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--connect-timeout-s", type=float, default=300.0)
    parser.add_argument("--reconnect-timeout-s", type=float, default=120.0)
    parser.add_argument(
        "--skip-floor",
        action="store_true",
        help="do not measure the pure-asyncio grpclib floor (bench.baseline_hub) after the hub",
    )


@dataclass(frozen=True)
class _Storm:
    """What cutting every link did: when the count first dropped, how low, when all were back."""

    vehicles: int
    first_drop_s: float | None
    min_seen: int
    back_s: float
    all_back: bool
    connected_at_end: int | None
    cpu_s: dict[str, float]  # per meter label, from the cut until all were back: server, ...

    @property
    def cpu_ms_per_reconnect(self) -> float:
        """Server CPU milliseconds per vehicle back."""
        return 1000 * self.cpu_s["server"] / self.vehicles

    def figures(self, prefix: str) -> dict[str, Any]:
        """The storm's figures, each name after `prefix`."""
        back = self.all_back
        return {
            f"{prefix}first_drop_seen_after_s": (
                round(self.first_drop_s, 3) if self.first_drop_s is not None else None
            ),
            f"{prefix}min_connected_seen": self.min_seen,
            f"{prefix}all_registered_again": back,
            f"{prefix}connected_at_end": self.connected_at_end,
            f"{prefix}time_until_all_registered_again_s": round(self.back_s, 2) if back else None,
            f"{prefix}reconnect_rate_per_s": round(self.vehicles / self.back_s, 1)
            if back
            else None,
        }


async def _submit_commands(http: httpx.AsyncClient, vehicles: int, count: int) -> list[uuid.UUID]:
    """ReadDTC to `count` different vehicles (as many as there are) as the bench engineer."""
    login = await http.post(
        "/api/v1/auth/login", json={"username": BENCH_USER, "password": BENCH_PASSWORD}
    )
    login.raise_for_status()
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    ids = []
    for index in range(count):
        vin = bench_vin(1 + index * max(vehicles // max(count, 1), 1) % vehicles)
        body = {"vin": vin, "command": "ReadDTC", "params": {"ecuAddress": "0x10"}}
        response = await http.post("/api/v1/commands", json=body, headers=headers)
        if response.status_code != 202:
            raise RuntimeError(f"submit to {vin} answered {response.status_code}: {response.text}")
        ids.append(uuid.UUID(response.json()["id"]))
    return ids


async def _final_statuses(url: str, ids: list[uuid.UUID], settle_s: float) -> Counter[str]:
    """Each command's status from the database, once none has moved for a moment.

    A command the hub is still finishing (an event in flight when the link
    broke) may take a few milliseconds to reach its final status; wait up to
    `settle_s` for every one to be final before counting.
    """
    deadline = trio.current_time() + settle_s
    async with open_database(url, pool_size=1) as db:
        while True:
            rows = [await db.commands.get_command(command_id) for command_id in ids]
            final = all(row is not None and row.status.is_final for row in rows)
            if final or trio.current_time() > deadline:
                break
            await trio.sleep(0.2)
    return Counter(row.status.value if row is not None else "missing" for row in rows)


async def run(args: argparse.Namespace, workdir: Path) -> Outcome:
    """Cut every link of the fleet on the hub, with commands running; then the same on the floor."""
    check_open_files(args.vehicles)
    parameters = {
        "vehicles": args.vehicles,
        "fleet_processes": args.fleet_processes,
        "commands": args.commands,
        "event_latency_ms": args.event_latency_ms,
        "heartbeat_interval_s": args.heartbeat_s,
        "database": args.database,
        "fleet_backoff_after_session_s": list(BACKOFF_AFTER_SESSION_S),
        "skip_floor": args.skip_floor,
    }
    series: dict[str, list[Any]] = {"t_s": [], "connected": []}
    async with open_bench_database(args.database, workdir) as url:
        specs = await provision(url, args.vehicles)
        hub_storm, figures = await _hub_storm(url, specs, args, workdir, series)
    if not args.skip_floor:
        floor_connect_s, floor = await _floor_storm(specs, args, workdir, so_far=figures)
        figures |= _floor_figures(hub_storm, floor, floor_connect_s)
    if len(series["t_s"]) > _SERIES_LIMIT:
        step = len(series["t_s"]) / _SERIES_LIMIT
        series = {k: [v[int(i * step)] for i in range(_SERIES_LIMIT)] for k, v in series.items()}
    return Outcome(parameters, figures, series)


async def _hub_storm(
    url: str,
    specs: Sequence[VehicleSpec],
    args: argparse.Namespace,
    workdir: Path,
    series: dict[str, list[Any]],
) -> tuple[_Storm, dict[str, Any]]:
    """Connect the fleet to the hub, start commands, cut every link; the storm and the figures."""
    settings = {"SOVD_HUB_HEARTBEAT_INTERVAL_S": str(args.heartbeat_s)}
    async with (
        open_hub_process(url, settings) as hub,
        open_fleet(
            specs,
            hub.grpc_port,
            workdir,
            processes=args.fleet_processes,
            event_latency_ms=args.event_latency_ms,
        ) as fleet,
        httpx.AsyncClient(base_url=hub.http_url, timeout=_PROBE_TIMEOUT_S) as http,
    ):
        probe = _Probe(http)
        connect_s = await probe.wait_for(args.vehicles, args.connect_timeout_s)
        slowest_probe_connect_s, probe.slowest_s = probe.slowest_s, 0.0
        await trio.sleep(1)  # let the last handshakes' database writes settle
        ids = await _submit_commands(http, args.vehicles, args.commands)
        storm = await _cut_all_links(probe, fleet, hub.pid, args, series)
        statuses = await _final_statuses(url, ids, settle_s=10)
    lost = sum(n for status, n in statuses.items() if status not in ("succeeded", "interrupted"))
    figures = {
        "vehicles": args.vehicles,
        "initial_connect_s": round(connect_s, 2),
        "slowest_count_probe_during_connect_s": round(slowest_probe_connect_s, 2),
        "slowest_count_probe_during_reconnect_s": round(probe.slowest_s, 2),
        **storm.figures(""),
        "commands_submitted": len(ids),
        "commands_by_final_status": dict(statuses),
        "commands_lost": lost,
        "hub_cpu_during_reconnect_s": round(storm.cpu_s["server"], 2),
        "hub_cpu_ms_per_reconnect": round(storm.cpu_ms_per_reconnect, 3),
        "fleet_cpu_during_reconnect_s": round(storm.cpu_s["fleet"], 2),
        "postgres_cpu_during_reconnect_s": round(storm.cpu_s["postgres"], 2),
    }
    return storm, figures


async def _floor_storm(
    specs: Sequence[VehicleSpec],
    args: argparse.Namespace,
    workdir: Path,
    *,
    so_far: dict[str, Any],
) -> tuple[float, _Storm]:
    """Connect the fleet to the baseline hub and cut every link; its connect time and storm.

    Should the connect run out of time, the partial result keeps `so_far` (the hub's figures).
    """
    async with (
        open_baseline_hub_process(args.heartbeat_s) as floor,
        open_fleet(
            specs,
            floor.grpc_port,
            workdir,
            processes=args.fleet_processes,
            event_latency_ms=args.event_latency_ms,
        ) as fleet,
        httpx.AsyncClient(base_url=floor.http_url, timeout=_PROBE_TIMEOUT_S) as http,
    ):
        probe = _Probe(http)
        timeout_s = args.connect_timeout_s
        connect_s = await probe.wait_for(args.vehicles, timeout_s, "floor connect", so_far)
        await trio.sleep(1)  # as on the hub: the same fleet state when the links are cut
        return connect_s, await _cut_all_links(probe, fleet, floor.pid, args, None)


async def _cut_all_links(
    probe: _Probe,
    fleet: Fleet,
    server_pid: int,
    args: argparse.Namespace,
    series: dict[str, list[Any]] | None,
) -> _Storm:
    """SIGUSR1 to the fleet; poll the count until all are back (or `--reconnect-timeout-s`).

    The CPU of the server, the fleet and PostgreSQL is metered from the cut
    until all are back; the count goes to `series` at every poll.
    """
    meters = [
        CpuMeter("server", [server_pid]),
        CpuMeter("fleet", fleet.pids),
        CpuMeter("postgres", by_name="postgres"),
    ]
    for meter in meters:
        meter.start()
    cut_at = trio.current_time()
    fleet.signal_all(signal.SIGUSR1)
    first_drop_s: float | None = None
    min_seen = args.vehicles
    count: int | None = None
    all_back = False
    with trio.move_on_after(args.reconnect_timeout_s):  # report how far it got
        while True:
            count = await probe.count()
            elapsed = trio.current_time() - cut_at
            if series is not None:
                series["t_s"].append(round(elapsed, 3))
                series["connected"].append(count)
            min_seen = min(min_seen, count)
            if count < args.vehicles and first_drop_s is None:
                first_drop_s = elapsed
            if first_drop_s is not None and count >= args.vehicles:
                all_back = True
                break
            await trio.sleep(_POLL_S)
    back_s = trio.current_time() - cut_at
    cpu = {m.label: m.stop() for m in meters}
    return _Storm(args.vehicles, first_drop_s, min_seen, back_s, all_back, count, cpu)


def _floor_figures(hub: _Storm, floor: _Storm, floor_connect_s: float) -> dict[str, Any]:
    """The floor's figures, named as the hub's with `floor_`, and the hub's as ratios to them."""
    both_back = hub.all_back and floor.all_back
    return {
        "floor_initial_connect_s": round(floor_connect_s, 2),
        **floor.figures("floor_"),
        "floor_cpu_during_reconnect_s": round(floor.cpu_s["server"], 2),
        "floor_cpu_ms_per_reconnect": round(floor.cpu_ms_per_reconnect, 3),
        "floor_fleet_cpu_during_reconnect_s": round(floor.cpu_s["fleet"], 2),
        "hub_vs_floor_cpu_per_reconnect": (
            round(hub.cpu_s["server"] / floor.cpu_s["server"], 2)
            if floor.cpu_s["server"] > 0
            else None  # a CPU meter ticks in 10 ms
        ),
        "hub_vs_floor_reconnect_time": (round(hub.back_s / floor.back_s, 2) if both_back else None),
    }
