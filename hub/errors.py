"""The hub's exceptions.

HubError
├── ConfigError             a setting is missing or invalid (names the key)
├── CatalogError            an operator's command does not match the catalog
├── VehicleRefused          the hub refuses a vehicle's link (carries a `LinkVerdict`)
└── DispatchError           a command cannot be handed to its vehicle's actor
    ├── VehicleNotConnected the vehicle has no live link on this node
    ├── MailboxFull         the vehicle's actor is saturated; retry later
    └── RoutingFailed       scale-out: the node holding the vehicle cannot be found or reached
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.link_protocol import LinkVerdict


class HubError(Exception):
    """Base of every error the hub raises on purpose."""


class ConfigError(HubError):
    """A configuration value is missing or invalid."""


class CatalogError(HubError):
    """A command or its parameters do not match the catalog.

    `field` is the dotted path of the offending input (e.g. `params.ecuAddress`)
    and `rule` the rule it broke, so the API can name both.
    """

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule
        self.message = message


class VehicleRefused(HubError):
    """The hub refuses a vehicle; it is told `verdict` and this message.

    The gateway tells it as a gRPC status (`hub.gateway`); `hub.link_protocol`
    lists the verdicts.
    """

    def __init__(self, verdict: LinkVerdict, message: str) -> None:
        super().__init__(message)
        self.verdict = verdict
        self.message = message


class DispatchError(HubError):
    """A command could not be handed to its vehicle's actor."""


class VehicleNotConnected(DispatchError):
    """The vehicle has no live link to this hub."""


class MailboxFull(DispatchError):
    """The vehicle's mailbox is full; `retry_after_s` suggests when to try again."""

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RoutingFailed(DispatchError):
    """Scale-out: Redis failed while the hub found or reached the node holding `vin`.

    `node` is that node when it was found (None: the lookup failed, nothing
    was changed). `recorded`: the command was committed first and is now
    recorded `failed` with the reason. The cause is in `__cause__`.
    """

    def __init__(self, message: str, vin: str, node: str | None, *, recorded: bool) -> None:
        super().__init__(message)
        self.vin = vin
        self.node = node
        self.recorded = recorded
