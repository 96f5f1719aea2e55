"""Sans-IO tests of the simulated vehicle's SOVD resources: components, data, fault filters."""

from __future__ import annotations

import orjson
import pytest

from bench.vehicle_model import (
    COMPONENT_DATA,
    COMPONENT_NAMES,
    ECU_COMPONENTS,
    FAULT_STATUSES,
    EventKind,
    EventSpec,
    VehicleModel,
)
from bench.vehicle_operations import OPERATIONS
from hub import ECU_COMPONENTS as HUB_ECU_COMPONENTS
from hub import FAULT_STATUSES as HUB_FAULT_STATUSES
from hub import JSON, build_request
from hub import OPERATIONS as HUB_OPERATIONS
from proto import SovdRequest as PbSovdRequest

VIN = "WVWZZZ1KZ8W000001"


def ask(
    model: VehicleModel, method: str, path: str, query: dict[str, str] | None = None
) -> list[EventSpec]:
    events = model.answer(PbSovdRequest(method=method, path=path), query=query).events
    assert [e.final for e in events] == [False] * (len(events) - 1) + [True]
    return events


def test_the_vehicle_speaks_the_hub_catalogs_vocabulary() -> None:
    assert dict(ECU_COMPONENTS) == dict(HUB_ECU_COMPONENTS)
    assert FAULT_STATUSES == HUB_FAULT_STATUSES
    assert tuple(OPERATIONS) == HUB_OPERATIONS


def test_list_components() -> None:
    [event] = ask(VehicleModel(VIN), "GET", "/components")

    assert (event.kind, event.status) == (EventKind.RESULT, 200)
    assert event.body == {
        "items": [
            {
                "id": "engine",
                "name": "Engine control module",
                "ecu": "0x10",
                "href": "/components/engine",
            },
            {
                "id": "transmission",
                "name": "Transmission control module",
                "ecu": "0x18",
                "href": "/components/transmission",
            },
            {
                "id": "brakes",
                "name": "Brake control module (ABS/ESC)",
                "ecu": "0x28",
                "href": "/components/brakes",
            },
            {
                "id": "body",
                "name": "Body control module",
                "ecu": "0x40",
                "href": "/components/body",
            },
        ]
    }


def test_describe_one_component() -> None:
    [event] = ask(VehicleModel(VIN), "GET", "/components/brakes")

    assert event.body == {
        "id": "brakes",
        "name": COMPONENT_NAMES["brakes"],
        "ecu": "0x28",
        "data": "/components/brakes/data",
        "faults": "/components/brakes/faults",
        "operations": "/components/brakes/operations",
    }


@pytest.mark.parametrize("component", list(COMPONENT_DATA))
def test_every_listed_data_item_can_be_read(component: str) -> None:
    model = VehicleModel(VIN)
    [listing] = ask(model, "GET", f"/components/{component}/data")
    items = listing.body["items"]
    assert isinstance(items, list)
    ids = [item["id"] for item in items if isinstance(item, dict)]
    assert ids[: len(COMPONENT_DATA[component])] == [d.id for d in COMPONENT_DATA[component]]
    assert {"0xF190", "0xF188", "0x010C"} <= set(map(str, ids))

    for data_id in ids:
        events = ask(model, "GET", f"/components/{component}/data/{data_id}")
        assert [e.kind for e in events] == [EventKind.PROGRESS, EventKind.RESULT], data_id
        assert events[-1].body["component"] == component


def test_read_a_named_data_item() -> None:
    events = ask(VehicleModel(VIN), "GET", "/components/engine/data/engine-speed")

    assert events[-1].body == {
        "id": "engine-speed",
        "name": "Engine speed",
        "value": 2450,
        "unit": "rpm",
        "ecu": "0x10",
        "component": "engine",
    }


def test_a_component_does_not_answer_another_ones_items() -> None:
    [event] = ask(VehicleModel(VIN), "GET", "/components/body/data/engine-speed")

    assert (event.kind, event.status) == (EventKind.ERROR, 404)
    assert event.body == {
        "error_code": "unknown-data-item",
        "message": "component body has no data item 'engine-speed'; its items: odometer, "
        "door-locks, and the vehicle's data identifiers such as 0xF190",
    }


@pytest.mark.parametrize(
    ("status", "codes"),
    [("confirmed", ["P0420"]), ("pending", ["P0171"]), (None, ["P0420", "P0171"])],
)
def test_list_faults_filtered_by_status(status: str | None, codes: list[str]) -> None:
    query = {} if status is None else {"status": status}

    events = ask(VehicleModel(VIN), "GET", "/components/engine/faults", query)

    assert [e.body["code"] for e in events[:-1]] == codes
    assert all(e.body["status"] == status for e in events[:-1] if status)
    assert events[-1].body["faults"] == codes
    assert events[-1].body.get("status") == status


def test_fault_filter_with_an_unknown_status_is_a_400() -> None:
    [event] = ask(VehicleModel(VIN), "GET", "/components/engine/faults", {"status": "active"})

    assert (event.status, event.body["error_code"]) == (400, "invalid-query")
    assert event.body["message"] == "status must be one of confirmed, pending, got 'active'"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/components/engine/data"), ("DELETE", "/components/engine/faults")],
)
def test_an_unexpected_query_parameter_is_a_400(method: str, path: str) -> None:
    model = VehicleModel(VIN)

    [event] = ask(model, method, path, {"status": "confirmed"})

    assert (event.status, event.body["error_code"]) == (400, "invalid-query")
    assert event.body["message"] == f"{method} {path} takes no query parameter 'status'"
    assert ask(model, "GET", "/components/engine/faults")[-1].body["total"] == 2  # nothing cleared


def test_clear_a_chassis_fault_by_code() -> None:
    model = VehicleModel(VIN)

    [event] = ask(model, "DELETE", "/components/brakes/faults/C0035")

    assert event.body == {"ecu": "0x28", "component": "brakes", "cleared": 1}
    assert ask(model, "GET", "/components/brakes/faults")[-1].body["total"] == 0


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/components", "GET"),
        ("POST", "/components/engine", "GET"),
        ("PUT", "/components/engine/data", "GET"),
        ("DELETE", "/components/engine/operations", "GET"),
    ],
)
def test_wrong_method_on_new_resources_is_a_405(method: str, path: str, allowed: str) -> None:
    [event] = ask(VehicleModel(VIN), method, path)

    assert (event.status, event.body["error_code"]) == (405, "method-not-allowed")
    assert event.body["message"] == f"{method} is not allowed on {path}; allowed: {allowed}"


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("ListComponents", {}),
        ("ListData", {"component": "transmission"}),
        ("ReadData", {"component": "transmission", "dataId": "current-gear"}),
        ("ReadData", {"component": "body", "dataId": "0xf190"}),
        ("ListFaults", {"component": "engine", "status": "pending"}),
        ("ClearFaults", {"component": "engine", "code": "P0171"}),
        ("ClearFaults", {"component": "body"}),
        ("ListOperations", {"component": "brakes"}),
        ("StartOperation", {"component": "brakes", "operation": "selftest", "durationMs": 100}),
        ("ReadDTC", {"ecuAddress": "0x18"}),
        ("ClearDTC", {"ecuAddress": "0x10", "dtcCode": "P0420"}),
        ("ReadDataByID", {"ecuAddress": "0x40", "dataId": "0xF188"}),
    ],
)
def test_every_catalog_request_is_served(name: str, params: dict[str, JSON]) -> None:
    request = build_request(name, params)
    body = b"" if request.body is None else orjson.dumps(request.body)

    events = VehicleModel(VIN).answer(request, query=request.query, body=body).events

    assert events[-1].final and events[-1].kind is EventKind.RESULT, events[-1]
