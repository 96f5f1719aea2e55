"""The vehicle-link protocol, sans-IO: what a vehicle must send, and what the hub decides.

Plain synchronous code, events in and decisions out (like hypercorn's
`protocol/` beside its `trio/`): nothing here reads a socket, sleeps or
knows gRPC. The gateway (`hub.gateway`) drives it and turns its decisions
into gRPC statuses (the one table from `LinkVerdict` to `Status` is there); the
actor asks it whether its link went silent.

A connection goes through these steps:

1. `bearer_token`: the request headers must carry `authorization: Bearer
   <vehicle token>` (the hub then finds the vehicles the token may be,
   `Hub.authenticate`).
2. `first_message`: the first message must be a `Hello` (`hello_timeout`
   when none comes in time, `bad_first_message` when it cannot be read).
3. `check_identity` (mutual TLS only): the client certificate's name is the
   Hello's VIN. `admit`: the VIN can be one, the token is this vehicle's,
   and the vehicle is enabled. `welcome` is the hub's first message.
4. `LinkProtocol.received`, for every later message: the per-link rate
   limit (a token bucket of one second), heartbeats answered at once, the
   rest handed to the actor; `LinkProtocol.silence` ends a link that sent
   nothing for `SILENT_HEARTBEATS` heartbeat intervals. The proto ⇄ model
   conversion of what the actor handles is `hub.wire`.

A refusal is `VehicleRefused(verdict, message)`; an ended link is a
`LinkEnd(verdict, message, reason)`: the `LinkVerdict` says what the vehicle is
told, the `DisconnectReason` what the hub records.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.errors import LinkVerdict, VehicleRefused
from hub.model import DisconnectReason, VehicleCredentials
from hub.untrusted import echo_vin, plausible_vin, shorten
from proto import Hello, HubMessage, VehicleMessage, Welcome

__all__ = [
    "SILENT_HEARTBEATS",
    "LinkEnd",
    "LinkProtocol",
    "LinkVerdict",
    "admit",
    "bad_first_message",
    "bearer_token",
    "check_identity",
    "first_message",
    "hello_timeout",
    "welcome",
]

#: Heartbeat intervals without a message after which a link is taken for dead.
SILENT_HEARTBEATS = 3


@dataclass(frozen=True, slots=True)
class LinkEnd:
    """How the hub ends a link: the vehicle is told `verdict` (None: a clean end) and
    `message`; the hub records `reason`."""

    verdict: LinkVerdict | None
    message: str
    reason: DisconnectReason


def bearer_token(authorization: object) -> str:
    """The vehicle token of an `authorization` header value; `VehicleRefused` if there is none."""
    value = authorization
    if not isinstance(value, str) or not value.lower().startswith("bearer ") or not value[7:]:
        raise VehicleRefused(
            LinkVerdict.UNAUTHENTICATED,
            "missing vehicle token: send metadata 'authorization: Bearer <vehicle token>'",
        )
    return value[7:].strip()


def hello_timeout(hello_timeout_s: float) -> VehicleRefused:
    """The refusal of a connection that sent no Hello within `hello_timeout_s`."""
    return VehicleRefused(
        LinkVerdict.TIMED_OUT, f"no Hello within {hello_timeout_s:g} s (hello_timeout_s)"
    )


def bad_first_message(exc: VehicleRefused) -> VehicleRefused:
    """The refusal of a connection whose first message could not be read (`exc` says why)."""
    return VehicleRefused(exc.verdict, f"{exc.message}; the first message must be Hello")


def first_message(message: VehicleMessage | None) -> Hello:
    """The `Hello` that `message` must be (None: the stream ended first)."""
    if message is None or message.WhichOneof("kind") != "hello":
        raise VehicleRefused(LinkVerdict.PROTOCOL_ERROR, "the first message must be Hello")
    return message.hello


def check_identity(identity: str | None, vin: str) -> None:
    """Mutual TLS: refuse a client certificate (`identity`, its name) for another VIN."""
    if identity != vin:
        raise VehicleRefused(
            LinkVerdict.PERMISSION_DENIED,
            f"the client certificate is for {shorten(identity or '')}, not VIN {echo_vin(vin)}",
        )


def admit(hello: Hello, candidates: list[VehicleCredentials]) -> VehicleCredentials:
    """The credentials of the vehicle `hello` names, among the token's `candidates`.

    Refuses a VIN that cannot be one (`PROTOCOL_ERROR`), a token that is not
    this VIN's (`UNAUTHENTICATED`) and a disabled vehicle (`PERMISSION_DENIED`).
    """
    if not plausible_vin(hello.vin):
        raise VehicleRefused(
            LinkVerdict.PROTOCOL_ERROR,
            f"the Hello's vin {shorten(hello.vin)} is not a VIN: expected 17 capital "
            "letters and digits",
        )
    credentials = next((c for c in candidates if c.vin == hello.vin), None)
    if credentials is None:
        raise VehicleRefused(LinkVerdict.UNAUTHENTICATED, f"wrong token for VIN {hello.vin}")
    if not credentials.enabled:
        raise VehicleRefused(LinkVerdict.PERMISSION_DENIED, f"vehicle {hello.vin} is disabled")
    return credentials


def welcome(session_id: str, heartbeat_interval_s: float) -> HubMessage:
    """The hub's first message on an admitted link."""
    interval_ms = int(heartbeat_interval_s * 1000)
    return HubMessage(welcome=Welcome(session_id=session_id, heartbeat_interval_ms=interval_ms))


class LinkProtocol:
    """One admitted link's state: its message rate and when the vehicle was last heard.

    Times are the caller's clock (the gateway and the actor use trio's).
    """

    __slots__ = ("_allowance", "_max_per_s", "_refilled", "last_heard", "silence_limit_s")

    def __init__(
        self, *, max_messages_per_s: float, heartbeat_interval_s: float, now: float
    ) -> None:
        self._max_per_s = max_messages_per_s
        self._allowance = max_messages_per_s  # a token bucket of one second
        self._refilled = now
        #: When the vehicle was last heard (the link's start, until its first message).
        self.last_heard = now
        #: How long a vehicle may stay silent before its link is ended.
        self.silence_limit_s = SILENT_HEARTBEATS * heartbeat_interval_s

    def received(self, message: VehicleMessage, now: float) -> HubMessage | LinkEnd | None:
        """Decide what to do with `message`, received at `now`.

        None: hand it to the actor. A `HubMessage`: answer with it (a
        heartbeat), the actor needs not know. A `LinkEnd`: end the link (too
        many messages per second).
        """
        self.last_heard = now
        max_per_s = self._max_per_s
        self._allowance = min(max_per_s, self._allowance + (now - self._refilled) * max_per_s) - 1
        self._refilled = now
        if self._allowance < 0:
            detail = (
                f"the vehicle sent more than {max_per_s:g} messages per second "
                "(max_vehicle_messages_per_s)"
            )
            return LinkEnd(LinkVerdict.RATE_LIMITED, detail, DisconnectReason.PROTOCOL_ERROR)
        if message.WhichOneof("kind") == "heartbeat":
            return HubMessage(heartbeat=message.heartbeat)
        return None

    def silence(self, now: float) -> LinkEnd | None:
        """The end of a link silent for `silence_limit_s` at `now`, or None while it is not."""
        if now - self.last_heard < self.silence_limit_s:
            return None
        detail = f"no message from the vehicle for {self.silence_limit_s:g} s"
        return LinkEnd(LinkVerdict.UNAVAILABLE, detail, DisconnectReason.HEARTBEAT_TIMEOUT)
