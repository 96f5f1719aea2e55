"""`fanout`: one vehicle's events delivered to K WebSocket subscribers, vs a no-op server.

The hub's only topics today are `command:<id>`, so fan-out is measured the
simplest honest way: K sockets, spread over S `bench.fanout_client`
processes, all follow the same commands. For each of N commands, one after
the other, the scenario submits ReadDTC to the one vehicle over REST, notes
`time.monotonic_ns()` when the 202 arrives (`t0`), announces the command's id
to the subscriber processes on their stdin, and every socket subscribes to
`command:<id>` (from seq 0) and stamps the receipt of the event marked
`final`. CLOCK_MONOTONIC is shared by the processes of one Linux machine.

So `submit_to_final_event_ms` covers: the announcement, K subscriptions
(each reads the command and its stored events from the database), the
vehicle's events (`--event-latency-ms` before each of ReadDTC's three), and
the delivery to K sockets. `final_event_spread_ms` isolates the fan-out
itself: per command, each socket's receipt of the final event minus the
earliest socket's, the same instant on one clock. --profile also says where
the hub's CPU time went (`profile_percent_by_component`, as in `commands`).

Then, unless --skip-noop, new subscriber processes of the same sizes follow
N commands on `bench.noop_server` (Quart-Trio on Hypercorn, nothing behind
it) with the same event latency: its commands' events come on the
vehicle's schedule, from the 202 on, each frame encoded once for every
socket. The `noop_*` figures are the same figures of that run (its
`noop_cpu_per_delivery_us` the no-op process's CPU), and `hub_vs_noop_p99`,
`hub_vs_noop_cpu_per_delivery` the hub's over them: what this stack costs
before the hub adds anything.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio

from bench.diagnosis import ask_hub, cpu_shares
from bench.fanout_client import TOKEN_ENV
from bench.procstat import CpuMeter
from bench.scenarios import Outcome
from bench.stack import (
    BENCH_PASSWORD,
    BENCH_USER,
    bench_vin,
    open_bench_database,
    open_fleet,
    open_hub_process,
    open_noop_process,
    provision,
    stop_process,
    wait_connected,
)
from bench.stats import percentile, thin

HELP = "one vehicle's events to K WebSocket subscribers: delivery latency, CPU, vs a no-op server"
QUICK = ["--subscribers", "200", "--commands", "10"]
TINY = [
    "--subscribers", "10", "--subscriber-processes", "1", "--commands", "3",
    "--database", "sqlite",
]  # fmt: skip
_SERIES_LIMIT = 5000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The scenario's options."""
    parser.add_argument("--subscribers", type=int, default=1000, help="WebSockets (K)")
    parser.add_argument(
        "--subscriber-processes", type=int, default=4, help="processes holding them (S)"
    )
    parser.add_argument("--commands", type=int, default=20, help="commands followed, in turn (N)")
    parser.add_argument(
        "--event-latency-ms", type=float, default=10.0, help="vehicle delay before each event"
    )
    parser.add_argument("--command-timeout-s", type=float, default=30.0)
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--skip-noop", action="store_true", help="do not measure the no-op edge")
    parser.add_argument(
        "--profile", action="store_true", help="also sample where the hub's CPU time goes"
    )


@dataclass
class _Subscriber:
    """One `bench.fanout_client` process and the reader of its stdout lines."""

    process: trio.Process
    buffer: bytes = b""
    lines: list[bytes] = field(default_factory=list)

    async def send(self, message: dict[str, Any]) -> None:
        """Write one JSON line to its stdin."""
        assert self.process.stdin is not None
        await self.process.stdin.send_all(orjson.dumps(message) + b"\n")

    async def receive(self) -> dict[str, Any]:
        """The next JSON line from its stdout; fails if it exits first."""
        assert self.process.stdout is not None
        while not self.lines:
            chunk = await self.process.stdout.receive_some()
            if not chunk:
                raise RuntimeError(
                    f"subscriber process {self.process.pid} exited ({self.process.poll()})"
                )
            *complete, self.buffer = (self.buffer + chunk).split(b"\n")
            self.lines += [line for line in complete if line.strip()]
        message: dict[str, Any] = orjson.loads(self.lines.pop(0))
        return message


@asynccontextmanager
async def _open_subscribers(
    ws_url: str, token: str, args: argparse.Namespace
) -> AsyncIterator[list[_Subscriber]]:
    """Start the subscriber processes and wait until every socket is authenticated."""
    sockets, processes = args.subscribers, args.subscriber_processes
    shares = [sockets // processes + (i < sockets % processes) for i in range(processes)]
    env = {**os.environ, TOKEN_ENV: token}
    async with trio.open_nursery() as nursery:
        started: list[_Subscriber] = []
        try:
            for share in (s for s in shares if s > 0):
                command = [
                    sys.executable, "-m", "bench.fanout_client", "--ws-url", ws_url,
                    "--sockets", str(share), "--timeout-s", str(args.command_timeout_s),
                ]  # fmt: skip
                run = partial(
                    trio.run_process, command, env=env, check=False,
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                )  # fmt: skip
                started.append(_Subscriber(await nursery.start(run)))
            with trio.fail_after(120):
                for subscriber in started:
                    ready = await subscriber.receive()
                    if ready.get("type") != "ready":
                        raise RuntimeError(f"subscriber said {ready} instead of ready")
            yield started
        finally:
            for subscriber in started:
                if subscriber.process.stdin is not None:
                    await subscriber.process.stdin.aclose()  # EOF: close the sockets, exit
            with trio.move_on_after(15):
                for subscriber in started:
                    await subscriber.process.wait()
            for subscriber in started:
                await stop_process(subscriber.process, grace_s=5)
            nursery.cancel_scope.cancel()


async def _login(http: httpx.AsyncClient) -> str:
    response = await http.post(
        "/api/v1/auth/login", json={"username": BENCH_USER, "password": BENCH_PASSWORD}
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


async def _submit(http: httpx.AsyncClient, token: str, vin: str) -> str:
    body = {"vin": vin, "command": "ReadDTC", "params": {"ecuAddress": "0x10"}}
    response = await http.post(
        "/api/v1/commands", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    if response.status_code != 202:
        raise RuntimeError(f"submit answered {response.status_code}: {response.text}")
    command_id: str = response.json()["id"]
    return command_id


@dataclass
class _Deliveries:
    """What the sockets saw of the N commands, and what the measured processes spent meanwhile."""

    latencies: list[float] = field(default_factory=list)
    subscribed: list[float] = field(default_factory=list)
    spreads: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    cpu: dict[str, float] = field(default_factory=dict)
    window_s: float = 0.0


async def run(args: argparse.Namespace, workdir: Path) -> Outcome:
    """Follow N commands of one vehicle from K sockets on the hub, then on the no-op server."""
    parameters = {
        "subscribers": args.subscribers,
        "subscriber_processes": args.subscriber_processes,
        "commands": args.commands,
        "event_latency_ms": args.event_latency_ms,
        "command": "ReadDTC 0x10 (3 events)",
        "database": args.database,
        "profile": args.profile,
    }
    hub, sampled = await _measure_hub(args, workdir)
    figures = _hub_figures(args, hub)
    if sampled is not None:
        figures.update(cpu_shares(sampled))
    series = {"submit_to_final_event_ms": thin(hub.latencies, _SERIES_LIMIT)}
    if not args.skip_noop:
        noop = await _measure_noop(args)
        figures |= _noop_figures(args, noop)
        figures |= _ratios(figures)
        series["noop_submit_to_final_event_ms"] = thin(noop.latencies, _SERIES_LIMIT)
    return Outcome(parameters, figures, series)


async def _measure_hub(
    args: argparse.Namespace, workdir: Path
) -> tuple[_Deliveries, dict[str, Any] | None]:
    """The hub with its database and one simulated vehicle; with --profile, what it sampled."""
    profile = workdir / "profile.json"
    settings = {"SOVD_HUB_PROFILE_FILE": str(profile)} if args.profile else {}
    async with open_bench_database(args.database, workdir) as url:
        specs = await provision(url, 1)
        async with (
            open_hub_process(url, settings) as hub,
            open_fleet(
                specs, hub.grpc_port, workdir, processes=1, event_latency_ms=args.event_latency_ms
            ) as fleet,
            httpx.AsyncClient(base_url=hub.http_url, timeout=60) as http,
        ):
            await wait_connected(hub, 1, timeout_s=60)
            token = await _login(http)
            async with _open_subscribers(_ws_url(hub.http_url), token, args) as subscribers:
                meters = [
                    CpuMeter("hub", [hub.pid]),
                    CpuMeter("subscribers", [s.process.pid for s in subscribers]),
                    CpuMeter("fleet", fleet.pids),
                    CpuMeter("postgres", by_name="postgres"),
                ]
                if args.profile:  # what the sampler charged so far is not the run's
                    await ask_hub(hub, profile, signal.SIGUSR2)
                seen = await _follow_commands(http, token, subscribers, args.commands, meters)
                sampled = await ask_hub(hub, profile, signal.SIGUSR2) if args.profile else None
    return seen, sampled


async def _measure_noop(args: argparse.Namespace) -> _Deliveries:
    """The no-op server, its vehicle's schedule the hub's: the same sockets, the same commands."""
    options = ["--event-latency-ms", str(args.event_latency_ms)]
    async with (
        open_noop_process(options) as noop,
        httpx.AsyncClient(base_url=noop.http_url, timeout=60) as http,
    ):
        token = await _login(http)
        async with _open_subscribers(_ws_url(noop.http_url), token, args) as subscribers:
            meters = [
                CpuMeter("noop", [noop.pid]),
                CpuMeter("subscribers", [s.process.pid for s in subscribers]),
            ]
            return await _follow_commands(http, token, subscribers, args.commands, meters)


def _ws_url(http_url: str) -> str:
    return http_url.replace("http://", "ws://") + "/api/v1/ws"


async def _follow_commands(
    http: httpx.AsyncClient,
    token: str,
    subscribers: list[_Subscriber],
    commands: int,
    meters: list[CpuMeter],
) -> _Deliveries:
    """Submit `commands` ReadDTC in turn, each followed by every socket to its end."""
    seen = _Deliveries()
    for meter in meters:
        meter.start()
    started = trio.current_time()
    for _ in range(commands):
        await _follow_one(http, token, subscribers, seen)
    seen.window_s = trio.current_time() - started
    seen.cpu = {meter.label: meter.stop() for meter in meters}
    return seen


async def _follow_one(
    http: httpx.AsyncClient, token: str, subscribers: list[_Subscriber], seen: _Deliveries
) -> None:
    """One command: its 202 (`t0`), the announcement, every process's report of its sockets."""
    command_id = await _submit(http, token, bench_vin(1))
    t0_ns = time.monotonic_ns()
    for subscriber in subscribers:
        await subscriber.send({"id": command_id, "t0_ns": t0_ns})
    per_command: list[float] = []
    for subscriber in subscribers:
        done = await subscriber.receive()
        per_command += done["final_event_ms"]
        seen.subscribed.extend(done["subscribed_ms"])
        seen.errors.update(done["errors"])
    seen.latencies += per_command
    if per_command:
        first = min(per_command)
        seen.spreads += [value - first for value in per_command]


def _hub_figures(args: argparse.Namespace, seen: _Deliveries) -> dict[str, Any]:
    deliveries = max(len(seen.latencies), 1)
    return {
        "subscribers": args.subscribers,
        "commands": args.commands,
        "deliveries_expected": args.subscribers * args.commands,
        **_delivery_figures("", args, seen),
        "hub_cpu_s": round(seen.cpu["hub"], 2),
        "hub_cpu_per_delivery_us": round(1e6 * seen.cpu["hub"] / deliveries, 1),
        "subscriber_cpu_s": round(seen.cpu["subscribers"], 2),
        "fleet_cpu_s": round(seen.cpu["fleet"], 2),
        "postgres_cpu_s": round(seen.cpu["postgres"], 2),
    }


def _noop_figures(args: argparse.Namespace, seen: _Deliveries) -> dict[str, Any]:
    deliveries = max(len(seen.latencies), 1)
    return {
        **_delivery_figures("noop_", args, seen),
        "noop_cpu_s": round(seen.cpu["noop"], 2),
        "noop_cpu_per_delivery_us": round(1e6 * seen.cpu["noop"] / deliveries, 1),
        "noop_subscriber_cpu_s": round(seen.cpu["subscribers"], 2),
    }


def _delivery_figures(prefix: str, args: argparse.Namespace, seen: _Deliveries) -> dict[str, Any]:
    """Deliveries, errors, percentiles and the window, each name after `prefix`."""
    expected = args.subscribers * args.commands
    figures: dict[str, Any] = {
        f"{prefix}deliveries_received": len(seen.latencies),
        f"{prefix}missing_deliveries": expected - len(seen.latencies),
        f"{prefix}errors_by_code": dict(seen.errors),
    }
    for name, values in (
        ("submit_to_final_event_ms", seen.latencies),
        ("final_event_spread_ms", seen.spreads),
        ("submit_to_subscribed_ms", seen.subscribed),
    ):
        for q, label in ((50, "p50"), (95, "p95"), (99, "p99"), (100, "max")):
            value = round(percentile(values, q), 2) if values else None
            figures[f"{prefix}{name}_{label}"] = value
    figures[f"{prefix}window_s"] = round(seen.window_s, 2)
    return figures


def _ratios(figures: dict[str, Any]) -> dict[str, float | None]:
    def ratio(a: str, b: str) -> float | None:
        x, y = figures.get(a), figures.get(b)
        return round(x / y, 2) if isinstance(x, float) and isinstance(y, float) and y else None

    return {
        "hub_vs_noop_p99": ratio(
            "submit_to_final_event_ms_p99", "noop_submit_to_final_event_ms_p99"
        ),
        "hub_vs_noop_cpu_per_delivery": ratio(
            "hub_cpu_per_delivery_us", "noop_cpu_per_delivery_us"
        ),
    }
