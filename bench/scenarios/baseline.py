"""`baseline`: the hub's cost per vehicle message, as a ratio to a pure-asyncio grpclib hub.

One driver (`bench.baseline_driver`) pumps heartbeats through V vehicle
streams, W outstanding per stream, first against `bench.baseline_hub` (the
cheapest server doing the same work), then against the real hub (`sovd-hub
serve`, its liveness timers pushed out of the way). Each server's CPU is
metered over the same measuring window as the driver's count. A round trip
is one heartbeat in and one out: two messages.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from bench.procstat import CpuMeter
from bench.scenarios import Outcome
from bench.stack import free_port, open_bench_database, open_hub_process, provision, stop_process

HELP = "heartbeats through V streams: hub CPU per message vs a pure-asyncio grpclib hub"
QUICK = ["--streams", "50", "--window", "4", "--duration-s", "5"]
TINY = ["--streams", "4", "--window", "2", "--duration-s", "1", "--database", "sqlite"]

#: The hub's heartbeat interval during the run: long, so that no liveness timer fires.
HUB_HEARTBEAT_INTERVAL_S = 3600
#: Pumping before the measuring window opens (connections warm, caches filled).
WARMUP_S = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The scenario's options."""
    parser.add_argument("--streams", type=int, default=50, help="vehicle streams (V)")
    parser.add_argument("--window", type=int, default=4, help="heartbeats outstanding per stream")
    parser.add_argument("--duration-s", type=float, default=10.0, help="measuring window per hub")
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")


@dataclass(frozen=True)
class Measurement:
    """One server under the driver: round trips in the window and the CPU each side spent."""

    round_trips: int
    window_s: float
    server_cpu_s: float
    driver_cpu_s: float

    @property
    def rate(self) -> float:
        """Round trips per second."""
        return self.round_trips / self.window_s

    @property
    def cpu_us_per_round_trip(self) -> float:
        """Server CPU microseconds per round trip (one message in, one out)."""
        return 1e6 * self.server_cpu_s / max(self.round_trips, 1)


async def run(args: argparse.Namespace, workdir: Path) -> Outcome:
    """Drive the baseline hub, then the real hub, with the same fleet and load."""
    parameters = {
        "streams": args.streams,
        "window": args.window,
        "duration_s": args.duration_s,
        "database": args.database,
    }
    async with open_bench_database(args.database, workdir) as url:
        specs = await provision(url, args.streams)
        fleet_file = workdir / "fleet.json"
        fleet_file.write_text(
            json.dumps({"vehicles": [{"vin": s.vin, "token": s.token} for s in specs]})
        )
        port = free_port()
        baseline_hub = [sys.executable, "-m", "bench.baseline_hub", "--port", str(port)]
        async with trio.open_nursery() as nursery:
            process: trio.Process = await nursery.start(_run_piped, baseline_hub)
            try:
                assert process.stdout is not None
                with trio.fail_after(30):
                    await _Lines(process.stdout).expect("ready")
                baseline = await _measure(args, fleet_file, port, process.pid)
            finally:
                await stop_process(process, grace_s=10)
        settings = {
            "SOVD_HUB_HEARTBEAT_INTERVAL_S": str(HUB_HEARTBEAT_INTERVAL_S),
            # The driver sends as fast as the hub echoes: lift the per-vehicle flood limit.
            "SOVD_HUB_MAX_VEHICLE_MESSAGES_PER_S": "1000000",
        }
        async with open_hub_process(url, settings) as hub:
            real = await _measure(args, fleet_file, hub.grpc_port, hub.pid)
    return Outcome(parameters, _figures(baseline, real), _series(baseline, real))


def _figures(baseline: Measurement, hub: Measurement) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "message": "a round trip is 2 messages: one vehicle heartbeat in, one hub heartbeat out",
    }
    for name, m in (("baseline", baseline), ("hub", hub)):
        figures |= {
            f"{name}_round_trips_per_s": round(m.rate, 1),
            f"{name}_cpu_us_per_round_trip": round(m.cpu_us_per_round_trip, 1),
            f"{name}_cpu_us_per_message": round(m.cpu_us_per_round_trip / 2, 1),
            f"{name}_server_cpu_percent": round(100 * m.server_cpu_s / m.window_s, 1),
            f"{name}_driver_cpu_percent": round(100 * m.driver_cpu_s / m.window_s, 1),
        }
    figures["hub_vs_baseline_cpu_per_message"] = round(
        hub.cpu_us_per_round_trip / baseline.cpu_us_per_round_trip, 2
    )
    figures["hub_vs_baseline_throughput"] = round(hub.rate / baseline.rate, 2)
    return figures


def _series(baseline: Measurement, hub: Measurement) -> dict[str, list[Any]]:
    return {
        "server": ["baseline", "hub"],
        "cpu_us_per_message": [round(m.cpu_us_per_round_trip / 2, 1) for m in (baseline, hub)],
        "round_trips_per_s": [round(m.rate, 1) for m in (baseline, hub)],
    }


async def _measure(
    args: argparse.Namespace, fleet_file: Path, port: int, server_pid: int
) -> Measurement:
    """Run the driver against the server on `port`; meter both over its measuring window."""
    command = [
        sys.executable, "-m", "bench.baseline_driver", "--hub", f"127.0.0.1:{port}",
        "--fleet-file", str(fleet_file), "--window", str(args.window),
        "--duration-s", str(args.duration_s), "--warmup-s", str(WARMUP_S),
    ]  # fmt: skip
    with trio.fail_after(args.duration_s + WARMUP_S + 120):
        async with trio.open_nursery() as nursery:
            driver: trio.Process = await nursery.start(_run_piped, command)
            assert driver.stdout is not None
            lines = _Lines(driver.stdout)
            server = CpuMeter("server", [server_pid])
            client = CpuMeter("driver", [driver.pid])
            await lines.expect("ready")
            await lines.expect("start")
            server.start()
            client.start()
            await lines.expect("stop")
            server_cpu_s, driver_cpu_s = server.stop(), client.stop()
            result = json.loads(await lines.next())
            await driver.wait()
    if driver.returncode != 0:
        raise RuntimeError(f"the driver exited with {driver.returncode}")
    return Measurement(
        int(result["round_trips"]), float(result["window_s"]), server_cpu_s, driver_cpu_s
    )


async def _run_piped(
    command: list[str], *, task_status: trio.TaskStatus[trio.Process] = trio.TASK_STATUS_IGNORED
) -> None:
    await trio.run_process(command, stdout=subprocess.PIPE, check=False, task_status=task_status)


class _Lines:
    """Lines of a process's stdout, one at a time."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = b""

    async def next(self) -> str:
        """The next line, stripped; RuntimeError when the output ends first."""
        while b"\n" not in self._buffer:
            chunk = await self._stream.receive_some()
            if not chunk:
                raise RuntimeError(f"the process ended its output (last: {self._buffer!r})")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode(errors="replace").strip()

    async def expect(self, word: str) -> None:
        """Skip lines until one starts with `word`."""
        while not (await self.next()).startswith(word):
            pass
