"""A fleet of simulated vehicles: each kept connected (backoff, fail-over) and the fleet file."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Sequence
from pathlib import Path

from grpclib.const import Status

from bench.simulator.behaviour import DEFAULT_BEHAVIOUR, Behaviour, VehicleSpec
from bench.simulator.errors import FleetFileError, LinkRefused, SimulatorError
from bench.simulator.vehicle import SimulatedVehicle

log = logging.getLogger("bench.simulator")  # one logger for the whole simulator


_BACKOFF_FIRST_S = 0.5
_BACKOFF_MAX_S = 10.0


async def run_fleet(
    specs: Sequence[VehicleSpec],
    host: str,
    port: int,
    behaviour: Behaviour = DEFAULT_BEHAVIOUR,
    alternates: Sequence[tuple[str, int]] = (),
) -> None:
    """Run every vehicle concurrently, each on its own connection, until cancelled.

    A vehicle whose link is refused, lost or ended reconnects after a backoff
    of 0.5 s doubling to 10 s (jittered, reset after a welcomed session); one
    refused with UNAUTHENTICATED or PERMISSION_DENIED gives up. One vehicle's
    failure never stops the others. Returns when every vehicle has given up.
    """
    async with asyncio.TaskGroup() as group:
        for spec in specs:
            vehicle = SimulatedVehicle(spec, host, port, behaviour, alternates=alternates)
            group.create_task(keep_connected(vehicle), name=f"vehicle {spec.vin}")


async def keep_connected(vehicle: SimulatedVehicle) -> None:
    """Run `vehicle` session after session, with jittered backoff, until refused for good."""
    vin = vehicle.spec.vin
    delay_s = _BACKOFF_FIRST_S
    failures = 0  # in a row; only the first is a warning, so an outage logs once per vehicle
    while True:
        try:
            await vehicle.run()
            log.info("%s: session ended by the hub; reconnecting", vin)
        except LinkRefused as exc:
            if exc.status in (Status.UNAUTHENTICATED, Status.PERMISSION_DENIED):
                log.error("%s: giving up: %s (check its token in the fleet file)", vin, exc)
                return
            failures += 1
            log.log(logging.WARNING if failures == 1 else logging.INFO, "%s: %s", vin, exc)
        except SimulatorError as exc:
            failures += 1
            log.log(logging.WARNING if failures == 1 else logging.INFO, "%s: %s", vin, exc)
        except Exception:
            log.exception("%s: unexpected error; reconnecting", vin)
        if vehicle.session_id is not None:
            failures = 0
            delay_s = _BACKOFF_FIRST_S
        # Jitter spreads a fleet's reconnects after a hub restart.
        await asyncio.sleep(random.uniform(delay_s / 2, delay_s))
        delay_s = min(delay_s * 2, _BACKOFF_MAX_S)


def load_fleet(path: Path) -> list[VehicleSpec]:
    """Read `{"vehicles": [{"vin": ..., "token": ...}, ...]}`; raises FleetFileError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FleetFileError(f"fleet file {path}: cannot read it: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FleetFileError(
            f"fleet file {path}: not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        ) from exc
    vehicles = data.get("vehicles") if isinstance(data, dict) else None
    if not isinstance(vehicles, list) or not vehicles:
        raise FleetFileError(
            f'fleet file {path}: expected an object with a non-empty "vehicles" list, '
            'e.g. {"vehicles": [{"vin": "...", "token": "..."}]}'
        )
    specs: list[VehicleSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(vehicles):
        where = f"fleet file {path}: vehicles[{index}]"
        if not isinstance(entry, dict):
            raise FleetFileError(f"{where}: expected an object, got {type(entry).__name__}")
        for key in ("vin", "token"):
            value = entry.get(key)
            if not isinstance(value, str) or not value:
                raise FleetFileError(f'{where}: "{key}" must be a non-empty string, got {value!r}')
        if entry["vin"] in seen:
            # Two links for one VIN would keep replacing each other at the hub.
            raise FleetFileError(f"{where}: duplicate vin {entry['vin']!r}")
        seen.add(entry["vin"])
        specs.append(VehicleSpec(vin=entry["vin"], token=entry["token"]))
    return specs
