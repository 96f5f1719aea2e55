"""The simulated vehicle's ECUs and its answers to SOVD requests.

Sans-IO: `VehicleModel.handle(request)` takes a SOVD request (anything with a
`method` and a `path`, such as the proto `SovdRequest` or the hub's) and
returns the events the vehicle would send, in order, the last one final. It
never sleeps or touches a socket; `bench.simulator` paces and sends them.

Resources answered (component names as in the hub's catalog):

    GET    /components/{c}/faults          ReadDTC: one PROGRESS per fault, then RESULT
    DELETE /components/{c}/faults          ClearDTC (all): one RESULT {"cleared": n}
    DELETE /components/{c}/faults/{code}   ClearDTC (one): one RESULT, or 404
    GET    /components/{c}/data/{did}      ReadDataByID: PROGRESS "reading", then RESULT

Data identifiers belong to the vehicle, not to one ECU: any component answers
them, as the seed's simulator did. Errors are SOVD-style bodies
`{"error_code": ..., "message": ...}` in a final ERROR event.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias

JsonValue: TypeAlias = dict[str, "JsonValue"] | list["JsonValue"] | str | int | float | bool | None

#: ECU address -> SOVD component name, as in the hub's catalog.
ECU_COMPONENTS: Mapping[int, str] = {
    0x10: "engine",
    0x18: "transmission",
    0x28: "brakes",
    0x40: "body",
}

#: Software version reported by DID 0xF188 unless the model is told otherwise.
DEFAULT_SOFTWARE_VERSION = "SIM-ECU 4.2.1"

_DID_RE = re.compile(r"0x[0-9A-Fa-f]{4}")
_ADDRESS_OF = {name: address for address, name in ECU_COMPONENTS.items()}


class EventKind(enum.Enum):
    """Kind of a command event; mirrors `CommandEvent.Kind` of the link proto."""

    ACCEPTED = "accepted"
    PROGRESS = "progress"
    RESULT = "result"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One event the vehicle sends for a command; `body` is encoded as JSON on the wire."""

    kind: EventKind
    status: int
    body: dict[str, JsonValue]
    final: bool


@dataclass(frozen=True, slots=True)
class Fault:
    """A stored diagnostic trouble code."""

    code: str
    description: str
    status: str  # "confirmed" or "pending", as the seed reported them


@dataclass(frozen=True, slots=True)
class DataIdentifier:
    """A readable data identifier (UDS DID) and its current value."""

    did: int
    name: str
    value: JsonValue
    unit: str | None


class SovdRequestLike(Protocol):
    """What `VehicleModel.handle` reads of a request; query and body are not used."""

    @property
    def method(self) -> str: ...

    @property
    def path(self) -> str: ...


def _default_faults() -> dict[str, list[Fault]]:
    return {
        "engine": [
            Fault("P0420", "Catalyst system efficiency below threshold (bank 1)", "confirmed"),
            Fault("P0171", "System too lean (bank 1)", "pending"),
        ],
        "transmission": [
            Fault("P0730", "Incorrect gear ratio", "confirmed"),
        ],
        "brakes": [
            Fault("C0035", "Left front wheel speed sensor circuit", "pending"),
        ],
        "body": [],
    }


def error(status: int, error_code: str, message: str) -> EventSpec:
    """A final ERROR event with a SOVD-style error body."""
    return EventSpec(
        EventKind.ERROR, status, {"error_code": error_code, "message": message}, final=True
    )


@dataclass
class VehicleModel:
    """One vehicle's ECUs with their stored faults and data identifiers.

    State (the stored faults) changes when faults are cleared; each simulated
    vehicle owns one model, which outlives its link so a cleared fault stays
    cleared across reconnects.
    """

    vin: str
    software_version: str = DEFAULT_SOFTWARE_VERSION
    faults: dict[str, list[Fault]] = field(default_factory=_default_faults)

    def data_identifiers(self) -> dict[int, DataIdentifier]:
        """The vehicle's readable data identifiers by number."""
        dids = (
            DataIdentifier(0x010C, "engine_speed", 2450, "rpm"),
            DataIdentifier(0x010D, "vehicle_speed", 65, "km/h"),
            DataIdentifier(0x0105, "coolant_temperature", 90, "degC"),
            DataIdentifier(0x012F, "fuel_level", 62.5, "%"),
            DataIdentifier(0xF190, "vin", self.vin, None),
            DataIdentifier(0xF188, "software_version", self.software_version, None),
        )
        return {d.did: d for d in dids}

    def handle(self, request: SovdRequestLike) -> list[EventSpec]:
        """Answer one SOVD request; the returned list is never empty and ends with a final event."""
        method = request.method.upper()
        parts = request.path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "components":
            return [error(400, "unsupported-resource", _unsupported(method, request.path))]
        component = parts[1]
        if component not in _ADDRESS_OF:
            known = ", ".join(_ADDRESS_OF)
            return [
                error(404, "unknown-component", f"unknown component {component!r}; known: {known}")
            ]
        resource = parts[2:]
        match resource:
            case ["faults"]:
                return self._faults(method, request.path, component)
            case ["faults", code]:
                if method != "DELETE":
                    return [_not_allowed(method, request.path, "DELETE")]
                return [self._clear_one(component, code)]
            case ["data", did]:
                if method != "GET":
                    return [_not_allowed(method, request.path, "GET")]
                return self._read_data(component, did)
            case _:
                return [error(400, "unsupported-resource", _unsupported(method, request.path))]

    def _faults(self, method: str, path: str, component: str) -> list[EventSpec]:
        ecu = _ecu(component)
        stored = self.faults.get(component, [])
        if method == "GET":
            events = [
                EventSpec(
                    EventKind.PROGRESS,
                    200,
                    {
                        "code": f.code,
                        "description": f.description,
                        "status": f.status,
                        "ecu": ecu,
                        "component": component,
                    },
                    final=False,
                )
                for f in stored
            ]
            summary: dict[str, JsonValue] = {
                "ecu": ecu,
                "component": component,
                "total": len(stored),
                "faults": [f.code for f in stored],
            }
            return [*events, EventSpec(EventKind.RESULT, 200, summary, final=True)]
        if method == "DELETE":
            cleared = len(stored)
            self.faults[component] = []
            return [_cleared(component, cleared)]
        return [_not_allowed(method, path, "GET, DELETE")]

    def _clear_one(self, component: str, code: str) -> EventSpec:
        stored = self.faults.get(component, [])
        wanted = code.upper()
        remaining = [f for f in stored if f.code != wanted]
        if len(remaining) == len(stored):
            codes = ", ".join(f.code for f in stored) or "none"
            return error(
                404,
                "unknown-fault",
                f"no stored fault {code} on component {component} (stored: {codes})",
            )
        self.faults[component] = remaining
        return _cleared(component, len(stored) - len(remaining))

    def _read_data(self, component: str, did_text: str) -> list[EventSpec]:
        if _DID_RE.fullmatch(did_text) is None:
            return [
                error(
                    400,
                    "invalid-data-identifier",
                    f"invalid data identifier {did_text!r}: expected 0x and 4 hex digits, "
                    "e.g. 0x010C",
                )
            ]
        did = int(did_text, 16)
        ident = self.data_identifiers().get(did)
        if ident is None:
            return [error(404, "unknown-data-identifier", f"unknown data identifier 0x{did:04X}")]
        result: dict[str, JsonValue] = {
            "did": f"0x{did:04X}",
            "name": ident.name,
            "value": ident.value,
            "unit": ident.unit,
            "ecu": _ecu(component),
            "component": component,
        }
        return [
            EventSpec(EventKind.PROGRESS, 200, {"status": "reading"}, final=False),
            EventSpec(EventKind.RESULT, 200, result, final=True),
        ]


def _ecu(component: str) -> str:
    return f"0x{_ADDRESS_OF[component]:02X}"


def _cleared(component: str, count: int) -> EventSpec:
    body: dict[str, JsonValue] = {"ecu": _ecu(component), "component": component, "cleared": count}
    return EventSpec(EventKind.RESULT, 200, body, final=True)


def _not_allowed(method: str, path: str, allowed: str) -> EventSpec:
    return error(
        405, "method-not-allowed", f"{method} is not allowed on {path}; allowed: {allowed}"
    )


def _unsupported(method: str, path: str) -> str:
    return (
        f"{method} {path} is not supported by this vehicle; supported: "
        "/components/{component}/faults[/{code}], /components/{component}/data/{did}"
    )
