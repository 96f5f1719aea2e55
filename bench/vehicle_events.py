"""What a simulated vehicle answers with: command events and SOVD-style error bodies.

Sans-IO value types shared by `bench.vehicle_model` and `bench.vehicle_operations`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias

JsonValue: TypeAlias = dict[str, "JsonValue"] | list["JsonValue"] | str | int | float | bool | None


class EventKind(enum.Enum):
    """Kind of a command event; mirrors `CommandEvent.Kind` of the link proto."""

    ACCEPTED = "accepted"
    PROGRESS = "progress"
    RESULT = "result"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One event the vehicle sends for a command; `body` is encoded as JSON on the wire.

    `delay_s` is how long the vehicle works before sending it.
    """

    kind: EventKind
    status: int
    body: dict[str, JsonValue]
    final: bool
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Stopped:
    """A running start command to end now with `final` (its execution was stopped)."""

    command_id: str
    final: EventSpec


@dataclass(frozen=True, slots=True)
class Answer:
    """The events answering a request, and the running commands it stops."""

    events: list[EventSpec]
    stopped: tuple[Stopped, ...] = ()


def error(status: int, error_code: str, message: str) -> EventSpec:
    """A final ERROR event with a SOVD-style error body."""
    return EventSpec(
        EventKind.ERROR, status, {"error_code": error_code, "message": message}, final=True
    )


def result(body: dict[str, JsonValue], delay_s: float = 0.0) -> EventSpec:
    """A final RESULT event, status 200."""
    return EventSpec(EventKind.RESULT, 200, body, final=True, delay_s=delay_s)


def only(method: str, path: str, allowed: str) -> EventSpec | None:
    """The 405 to answer when `method` is not one of `allowed` ("GET, DELETE"), else None."""
    if method in allowed.split(", "):
        return None
    return error(
        405, "method-not-allowed", f"{method} is not allowed on {path}; allowed: {allowed}"
    )
