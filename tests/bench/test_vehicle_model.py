"""Sans-IO tests of the simulated vehicle's answers to SOVD requests."""

from __future__ import annotations

import pytest

from bench.vehicle_model import (
    DEFAULT_SOFTWARE_VERSION,
    ECU_COMPONENTS,
    EventKind,
    EventSpec,
    VehicleModel,
)
from proto import SovdRequest

VIN = "WVWZZZ1KZ8W000001"


def ask(model: VehicleModel, method: str, path: str) -> list[EventSpec]:
    events = model.handle(SovdRequest(method=method, path=path))
    # Every answer ends with exactly one final event.
    assert [e.final for e in events] == [False] * (len(events) - 1) + [True]
    return events


def test_ecu_components_match_the_hub_catalog() -> None:
    assert ECU_COMPONENTS == {0x10: "engine", 0x18: "transmission", 0x28: "brakes", 0x40: "body"}


def test_read_dtc_streams_each_fault_then_a_summary() -> None:
    events = ask(VehicleModel(VIN), "GET", "/components/engine/faults")

    assert [(e.kind, e.status) for e in events] == [
        (EventKind.PROGRESS, 200),
        (EventKind.PROGRESS, 200),
        (EventKind.RESULT, 200),
    ]
    assert events[0].body == {
        "code": "P0420",
        "description": "Catalyst system efficiency below threshold (bank 1)",
        "status": "confirmed",
        "ecu": "0x10",
        "component": "engine",
    }
    assert events[1].body["code"] == "P0171"
    assert events[1].body["status"] == "pending"
    assert events[2].body == {
        "ecu": "0x10",
        "component": "engine",
        "total": 2,
        "faults": ["P0420", "P0171"],
    }


@pytest.mark.parametrize("component", ["transmission", "brakes"])
def test_other_ecus_have_their_own_faults(component: str) -> None:
    events = ask(VehicleModel(VIN), "GET", f"/components/{component}/faults")

    summary = events[-1].body
    assert summary["total"] == len(events) - 1 >= 1
    assert summary["faults"] == [e.body["code"] for e in events[:-1]]


def test_read_dtc_without_faults_is_one_empty_result() -> None:
    events = ask(VehicleModel(VIN), "GET", "/components/body/faults")

    assert events == [
        EventSpec(
            EventKind.RESULT,
            200,
            {"ecu": "0x40", "component": "body", "total": 0, "faults": []},
            final=True,
        )
    ]


def test_clear_all_faults_reports_the_count_and_empties_the_ecu() -> None:
    model = VehicleModel(VIN)

    events = ask(model, "DELETE", "/components/engine/faults")

    assert events == [
        EventSpec(
            EventKind.RESULT, 200, {"ecu": "0x10", "component": "engine", "cleared": 2}, final=True
        )
    ]
    assert ask(model, "GET", "/components/engine/faults")[-1].body["total"] == 0
    # Other ECUs keep theirs.
    assert ask(model, "GET", "/components/transmission/faults")[-1].body["total"] == 1


def test_clear_all_twice_clears_nothing_the_second_time() -> None:
    model = VehicleModel(VIN)
    ask(model, "DELETE", "/components/engine/faults")

    assert ask(model, "DELETE", "/components/engine/faults")[0].body["cleared"] == 0


def test_clear_one_fault_keeps_the_others() -> None:
    model = VehicleModel(VIN)

    events = ask(model, "DELETE", "/components/engine/faults/P0420")

    assert events[0].kind is EventKind.RESULT
    assert events[0].body == {"ecu": "0x10", "component": "engine", "cleared": 1}
    assert ask(model, "GET", "/components/engine/faults")[-1].body["faults"] == ["P0171"]


def test_clear_unknown_fault_is_a_404_naming_what_is_stored() -> None:
    model = VehicleModel(VIN)

    events = ask(model, "DELETE", "/components/engine/faults/P9999")

    assert events == [
        EventSpec(
            EventKind.ERROR,
            404,
            {
                "error_code": "unknown-fault",
                "message": "no stored fault P9999 on component engine (stored: P0420, P0171)",
            },
            final=True,
        )
    ]
    assert ask(model, "GET", "/components/engine/faults")[-1].body["total"] == 2


def test_clearing_a_fault_twice_is_a_404_the_second_time() -> None:
    model = VehicleModel(VIN)
    ask(model, "DELETE", "/components/engine/faults/P0420")

    events = ask(model, "DELETE", "/components/engine/faults/P0420")

    assert events[0].status == 404
    assert events[0].body["message"] == "no stored fault P0420 on component engine (stored: P0171)"


@pytest.mark.parametrize(
    ("did", "name", "value", "unit"),
    [
        ("0x010C", "engine_speed", 2450, "rpm"),
        ("0x010D", "vehicle_speed", 65, "km/h"),
        ("0xF190", "vin", VIN, None),
        ("0xF188", "software_version", DEFAULT_SOFTWARE_VERSION, None),
        ("0x0105", "coolant_temperature", 90, "degC"),
    ],
)
def test_read_data_by_id_reads_then_answers(
    did: str, name: str, value: object, unit: str | None
) -> None:
    events = ask(VehicleModel(VIN), "GET", f"/components/engine/data/{did}")

    assert events[0] == EventSpec(EventKind.PROGRESS, 200, {"status": "reading"}, final=False)
    assert events[1].kind is EventKind.RESULT
    assert events[1].status == 200
    assert events[1].body == {
        "did": did,
        "name": name,
        "value": value,
        "unit": unit,
        "ecu": "0x10",
        "component": "engine",
    }


def test_read_data_accepts_lower_case_hex_and_answers_canonically() -> None:
    events = ask(VehicleModel(VIN), "GET", "/components/brakes/data/0x010c")

    assert events[1].body["did"] == "0x010C"
    assert events[1].body["ecu"] == "0x28"


def test_read_unknown_data_identifier_is_a_404() -> None:
    events = ask(VehicleModel(VIN), "GET", "/components/engine/data/0x1234")

    assert events == [
        EventSpec(
            EventKind.ERROR,
            404,
            {"error_code": "unknown-data-identifier", "message": "unknown data identifier 0x1234"},
            final=True,
        )
    ]


@pytest.mark.parametrize("did", ["0x12", "0x12345", "0xZZZZ"])
def test_read_malformed_data_identifier_is_a_400(did: str) -> None:
    events = ask(VehicleModel(VIN), "GET", f"/components/engine/data/{did}")

    assert events[0].status == 400
    assert events[0].body["error_code"] == "invalid-data-identifier"
    assert f"{did!r}" in str(events[0].body["message"])


def test_unknown_component_is_a_404_listing_the_known_ones() -> None:
    events = ask(VehicleModel(VIN), "GET", "/components/radio/faults")

    assert events == [
        EventSpec(
            EventKind.ERROR,
            404,
            {
                "error_code": "unknown-component",
                "message": "unknown component 'radio'; known: engine, transmission, brakes, body",
            },
            final=True,
        )
    ]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/components/engine/faults", "GET, DELETE"),
        ("GET", "/components/engine/faults/P0420", "DELETE"),
        ("DELETE", "/components/engine/data/0x010C", "GET"),
    ],
)
def test_wrong_method_is_a_405(method: str, path: str, allowed: str) -> None:
    events = ask(VehicleModel(VIN), method, path)

    assert events[0].kind is EventKind.ERROR
    assert events[0].status == 405
    assert events[0].body == {
        "error_code": "method-not-allowed",
        "message": f"{method} is not allowed on {path}; allowed: {allowed}",
    }


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/version",
        "/components/engine/dtcs",
        "/components/engine/faults/P0420/history",
        "/components/engine/operations/selftest",
        "/components/engine/operations/selftest/executions/x/y",
    ],
)
def test_unknown_resource_is_a_404(path: str) -> None:
    events = ask(VehicleModel(VIN), "GET", path)

    assert events[0].kind is EventKind.ERROR
    assert events[0].status == 404
    assert events[0].body["error_code"] == "unknown-resource"
    assert f"GET {path}: no such resource on this vehicle" in str(events[0].body["message"])


def test_method_is_case_insensitive() -> None:
    events = ask(VehicleModel(VIN), "get", "/components/engine/faults")

    assert events[-1].body["total"] == 2


def test_each_vehicle_has_its_own_faults() -> None:
    first, second = VehicleModel(VIN), VehicleModel("WVWZZZ1KZ8W000002")
    ask(first, "DELETE", "/components/engine/faults")

    assert ask(second, "GET", "/components/engine/faults")[-1].body["total"] == 2
