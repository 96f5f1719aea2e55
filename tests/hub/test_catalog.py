"""The command catalog: each named command becomes the right SOVD request, or a precise error."""

from __future__ import annotations

import pytest

from hub import CATALOG, CatalogError, SovdRequest, build_request
from hub.model import JSON


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("ReadDTC", {"ecuAddress": "0x10"}, SovdRequest("GET", "/components/engine/faults")),
        (
            "ReadDTC",
            {"ecuAddress": "0x18"},
            SovdRequest("GET", "/components/transmission/faults"),
        ),
        ("ReadDTC", {"ecuAddress": "0x28"}, SovdRequest("GET", "/components/brakes/faults")),
        ("ReadDTC", {"ecuAddress": "0x40"}, SovdRequest("GET", "/components/body/faults")),
        ("ClearDTC", {"ecuAddress": "0x10"}, SovdRequest("DELETE", "/components/engine/faults")),
        (
            "ClearDTC",
            {"ecuAddress": "0x28", "dtcCode": "P0A1F"},
            SovdRequest("DELETE", "/components/brakes/faults/P0A1F"),
        ),
        (
            "ReadDataByID",
            {"ecuAddress": "0x10", "dataId": "0xF190"},
            SovdRequest("GET", "/components/engine/data/0xF190"),
        ),
        # The data id is normalised to upper case, the ECU address accepted in either case.
        (
            "ReadDataByID",
            {"ecuAddress": "0x10", "dataId": "0xf1a0"},
            SovdRequest("GET", "/components/engine/data/0xF1A0"),
        ),
    ],
)
def test_command_maps_to_sovd_request(
    name: str, params: dict[str, JSON], expected: SovdRequest
) -> None:
    request = build_request(name, params)

    assert request == expected
    assert request.query == {}
    assert request.body is None


def test_catalog_names_the_seed_commands() -> None:
    assert sorted(CATALOG) == ["ClearDTC", "ReadDTC", "ReadDataByID"]


def _error(name: str, params: dict[str, JSON]) -> CatalogError:
    with pytest.raises(CatalogError) as info:
        build_request(name, params)
    return info.value


def test_unknown_command() -> None:
    error = _error("FlashECU", {"ecuAddress": "0x10"})

    assert (error.field, error.rule) == ("command", "enum")
    assert str(error) == "unknown command 'FlashECU'; known: ClearDTC, ReadDTC, ReadDataByID"
    assert error.message == str(error)


def test_extra_parameter() -> None:
    error = _error("ReadDTC", {"ecuAddress": "0x10", "dtcCode": "P0301"})

    assert (error.field, error.rule) == ("params.dtcCode", "additionalProperties")
    assert str(error) == "ReadDTC takes no parameter 'dtcCode'; allowed: ecuAddress"


def test_extra_parameter_lists_every_allowed_one() -> None:
    error = _error("ClearDTC", {"ecuAddress": "0x10", "force": "yes"})

    assert (error.field, error.rule) == ("params.force", "additionalProperties")
    assert str(error) == "ClearDTC takes no parameter 'force'; allowed: dtcCode, ecuAddress"


@pytest.mark.parametrize(
    ("name", "params", "missing"),
    [
        ("ReadDTC", {}, "ecuAddress"),
        ("ClearDTC", {"dtcCode": "P0301"}, "ecuAddress"),
        ("ReadDataByID", {"ecuAddress": "0x10"}, "dataId"),
    ],
)
def test_missing_parameter(name: str, params: dict[str, JSON], missing: str) -> None:
    error = _error(name, params)

    assert (error.field, error.rule) == (f"params.{missing}", "required")
    assert str(error) == f"{name} requires params.{missing}"


@pytest.mark.parametrize(
    ("value", "type_name"),
    [(16, "int"), (None, "NoneType"), (True, "bool"), (["0x10"], "list"), (1.5, "float")],
)
def test_wrong_type(value: JSON, type_name: str) -> None:
    error = _error("ReadDTC", {"ecuAddress": value})

    assert (error.field, error.rule) == ("params.ecuAddress", "type")
    assert str(error) == (
        f"params.ecuAddress must be a string matching ^0x[0-9A-Fa-f]{{2}}$, got {type_name}"
    )


@pytest.mark.parametrize(
    ("name", "params", "field", "pattern", "value"),
    [
        ("ReadDTC", {"ecuAddress": "16"}, "ecuAddress", r"^0x[0-9A-Fa-f]{2}$", "16"),
        ("ReadDTC", {"ecuAddress": "0x100"}, "ecuAddress", r"^0x[0-9A-Fa-f]{2}$", "0x100"),
        ("ReadDTC", {"ecuAddress": "0x1G"}, "ecuAddress", r"^0x[0-9A-Fa-f]{2}$", "0x1G"),
        # A trailing newline must not slip past `$`.
        ("ReadDTC", {"ecuAddress": "0x10\n"}, "ecuAddress", r"^0x[0-9A-Fa-f]{2}$", "0x10\n"),
        (
            "ClearDTC",
            {"ecuAddress": "0x10", "dtcCode": "p0301"},
            "dtcCode",
            r"^P[0-9A-F]{4}$",
            "p0301",
        ),
        (
            "ClearDTC",
            {"ecuAddress": "0x10", "dtcCode": "P0301/../x"},
            "dtcCode",
            r"^P[0-9A-F]{4}$",
            "P0301/../x",
        ),
        (
            "ReadDataByID",
            {"ecuAddress": "0x10", "dataId": "F190"},
            "dataId",
            r"^0x[0-9A-Fa-f]{4}$",
            "F190",
        ),
    ],
)
def test_pattern_mismatch(
    name: str, params: dict[str, JSON], field: str, pattern: str, value: str
) -> None:
    error = _error(name, params)

    assert (error.field, error.rule) == (f"params.{field}", "pattern")
    assert str(error) == f"params.{field} must match {pattern}, got {value!r}"


@pytest.mark.parametrize("command", ["ReadDTC", "ClearDTC"])
def test_unknown_ecu(command: str) -> None:
    error = _error(command, {"ecuAddress": "0x7f"})

    assert (error.field, error.rule) == ("params.ecuAddress", "enum")
    assert str(error) == (
        "params.ecuAddress 0x7f is not a known ECU (known: 0x10, 0x18, 0x28, 0x40)"
    )


def test_unknown_ecu_for_read_data() -> None:
    error = _error("ReadDataByID", {"ecuAddress": "0x00", "dataId": "0xF190"})

    assert (error.field, error.rule) == ("params.ecuAddress", "enum")
    assert "0x00 is not a known ECU" in str(error)
