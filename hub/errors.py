"""The hub's exceptions, and what its ports' implementations raise.

Two roots: `HubError`, every error the hub raises on purpose, and
`StorageFailed`, what an implementation of a port of `hub.ports` raises when
its store fails (storage's `StorageError` derives from it):

```
HubError
├── ConfigError             a setting is missing or invalid (names the key)
├── CatalogError            an operator's command does not match the catalog
├── VehicleRefused          the hub refuses a vehicle's link (carries a `LinkVerdict`)
├── WireError               a vehicle's message breaks the protocol (also a ValueError)
├── DispatchError           a command cannot be handed to its vehicle's actor
│   ├── VehicleNotConnected the vehicle has no live link on this node
│   ├── MailboxFull         the vehicle's actor is saturated; retry later
│   ├── Overloaded          this node holds too many unfinished commands; retry later
│   └── RoutingFailed       scale-out: the node holding the vehicle cannot be found or reached
├── JournalWriteFailed      the batch holding a record was not committed (`hub.batching`)
│   └── JournalUnavailable  the database does not answer: nothing of the call was recorded
├── IdempotencyKeyTaken     a new command's idempotency key is already used (`hub.batching`)
├── LookupFailed            the vehicle directory could not be queried
└── GaveUp                  a supervised child crashed past its restart budget

StorageFailed               a port's store refused or failed an operation
└── StorageUnavailable      the store does not answer; the same call may succeed later
```

All are defined here but the journal's three, which live beside the group
commit that raises them (`hub.batching`); all are exported by `hub`.
`LinkVerdict` is here too: it is what a `VehicleRefused` tells the vehicle.
"""

from __future__ import annotations

import enum


class LinkVerdict(enum.StrEnum):
    """What the hub tells a vehicle as it refuses or ends its link (the gateway's words for it
    are gRPC statuses)."""

    #: No token, an unknown token, another vehicle's token, or a token rotated while connected.
    UNAUTHENTICATED = "unauthenticated"
    #: A disabled vehicle, or a client certificate for another VIN.
    PERMISSION_DENIED = "permission_denied"
    #: A message that breaks the protocol (not a Hello first, not protobuf, a bad event...).
    PROTOCOL_ERROR = "protocol_error"
    #: A message declared longer than its limit, refused unread.
    TOO_LARGE = "too_large"
    #: More messages per second than `max_vehicle_messages_per_s`.
    RATE_LIMITED = "rate_limited"
    #: Try again later: the hub stops, cannot read its database, or heard nothing for too long.
    UNAVAILABLE = "unavailable"
    #: No Hello within `hello_timeout_s`.
    TIMED_OUT = "timed_out"
    #: A newer connection of the same vehicle (here or on another node) took over.
    REPLACED = "replaced"
    #: The hub failed to serve the vehicle (its actor kept crashing).
    INTERNAL = "internal"


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


class WireError(HubError, ValueError):
    """A vehicle message breaks the protocol; the text says how."""


class DispatchError(HubError):
    """A command could not be handed to its vehicle's actor."""


class VehicleNotConnected(DispatchError):
    """The vehicle has no live link to this hub."""


class MailboxFull(DispatchError):
    """The vehicle's mailbox is full; `retry_after_s` suggests when to try again."""

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Overloaded(DispatchError):
    """This node holds too many unfinished commands (`hub.load`); retry after `retry_after_s`."""

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


class LookupFailed(HubError):
    """The vehicle directory could not be queried."""


class GaveUp(HubError):
    """A child crashed more often than its restart budget allows; `__cause__` is the last crash."""


class StorageFailed(Exception):
    """Base of what a port's implementation raises when its store fails an operation
    (refused it, or did not answer): storage's errors derive from it."""


class StorageUnavailable(StorageFailed):
    """Raised by a port's implementation when its store does not answer (down, unreachable,
    timed out), as opposed to refusing one request: the same call may succeed later.

    The journal buffers actors' records through such an outage (`hub.batching`).
    """
