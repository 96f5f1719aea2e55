"""The simulator's exceptions.

::

    SimulatorError
    ├── LinkRefused        the hub ended the stream with an error status
    ├── LinkLost           the connection broke: network, hub gone, hub silent,
    │                      or break_link() (fault injection: `injected` is True)
    ├── ProtocolViolation  the hub did not answer Hello with Welcome
    └── FleetFileError     the fleet file is missing or invalid (CLI)
"""

from __future__ import annotations

from grpclib.const import Status


class SimulatorError(Exception):
    """Base of the simulator's errors."""


class LinkRefused(SimulatorError):
    """The hub ended the stream with a non-OK gRPC status."""

    def __init__(self, status: Status, message: str | None) -> None:
        super().__init__(f"hub ended the link with {status.name}: {message or '(no message)'}")
        self.status = status
        self.message = message


class LinkLost(SimulatorError):
    """The connection broke; `injected` is True when `break_link()` broke it."""

    def __init__(self, reason: str, *, injected: bool = False) -> None:
        super().__init__(reason)
        self.injected = injected


class ProtocolViolation(SimulatorError):
    """The hub sent something the protocol does not allow at that point."""


class FleetFileError(SimulatorError):
    """The fleet file cannot be read or does not describe a fleet."""
