"""`fanout`: one vehicle's events delivered to K WebSocket subscribers.

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
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
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
    provision,
    stop_process,
    wait_connected,
)
from bench.stats import percentile, thin

HELP = "one vehicle's events to K WebSocket subscribers: delivery latency, CPU"
QUICK = ["--subscribers", "200", "--commands", "10"]
TINY = [
    "--subscribers", "5", "--subscriber-processes", "1", "--commands", "2",
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
    ws_url: str, token: str, sockets: int, processes: int, timeout_s: float
) -> AsyncIterator[list[_Subscriber]]:
    """Start the subscriber processes and wait until every socket is authenticated."""
    shares = [sockets // processes + (i < sockets % processes) for i in range(processes)]
    env = {**os.environ, TOKEN_ENV: token}
    async with trio.open_nursery() as nursery:
        started: list[_Subscriber] = []
        try:
            for share in (s for s in shares if s > 0):
                command = [
                    sys.executable, "-m", "bench.fanout_client", "--ws-url", ws_url,
                    "--sockets", str(share), "--timeout-s", str(timeout_s),
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


async def run(args: argparse.Namespace, workdir: Path) -> Outcome:
    """Follow N commands of one vehicle from K sockets; measure delivery and CPU."""
    parameters = {
        "subscribers": args.subscribers,
        "subscriber_processes": args.subscriber_processes,
        "commands": args.commands,
        "event_latency_ms": args.event_latency_ms,
        "command": "ReadDTC 0x10 (3 events)",
        "database": args.database,
        "profile": args.profile,
    }
    profile = workdir / "profile.json"
    settings = {"SOVD_HUB_PROFILE_FILE": str(profile)} if args.profile else {}
    sampled = None
    latencies: list[float] = []
    subscribed: list[float] = []
    spreads: list[float] = []
    errors: Counter[str] = Counter()
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
            ws_url = hub.http_url.replace("http://", "ws://") + "/api/v1/ws"
            async with _open_subscribers(
                ws_url, token, args.subscribers, args.subscriber_processes, args.command_timeout_s
            ) as subscribers:
                meters = [
                    CpuMeter("hub", [hub.pid]),
                    CpuMeter("subscribers", [s.process.pid for s in subscribers]),
                    CpuMeter("fleet", fleet.pids),
                    CpuMeter("postgres", by_name="postgres"),
                ]
                if args.profile:  # what the sampler charged so far is not the run's
                    await ask_hub(hub, profile, signal.SIGUSR2)
                for meter in meters:
                    meter.start()
                started = trio.current_time()
                for _ in range(args.commands):
                    command_id = await _submit(http, token, bench_vin(1))
                    t0_ns = time.monotonic_ns()
                    for subscriber in subscribers:
                        await subscriber.send({"id": command_id, "t0_ns": t0_ns})
                    per_command: list[float] = []
                    for subscriber in subscribers:
                        done = await subscriber.receive()
                        per_command += done["final_event_ms"]
                        subscribed.extend(done["subscribed_ms"])
                        errors.update(done["errors"])
                    latencies += per_command
                    if per_command:
                        first = min(per_command)
                        spreads += [value - first for value in per_command]
                window_s = trio.current_time() - started
                cpu = {m.label: m.stop() for m in meters}
                if args.profile:
                    sampled = await ask_hub(hub, profile, signal.SIGUSR2)
    figures = _figures(args, latencies, subscribed, spreads, errors, cpu, window_s)
    if sampled is not None:
        figures.update(cpu_shares(sampled))
    return Outcome(
        parameters, figures, {"submit_to_final_event_ms": thin(latencies, _SERIES_LIMIT)}
    )


def _figures(
    args: argparse.Namespace,
    latencies: Sequence[float],
    subscribed: Sequence[float],
    spreads: Sequence[float],
    errors: Counter[str],
    cpu: dict[str, float],
    window_s: float,
) -> dict[str, Any]:
    expected = args.subscribers * args.commands
    figures: dict[str, Any] = {
        "subscribers": args.subscribers,
        "commands": args.commands,
        "deliveries_expected": expected,
        "deliveries_received": len(latencies),
        "missing_deliveries": expected - len(latencies),
        "errors_by_code": dict(errors),
    }
    for name, values in (
        ("submit_to_final_event_ms", latencies),
        ("final_event_spread_ms", spreads),
        ("submit_to_subscribed_ms", subscribed),
    ):
        for q, label in ((50, "p50"), (95, "p95"), (99, "p99"), (100, "max")):
            figures[f"{name}_{label}"] = round(percentile(values, q), 2) if values else None
    deliveries = max(len(latencies), 1)
    figures |= {
        "window_s": round(window_s, 2),
        "hub_cpu_s": round(cpu["hub"], 2),
        "hub_cpu_per_delivery_us": round(1e6 * cpu["hub"] / deliveries, 1),
        "subscriber_cpu_s": round(cpu["subscribers"], 2),
        "fleet_cpu_s": round(cpu["fleet"], 2),
        "postgres_cpu_s": round(cpu["postgres"], 2),
    }
    return figures
