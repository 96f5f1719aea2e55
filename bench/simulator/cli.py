"""`python -m bench.simulator`: run a fleet file's vehicles until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.simulator.behaviour import Behaviour, VehicleSpec
from bench.simulator.errors import FleetFileError, LinkLost
from bench.simulator.fleet import keep_connected, load_fleet
from bench.simulator.vehicle import SimulatedVehicle

log = logging.getLogger("bench.simulator")  # one logger for the whole simulator


def _hub_addresses(text: str) -> list[tuple[str, int]]:
    addresses = []
    for item in text.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise argparse.ArgumentTypeError(
                f"expected HOST:PORT[,HOST:PORT...] such as 127.0.0.1:50051, got {text!r}"
            )
        addresses.append((host.strip("[]"), int(port)))
    return addresses


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.simulator", description="Run a simulated vehicle fleet against a hub."
    )
    parser.add_argument(
        "--hub",
        type=_hub_addresses,
        required=True,
        help="hub gRPC HOST:PORT; several, comma-separated, to fail over between them",
    )
    parser.add_argument("--fleet-file", type=Path, required=True, help="JSON fleet file")
    parser.add_argument(
        "--event-latency-ms", type=float, default=0.0, help="delay before each event (ms)"
    )
    parser.add_argument("--silent", action="store_true", help="receive commands, never answer")
    parser.add_argument(
        "--drop-after-events", type=int, default=None, help="drop the link after N events"
    )
    parser.add_argument(
        "--max-connecting",
        type=int,
        default=100,
        help="vehicles of this process between connect and Welcome at once (0: no limit)",
    )
    parser.add_argument("--verbose", action="store_true", help="log at INFO instead of WARNING")
    return parser.parse_args(argv)


async def _serve(
    specs: list[VehicleSpec],
    hubs: list[tuple[str, int]],
    behaviour: Behaviour,
    max_connecting: int,
) -> None:
    """Run the fleet until SIGINT/SIGTERM; SIGUSR1 breaks every link at once (an outage).

    The vehicles are built here, not by `run_fleet`, so that the signal can
    reach them; each is kept connected by the same `keep_connected` loop, so
    a broken vehicle reconnects after the usual jittered backoff.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    handshakes = asyncio.Semaphore(max_connecting) if max_connecting > 0 else None
    (host, port), *alternates = hubs
    vehicles = [
        SimulatedVehicle(spec, host, port, behaviour, handshakes=handshakes, alternates=alternates)
        for spec in specs
    ]

    def break_all() -> None:
        log.warning("SIGUSR1: breaking the links of %d vehicles", len(vehicles))
        for vehicle in vehicles:
            vehicle.break_link()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, break_all)
    fleet = asyncio.create_task(_keep_all_connected(vehicles))
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([fleet, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Cancelling resets every stream and closes every connection.
        for task in (fleet, stopper):
            task.cancel()
        await asyncio.gather(fleet, stopper, return_exceptions=True)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
            loop.remove_signal_handler(sig)


async def _keep_all_connected(vehicles: Sequence[SimulatedVehicle]) -> None:
    # run_fleet's body, over vehicles built by the caller.
    async with asyncio.TaskGroup() as group:
        for vehicle in vehicles:
            group.create_task(keep_connected(vehicle), name=f"vehicle {vehicle.spec.vin}")


def _not_injected(record: logging.LogRecord) -> bool:
    args = record.args if isinstance(record.args, tuple) else ()
    return not any(isinstance(arg, LinkLost) and arg.injected for arg in args)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code (2 for a bad fleet file or bad arguments)."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # A SIGUSR1 outage breaks every link on purpose: one line for it, not one per vehicle.
    log.addFilter(_not_injected)
    try:
        specs = load_fleet(args.fleet_file)
    except FleetFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        behaviour = Behaviour(
            event_latency_s=args.event_latency_ms / 1000,
            silent=args.silent,
            drop_after_events=args.drop_after_events,
        )
    except ValueError as exc:
        print(f"error: {exc} (from --event-latency-ms / --drop-after-events)", file=sys.stderr)
        return 2
    log.info("starting %d vehicles against %s", len(specs), args.hub)
    asyncio.run(_serve(specs, args.hub, behaviour, args.max_connecting))
    return 0
