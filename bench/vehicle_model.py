"""The simulated vehicle's ECUs and its answers to SOVD requests.

Sans-IO: `VehicleModel.answer(request, ...)` takes a SOVD request (anything
with a `method` and a `path`, such as the proto `SovdRequest` or the hub's;
query, body and command id are passed beside it) and returns the events the
vehicle would send, in order, the last one final. It never sleeps or touches
a socket; `bench.simulator` paces the events (`EventSpec.delay_s`) and sends
them. `handle(request)` is `answer(request).events`.

Resources answered (component names and ECU addresses as in the hub's catalog):

    GET    /components                        RESULT {"items": [...]}
    GET    /components/{c}                    RESULT: the component and its resources
    GET    /components/{c}/faults[?status=s]  one PROGRESS per fault, then RESULT (summary)
    DELETE /components/{c}/faults[/{code}]    RESULT {"cleared": n}, or 404 for an absent code
    GET    /components/{c}/data               RESULT {"items": [...]}: its data items
    GET    /components/{c}/data/{id}          PROGRESS "reading", then RESULT with the value
    GET    /components/{c}/operations         RESULT {"items": [...]}
    .../operations/{op}/executions[/{x}]      see `bench.vehicle_operations`

Data items: each component has its own (`engine-speed`, ...); the vehicle's
data identifiers (`0xF190`, ...) belong to the vehicle, not to one ECU, and
every component answers them, as the seed's simulator did. Fault statuses are
`confirmed` and `pending`.

Errors are SOVD-style bodies `{"error_code": ..., "message": ...}` in a final
ERROR event: 400 bad input (`invalid-query`, `invalid-body`,
`invalid-data-identifier`), 404 unknown resource (`unknown-resource`,
`unknown-component`, `unknown-fault`, `unknown-data-item`, ...), 405 wrong
method (`method-not-allowed`), 409 stopping an execution that no longer runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from bench.vehicle_events import (
    Answer,
    EventKind,
    EventSpec,
    JsonValue,
    Stopped,
    error,
    only,
    result,
)
from bench.vehicle_operations import Operations

__all__ = [
    "COMPONENT_DATA",
    "COMPONENT_NAMES",
    "DEFAULT_SOFTWARE_VERSION",
    "ECU_COMPONENTS",
    "FAULT_STATUSES",
    "Answer",
    "DataIdentifier",
    "DataItem",
    "EventKind",
    "EventSpec",
    "Fault",
    "JsonValue",
    "SovdRequestLike",
    "Stopped",
    "VehicleModel",
    "error",
]

#: ECU address -> SOVD component name, as in the hub's catalog.
ECU_COMPONENTS: Mapping[int, str] = {
    0x10: "engine",
    0x18: "transmission",
    0x28: "brakes",
    0x40: "body",
}
COMPONENT_NAMES: Mapping[str, str] = {
    "engine": "Engine control module",
    "transmission": "Transmission control module",
    "brakes": "Brake control module (ABS/ESC)",
    "body": "Body control module",
}

#: Software version reported by DID 0xF188 unless the model is told otherwise.
DEFAULT_SOFTWARE_VERSION = "SIM-ECU 4.2.1"
FAULT_STATUSES = ("confirmed", "pending")

_DID_RE = re.compile(r"0x[0-9A-Fa-f]{4}")
_FAULTS_PATH = re.compile(r"/?components/[^/]+/faults/?")
_ADDRESS_OF = {name: address for address, name in ECU_COMPONENTS.items()}


@dataclass(frozen=True, slots=True)
class Fault:
    """A stored diagnostic trouble code."""

    code: str
    description: str
    status: str  # one of FAULT_STATUSES


@dataclass(frozen=True, slots=True)
class DataIdentifier:
    """A readable data identifier (UDS DID) of the vehicle and its current value."""

    did: int
    name: str
    value: JsonValue
    unit: str | None
    category: str = "currentData"


@dataclass(frozen=True, slots=True)
class DataItem:
    """A component's own readable data item, addressed by a SOVD id such as `engine-speed`."""

    id: str
    name: str
    value: JsonValue
    unit: str | None


COMPONENT_DATA: Mapping[str, tuple[DataItem, ...]] = {
    "engine": (
        DataItem("engine-speed", "Engine speed", 2450, "rpm"),
        DataItem("coolant-temperature", "Coolant temperature", 90, "degC"),
        DataItem("oil-pressure", "Oil pressure", 3.2, "bar"),
    ),
    "transmission": (
        DataItem("current-gear", "Current gear", "D4", None),
        DataItem("fluid-temperature", "Transmission fluid temperature", 78, "degC"),
    ),
    "brakes": (
        DataItem("brake-fluid-level", "Brake fluid level", 92, "%"),
        DataItem("front-pad-wear", "Front brake pad wear", 34, "%"),
    ),
    "body": (
        DataItem("odometer", "Odometer", 48213, "km"),
        DataItem("door-locks", "Door locks", "locked", None),
    ),
}


class SovdRequestLike(Protocol):
    """What `VehicleModel.answer` reads of a request object."""

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


@dataclass
class VehicleModel:
    """One vehicle's ECUs with their stored faults, data items and operation executions.

    State changes when faults are cleared and operations run; each simulated
    vehicle owns one model, which outlives its link so a cleared fault stays
    cleared across reconnects.
    """

    vin: str
    software_version: str = DEFAULT_SOFTWARE_VERSION
    faults: dict[str, list[Fault]] = field(default_factory=_default_faults)
    operations: Operations = field(default_factory=Operations)

    def data_identifiers(self) -> dict[int, DataIdentifier]:
        """The vehicle's readable data identifiers by number."""
        dids = (
            DataIdentifier(0x010C, "engine_speed", 2450, "rpm"),
            DataIdentifier(0x010D, "vehicle_speed", 65, "km/h"),
            DataIdentifier(0x0105, "coolant_temperature", 90, "degC"),
            DataIdentifier(0x012F, "fuel_level", 62.5, "%"),
            DataIdentifier(0xF190, "vin", self.vin, None, "identData"),
            DataIdentifier(0xF188, "software_version", self.software_version, None, "identData"),
        )
        return {d.did: d for d in dids}

    def handle(self, request: SovdRequestLike) -> list[EventSpec]:
        """Answer one SOVD request that has no query and no body; see `answer`."""
        return self.answer(request).events

    def answer(
        self,
        request: SovdRequestLike,
        *,
        query: Mapping[str, str] | None = None,
        body: bytes = b"",
        command_id: str = "",
    ) -> Answer:
        """Answer one SOVD request; the events are never empty and end with a final one.

        `command_id` is the id of the command carrying the request: it becomes
        the id of an execution the request starts.
        """
        method, path, query = request.method.upper(), request.path, query or {}
        takes_status = method == "GET" and _FAULTS_PATH.fullmatch(path) is not None
        unknown = sorted(set(query) - ({"status"} if takes_status else set()))
        if unknown:
            message = f"{method} {path} takes no query parameter {unknown[0]!r}"
            return Answer([error(400, "invalid-query", message)])
        match path.strip("/").split("/"):
            case ["components"]:
                return Answer([only(method, path, "GET") or result(_components())])
            case ["components", component, *resource] if component in _ADDRESS_OF:
                return self._component(method, path, component, resource, query, body, command_id)
            case ["components", component, *_]:
                message = f"unknown component {component!r}; known: {', '.join(_ADDRESS_OF)}"
                return Answer([error(404, "unknown-component", message)])
        return Answer([_unknown_resource(method, path)])

    def command_ended(self, command_id: str, *, completed: bool) -> None:
        """The command `command_id` sent its last event (`completed`) or was cut short."""
        self.operations.command_ended(command_id, completed=completed)

    def _component(
        self,
        method: str,
        path: str,
        component: str,
        resource: list[str],
        query: Mapping[str, str],
        body: bytes,
        command_id: str,
    ) -> Answer:
        where: dict[str, JsonValue] = {"ecu": _ecu(component), "component": component}
        match resource:
            case []:
                return Answer([only(method, path, "GET") or result(_describe(component))])
            case ["faults"] if method == "GET":
                return Answer(self._list_faults(where, query.get("status")))
            case ["faults"]:
                return Answer([only(method, path, "GET, DELETE") or self._clear(where)])
            case ["faults", code]:
                return Answer([only(method, path, "DELETE") or self._clear(where, code)])
            case ["data"]:
                return Answer([only(method, path, "GET") or self._list_data(where)])
            case ["data", data_id]:
                refused = only(method, path, "GET")
                return Answer([refused] if refused else self._read(where, data_id))
            case ["operations"]:
                return Answer(
                    [only(method, path, "GET") or self.operations.listing(component, where)]
                )
            case ["operations", *rest]:
                answer = self.operations.answer(method, path, component, rest, body, command_id)
                if answer is not None:
                    return answer
        return Answer([_unknown_resource(method, path)])

    def _list_faults(self, where: dict[str, JsonValue], status: str | None) -> list[EventSpec]:
        if status is not None and status not in FAULT_STATUSES:
            message = f"status must be one of {', '.join(FAULT_STATUSES)}, got {status!r}"
            return [error(400, "invalid-query", message)]
        component = str(where["component"])
        stored = [f for f in self.faults.get(component, []) if status in (None, f.status)]
        events = [
            EventSpec(
                EventKind.PROGRESS,
                200,
                {"code": f.code, "description": f.description, "status": f.status, **where},
                final=False,
            )
            for f in stored
        ]
        summary: dict[str, JsonValue] = {
            **where,
            "total": len(stored),
            "faults": [f.code for f in stored],
        }
        if status is not None:
            summary["status"] = status
        return [*events, result(summary)]

    def _clear(self, where: dict[str, JsonValue], code: str | None = None) -> EventSpec:
        component = str(where["component"])
        stored = self.faults.get(component, [])
        remaining = [] if code is None else [f for f in stored if f.code != code.upper()]
        if code is not None and len(remaining) == len(stored):
            codes = ", ".join(f.code for f in stored) or "none"
            message = f"no stored fault {code} on component {component} (stored: {codes})"
            return error(404, "unknown-fault", message)
        self.faults[component] = remaining
        return result({**where, "cleared": len(stored) - len(remaining)})

    def _list_data(self, where: dict[str, JsonValue]) -> EventSpec:
        items: list[JsonValue] = [
            {"id": d.id, "name": d.name, "unit": d.unit, "category": "currentData"}
            for d in COMPONENT_DATA[str(where["component"])]
        ]
        items += [
            {"id": f"0x{d.did:04X}", "name": d.name, "unit": d.unit, "category": d.category}
            for d in self.data_identifiers().values()
        ]
        return result({**where, "items": items})

    def _read(self, where: dict[str, JsonValue], data_id: str) -> list[EventSpec]:
        value: dict[str, JsonValue]
        if data_id.startswith("0x"):
            if _DID_RE.fullmatch(data_id) is None:
                message = (
                    f"invalid data identifier {data_id!r}: expected 0x and 4 hex digits, "
                    "e.g. 0x010C"
                )
                return [error(400, "invalid-data-identifier", message)]
            did = int(data_id, 16)
            ident = self.data_identifiers().get(did)
            if ident is None:
                message = f"unknown data identifier 0x{did:04X}"
                return [error(404, "unknown-data-identifier", message)]
            value = {"did": f"0x{did:04X}", "name": ident.name, "value": ident.value}
            value["unit"] = ident.unit
        else:
            component = str(where["component"])
            items = COMPONENT_DATA[component]
            item = next((d for d in items if d.id == data_id), None)
            if item is None:
                message = (
                    f"component {component} has no data item {data_id!r}; its items: "
                    f"{', '.join(d.id for d in items)}, and the vehicle's data identifiers "
                    "such as 0xF190"
                )
                return [error(404, "unknown-data-item", message)]
            value = {"id": item.id, "name": item.name, "value": item.value, "unit": item.unit}
        return [
            EventSpec(EventKind.PROGRESS, 200, {"status": "reading"}, final=False),
            result({**value, **where}),
        ]


def _ecu(component: str) -> str:
    return f"0x{_ADDRESS_OF[component]:02X}"


def _components() -> dict[str, JsonValue]:
    items: list[JsonValue] = [
        {"id": c, "name": COMPONENT_NAMES[c], "ecu": _ecu(c), "href": f"/components/{c}"}
        for c in _ADDRESS_OF
    ]
    return {"items": items}


def _describe(component: str) -> dict[str, JsonValue]:
    href = f"/components/{component}"
    return {
        "id": component,
        "name": COMPONENT_NAMES[component],
        "ecu": _ecu(component),
        "data": f"{href}/data",
        "faults": f"{href}/faults",
        "operations": f"{href}/operations",
    }


def _unknown_resource(method: str, path: str) -> EventSpec:
    return error(
        404,
        "unknown-resource",
        f"{method} {path}: no such resource on this vehicle; it serves /components and "
        "/components/{component}[/faults[/{code}] | /data[/{id}] | "
        "/operations[/{op}/executions[/{id}]]]",
    )
