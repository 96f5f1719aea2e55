"""The command catalog: each named command becomes the right SOVD request, or a precise error."""

from __future__ import annotations

import re
from collections.abc import Iterator

import jsonschema_rs
import pytest

from hub import CATALOG, CatalogError, CommandSpec, SovdRequest, build_request
from hub.catalog import IntegerParam, StringParam
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


def test_catalog_names_the_seed_commands_and_the_sovd_ones() -> None:
    assert list(CATALOG) == [
        "ReadDTC",
        "ClearDTC",
        "ReadDataByID",
        "ListComponents",
        "ListData",
        "ReadData",
        "ListFaults",
        "ClearFaults",
        "ListOperations",
        "StartOperation",
        "StopOperation",
        "GetOperationStatus",
    ]


def _error(name: str, params: dict[str, JSON]) -> CatalogError:
    with pytest.raises(CatalogError) as info:
        build_request(name, params)
    return info.value


def test_unknown_command() -> None:
    error = _error("FlashECU", {"ecuAddress": "0x10"})

    assert (error.field, error.rule) == ("command", "enum")
    assert str(error) == (
        "unknown command 'FlashECU'; known: ClearDTC, ClearFaults, GetOperationStatus, "
        "ListComponents, ListData, ListFaults, ListOperations, ReadDTC, ReadData, ReadDataByID, "
        "StartOperation, StopOperation"
    )
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


# --- the SOVD-shaped commands -------------------------------------------------------------------

RUN_ID = "3f2b8c1e-0d4a-4e7b-9a51-6c2d9e8f7a10"
EXECUTIONS = "/components/engine/operations/selftest/executions"


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("ListComponents", {}, SovdRequest("GET", "/components")),
        ("ListData", {"component": "body"}, SovdRequest("GET", "/components/body/data")),
        (
            "ReadData",
            {"component": "engine", "dataId": "engine-speed"},
            SovdRequest("GET", "/components/engine/data/engine-speed"),
        ),
        (
            "ReadData",
            {"component": "brakes", "dataId": "0xf190"},
            SovdRequest("GET", "/components/brakes/data/0xF190"),
        ),
        ("ListFaults", {"component": "engine"}, SovdRequest("GET", "/components/engine/faults")),
        (
            "ListFaults",
            {"component": "engine", "status": "pending"},
            SovdRequest("GET", "/components/engine/faults", {"status": "pending"}),
        ),
        (
            "ClearFaults",
            {"component": "transmission"},
            SovdRequest("DELETE", "/components/transmission/faults"),
        ),
        (
            "ClearFaults",
            {"component": "brakes", "code": "C0035"},
            SovdRequest("DELETE", "/components/brakes/faults/C0035"),
        ),
        (
            "ListOperations",
            {"component": "engine"},
            SovdRequest("GET", "/components/engine/operations"),
        ),
        (
            "StartOperation",
            {"component": "engine", "operation": "selftest"},
            SovdRequest("POST", EXECUTIONS, body={"parameters": {"durationMs": 3000}}),
        ),
        (
            "StartOperation",
            {"component": "engine", "operation": "selftest", "durationMs": 250},
            SovdRequest("POST", EXECUTIONS, body={"parameters": {"durationMs": 250}}),
        ),
        # As in JSON Schema, 250.0 is an integer; it travels as 250.
        (
            "StartOperation",
            {"component": "engine", "operation": "selftest", "durationMs": 250.0},
            SovdRequest("POST", EXECUTIONS, body={"parameters": {"durationMs": 250}}),
        ),
        (
            "StopOperation",
            {"component": "engine", "operation": "selftest", "executionId": RUN_ID.upper()},
            SovdRequest("DELETE", f"{EXECUTIONS}/{RUN_ID}"),
        ),
        (
            "GetOperationStatus",
            {"component": "engine", "operation": "selftest", "executionId": RUN_ID},
            SovdRequest("GET", f"{EXECUTIONS}/{RUN_ID}"),
        ),
    ],
)
def test_sovd_command_maps_to_sovd_request(
    name: str, params: dict[str, JSON], expected: SovdRequest
) -> None:
    request = build_request(name, params)

    assert request == expected
    assert type(request.body) is type(expected.body)  # 250.0 must become an int
    if isinstance(request.body, dict):
        parameters = request.body["parameters"]
        assert isinstance(parameters, dict)
        assert type(parameters["durationMs"]) is int


@pytest.mark.parametrize(
    ("name", "params", "field", "rule", "message"),
    [
        (
            "ListData",
            {"component": "radio"},
            "params.component",
            "enum",
            "params.component 'radio' is not a known component "
            "(known: engine, transmission, brakes, body)",
        ),
        (
            "ListData",
            {"component": 16},
            "params.component",
            "type",
            "params.component must be a string, one of engine, transmission, brakes, body, got int",
        ),
        (
            "ListComponents",
            {"component": "engine"},
            "params.component",
            "additionalProperties",
            "ListComponents takes no parameter 'component'; it takes none",
        ),
        (
            "ReadData",
            {"component": "engine", "dataId": "../faults"},
            "params.dataId",
            "pattern",
            "params.dataId must match ^([a-z][a-z0-9-]{0,62}|0x[0-9A-Fa-f]{4})$, got '../faults'",
        ),
        (
            "ListFaults",
            {"component": "engine", "status": "active"},
            "params.status",
            "enum",
            "params.status 'active' is not a known fault status (known: confirmed, pending)",
        ),
        (
            "ClearFaults",
            {"component": "engine", "code": "p0420"},
            "params.code",
            "pattern",
            "params.code must match ^[PCBU][0-9A-F]{4}$, got 'p0420'",
        ),
        (
            "StartOperation",
            {"component": "engine", "operation": "reset"},
            "params.operation",
            "enum",
            "params.operation 'reset' is not a known operation (known: selftest)",
        ),
        (
            "StartOperation",
            {"component": "engine", "operation": "selftest", "durationMs": 99},
            "params.durationMs",
            "minimum",
            "params.durationMs must be from 100 to 20000, got 99",
        ),
        (
            "StartOperation",
            {"component": "engine", "operation": "selftest", "durationMs": 20001},
            "params.durationMs",
            "maximum",
            "params.durationMs must be from 100 to 20000, got 20001",
        ),
        (
            "StartOperation",
            {"component": "engine", "operation": "selftest", "durationMs": "500"},
            "params.durationMs",
            "type",
            "params.durationMs must be an integer from 100 to 20000, got str",
        ),
        (
            "StartOperation",
            {"component": "engine", "operation": "selftest", "durationMs": True},
            "params.durationMs",
            "type",
            "params.durationMs must be an integer from 100 to 20000, got bool",
        ),
        (
            "StartOperation",
            {"component": "engine", "operation": "selftest", "durationMs": 250.5},
            "params.durationMs",
            "type",
            "params.durationMs must be an integer from 100 to 20000, got float",
        ),
        (
            "StopOperation",
            {"component": "engine", "operation": "selftest"},
            "params.executionId",
            "required",
            "StopOperation requires params.executionId",
        ),
        (
            "StopOperation",
            {"component": "engine", "operation": "selftest", "executionId": "42"},
            "params.executionId",
            "pattern",
            "params.executionId must match ^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-"
            "[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$, got '42'",
        ),
    ],
)
def test_sovd_command_errors_name_the_field_and_rule(
    name: str, params: dict[str, JSON], field: str, rule: str, message: str
) -> None:
    error = _error(name, params)

    assert (error.field, error.rule, str(error)) == (field, rule, message)


# --- the published JSON Schema agrees with the validation ---------------------------------------


def _validator(name: str) -> jsonschema_rs.Validator:
    schema = CATALOG[name].params_schema()
    jsonschema_rs.meta.validate(schema)  # a well-formed draft 2020-12 schema
    return jsonschema_rs.Draft202012Validator(schema)


def _valid_cases() -> Iterator[tuple[str, dict[str, JSON]]]:
    for spec in CATALOG.values():
        for example in spec.examples:
            yield spec.name, dict(example)


def _invalid_cases() -> Iterator[tuple[str, dict[str, JSON]]]:
    """For every command, every way its fullest example can break one rule."""
    for spec in CATALOG.values():
        examples: list[dict[str, JSON]] = [dict(example) for example in spec.examples]
        base = max(examples, key=len)
        yield spec.name, {**base, "unexpected": "x"}
        for param in spec.params:
            if param.required:
                yield spec.name, {k: v for k, v in base.items() if k != param.name}
            wrong: list[JSON]
            if isinstance(param, IntegerParam):
                wrong = ["500", True, None, 250.5, [250], param.minimum - 1, param.maximum + 1]
            else:
                wrong = [1, None, False, ["x"], {"x": "y"}, "", "../x", "x\n", "ZZ"]
            for value in wrong:
                yield spec.name, {**base, param.name: value}
    # Values that pass a pattern but not the enum behind it.
    yield "ReadDTC", {"ecuAddress": "0x7f"}
    yield "ClearDTC", {"ecuAddress": "0x11", "dtcCode": "P0420"}


def test_every_command_has_a_valid_example_and_a_described_schema() -> None:
    for spec in CATALOG.values():
        assert spec.examples, spec.name
        schema = spec.params_schema()
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["additionalProperties"] is False
        properties = schema["properties"]
        assert isinstance(properties, dict)
        for prop in properties.values():
            assert isinstance(prop, dict) and prop["description"], spec.name


@pytest.mark.parametrize(("name", "params"), list(_valid_cases()))
def test_examples_validate_against_the_schema_and_build(name: str, params: dict[str, JSON]) -> None:
    assert _validator(name).is_valid(params)
    build_request(name, params)


@pytest.mark.parametrize(("name", "params"), list(_invalid_cases()))
def test_invalid_params_are_rejected_by_both_for_the_same_reason(
    name: str, params: dict[str, JSON]
) -> None:
    schema_errors = list(_validator(name).iter_errors(params))
    error = _error(name, params)

    assert schema_errors, f"the published schema accepts {params} but build_request does not"
    reasons = {
        (e.kind.name, ".".join(["params", *map(str, e.instance_path)])) for e in schema_errors
    }
    if error.rule in ("required", "additionalProperties"):
        # The schema reports these on the params object, naming the property in its message.
        assert error.rule in {rule for rule, _ in reasons}
        prop = error.field.removeprefix("params.")
        assert any(prop in e.message for e in schema_errors if e.kind.name == error.rule)
    else:
        assert (error.rule, error.field) in reasons


def test_the_generated_invalid_cases_cover_every_rule() -> None:
    rules = {_error(name, params).rule for name, params in _invalid_cases()}

    assert rules == {
        "additionalProperties",
        "required",
        "type",
        "pattern",
        "enum",
        "minimum",
        "maximum",
    }


@pytest.mark.parametrize("spec", CATALOG.values(), ids=list(CATALOG))
def test_every_path_variable_is_constrained_to_a_safe_segment(spec: CommandSpec) -> None:
    params = {p.name: p for p in spec.params}
    for variable in re.findall(r"\{(\w+)\}", spec.path):
        param = params.get(variable)
        if param is None:
            # Derived from other parameters (component from ecuAddress).
            assert variable == "component" and "ecuAddress" in params, variable
            continue
        assert isinstance(param, StringParam), variable
        assert param.pattern is not None or param.enum is not None, variable
        for allowed in param.enum or ():
            assert re.fullmatch(r"[A-Za-z0-9._-]+", allowed), allowed
        if param.pattern is not None:
            assert "/" not in param.pattern and param.pattern.startswith("^"), param.pattern
            assert param.pattern.endswith("$"), param.pattern
