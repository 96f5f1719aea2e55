"""A simulated vehicle fleet speaking the vehicle link protocol to a hub.

Plain asyncio (grpclib is an asyncio library): run it on its own with
`python -m bench.simulator`, or from trio hosted on asyncio through
`hub.run_asyncio`. Each `SimulatedVehicle` holds one grpclib `Channel` (one TCP
connection) and one `VehicleLink.Connect` stream; its answers come from the
sans-IO `bench.vehicle_model.VehicleModel`. This package's surface is every
name below; its modules::

    errors     the exception tree
    behaviour  VehicleSpec (who), Behaviour (how), the faults to inject
    vehicle    SimulatedVehicle: one link, Hello to the end of the session
    fleet      run_fleet / keep_connected (backoff, fail-over), load_fleet
    cli        `python -m bench.simulator` (signals: SIGUSR1 breaks every link)

Exceptions::

    SimulatorError
    ├── LinkRefused        the hub ended the stream with an error status
    ├── LinkLost           the connection broke: network, hub gone, hub silent,
    │                      or break_link() (fault injection: `injected` is True)
    ├── ProtocolViolation  the hub did not answer Hello with Welcome
    └── FleetFileError     the fleet file is missing or invalid (CLI)
"""

from __future__ import annotations

from bench.simulator.behaviour import (
    CORRUPT_BYTES,
    DEFAULT_BEHAVIOUR,
    FAULTS,
    Behaviour,
    VehicleSpec,
)
from bench.simulator.cli import _parse_args, main
from bench.simulator.errors import (
    FleetFileError,
    LinkLost,
    LinkRefused,
    ProtocolViolation,
    SimulatorError,
)
from bench.simulator.fleet import keep_connected, load_fleet, run_fleet
from bench.simulator.vehicle import CAPABILITIES, DEFAULT_AGENT_VERSION, SimulatedVehicle

__all__ = [
    "CAPABILITIES",
    "CORRUPT_BYTES",
    "DEFAULT_AGENT_VERSION",
    "DEFAULT_BEHAVIOUR",
    "FAULTS",
    "Behaviour",
    "FleetFileError",
    "LinkLost",
    "LinkRefused",
    "ProtocolViolation",
    "SimulatedVehicle",
    "SimulatorError",
    "VehicleSpec",
    "_parse_args",
    "keep_connected",
    "load_fleet",
    "main",
    "run_fleet",
]
