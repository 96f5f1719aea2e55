"""Who a simulated vehicle is (`VehicleSpec`) and how it behaves (`Behaviour`), faults included.

The faults (`FAULTS`) are what the hub's protocol checks are tested
against; `FaultCodec` is grpclib's protobuf codec that can also send bytes
that are not protobuf (`CORRUPT_BYTES`).
"""

from __future__ import annotations

from dataclasses import dataclass

from grpclib.encoding.proto import ProtoCodec


@dataclass(frozen=True, slots=True)
class VehicleSpec:
    """Identity of one simulated vehicle."""

    vin: str
    token: str


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How a simulated vehicle behaves; the defaults are a healthy, fast vehicle.

    `silent`: receive commands, never answer. `drop_after_events`: after
    sending that many events of one command, close the connection abruptly.
    `fault` (fault injection, see `FAULTS`): `malformed` sends a first event
    whose body is not JSON, `oversized` one whose body is `fault_size` bytes,
    `repeat_seq` sends every event twice, `skip_seq` skips a seq after the
    first event, `flood` sends `fault_size` heartbeats at once first, `stranger`
    first sends an event for a command it was never given,
    `crash_loop` drops the link right after every Welcome (an agent that keeps crashing),
    `corrupt` first sends a message whose bytes are not protobuf (`CORRUPT_BYTES`).
    `hub_silence_intervals`: the link is dead when the hub sends nothing for
    that many heartbeat intervals (None: never). `welcome_timeout_s`: how
    long to wait for Welcome after Hello.
    """

    event_latency_s: float = 0.0
    silent: bool = False
    drop_after_events: int | None = None
    hub_silence_intervals: int | None = 3
    welcome_timeout_s: float = 30.0
    fault: str | None = None
    fault_size: int = 100_000

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)}, got {self.fault!r}")
        if self.event_latency_s < 0:
            raise ValueError(f"event_latency_s must be >= 0, got {self.event_latency_s}")
        if self.drop_after_events is not None and self.drop_after_events < 0:
            raise ValueError(f"drop_after_events must be >= 0, got {self.drop_after_events}")
        if self.hub_silence_intervals is not None and self.hub_silence_intervals < 1:
            raise ValueError(
                f"hub_silence_intervals must be >= 1 or None, got {self.hub_silence_intervals}"
            )
        if self.welcome_timeout_s <= 0:
            raise ValueError(f"welcome_timeout_s must be > 0, got {self.welcome_timeout_s}")


FAULTS = (
    "malformed",
    "oversized",
    "repeat_seq",
    "skip_seq",
    "flood",
    "stranger",
    "crash_loop",
    "corrupt",
)
#: What the `corrupt` fault sends instead of its first event: a well-framed gRPC message
#: whose bytes are not protobuf (a field whose declared length runs past the end).
CORRUPT_BYTES = b"\x0a\xff\xff\xff\xff\x0f"


class CorruptMessage:
    """Stands for `CORRUPT_BYTES` in the outbox; `FaultCodec` sends it as it is."""


class FaultCodec(ProtoCodec):
    """grpclib's protobuf codec, which also sends `CorruptMessage` (fault injection)."""

    def encode(self, message: object, message_type: type[object]) -> bytes:
        if isinstance(message, CorruptMessage):
            return CORRUPT_BYTES
        return super().encode(message, message_type)  # type: ignore[arg-type]


#: A healthy, fast vehicle: the default of `SimulatedVehicle` and `run_fleet`.
DEFAULT_BEHAVIOUR = Behaviour()
