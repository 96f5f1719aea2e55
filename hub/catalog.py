"""The command catalog: named commands an operator may run, mapped onto SOVD requests.

Sans-IO. One definition per command (`hub.catalog_spec.CommandSpec`) drives
both the strict validation of submissions (`build_request`) and the JSON
Schema the API publishes (`CommandSpec.params_schema`), so the two cannot
drift apart.

- `build_request(name, params)` validates strictly (no extra properties) and
  returns the `SovdRequest` the vehicle will receive, or raises `CatalogError`
  naming the field and the rule it broke (`type`, `pattern`, `enum`,
  `minimum`, `maximum`, `required`, `additionalProperties`).
- A command's `path` is a template: `{name}` is a parameter's value (or a
  value derived from parameters, such as `component` from `ecuAddress`), and a
  part in `[...]` is present only when every parameter in it was given.
  `query` names the parameters sent in the query string, `body` those sent as
  the request body's `parameters` object (SOVD's operation-execution shape).
"""

from __future__ import annotations

from collections.abc import Mapping

from hub.catalog_spec import (
    JSON_SCHEMA_DIALECT,
    CommandSpec,
    IntegerParam,
    Param,
    StringParam,
    Value,
)
from hub.errors import CatalogError
from hub.model import JSON, SovdRequest

__all__ = [
    "CATALOG",
    "ECU_COMPONENTS",
    "FAULT_STATUSES",
    "JSON_SCHEMA_DIALECT",
    "OPERATIONS",
    "CommandSpec",
    "IntegerParam",
    "Param",
    "StringParam",
    "build_request",
]

#: ECU addresses of the seed catalog and the SOVD component each one is.
ECU_COMPONENTS: Mapping[int, str] = {
    0x10: "engine",
    0x18: "transmission",
    0x28: "brakes",
    0x40: "body",
}

#: Statuses a stored fault can have, as the vehicles report them.
FAULT_STATUSES = ("confirmed", "pending")

#: Operations the vehicles' components can run.
OPERATIONS = ("selftest",)


# --- parameters ------------------------------------------------------------------------------

ECU_ADDRESS = StringParam(
    "ecuAddress",
    "ECU address (UDS), e.g. 0x10; it selects the SOVD component",
    pattern=r"^0x[0-9A-Fa-f]{2}$",
    # The known addresses have no hex letters, so the enum needs no case folding.
    enum=tuple(f"0x{a:02X}" for a in ECU_COMPONENTS),
    enum_noun="ECU",
)
COMPONENT = StringParam(
    "component",
    "SOVD component",
    enum=tuple(ECU_COMPONENTS.values()),
    enum_noun="component",
)
DATA_ID = StringParam(
    "dataId",
    "data item: a component's item such as engine-speed (see ListData), or a vehicle data "
    "identifier such as 0xF190",
    pattern=r"^([a-z][a-z0-9-]{0,62}|0x[0-9A-Fa-f]{4})$",
)
FAULT_CODE = StringParam(
    "code",
    "diagnostic trouble code, e.g. P0420 or C0035",
    pattern=r"^[PCBU][0-9A-F]{4}$",
    required=False,
)
OPERATION = StringParam("operation", "operation to run", enum=OPERATIONS, enum_noun="operation")
EXECUTION_ID = StringParam(
    "executionId",
    "the execution to address: the id of the StartOperation command that started it",
    pattern=r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$",
)


def _ecu_component(params: Mapping[str, Value]) -> str:
    return ECU_COMPONENTS[int(str(params["ecuAddress"]), 16)]


def _canonical_did(data_id: str) -> str:
    """Vehicle data identifiers travel as 0x and upper-case hex; named items unchanged."""
    return "0x" + data_id[2:].upper() if data_id.startswith("0x") else data_id


def _seed_paths(params: Mapping[str, Value]) -> Mapping[str, str]:
    derived = {"component": _ecu_component(params)}
    if "dataId" in params:
        derived["dataId"] = _canonical_did(str(params["dataId"]))
    return derived


def _sovd_paths(params: Mapping[str, Value]) -> Mapping[str, str]:
    derived: dict[str, str] = {}
    if "dataId" in params:
        derived["dataId"] = _canonical_did(str(params["dataId"]))
    if "executionId" in params:
        derived["executionId"] = str(params["executionId"]).lower()
    return derived


_OPERATION_PATH = "/components/{component}/operations/{operation}/executions"
_ENGINE = {"component": "engine"}

CATALOG: Mapping[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        # The seed's commands, addressed by ECU.
        CommandSpec(
            "ReadDTC",
            "Read the stored trouble codes of an ECU: one progress event per fault, then a summary",
            "GET",
            "/components/{component}/faults",
            (ECU_ADDRESS,),
            derive=_seed_paths,
            examples=({"ecuAddress": "0x10"},),
        ),
        CommandSpec(
            "ClearDTC",
            "Clear every stored trouble code of an ECU, or only dtcCode",
            "DELETE",
            "/components/{component}/faults[/{dtcCode}]",
            (
                ECU_ADDRESS,
                StringParam(
                    "dtcCode",
                    "powertrain trouble code, e.g. P0420",
                    r"^P[0-9A-F]{4}$",
                    required=False,
                ),
            ),
            derive=_seed_paths,
            examples=({"ecuAddress": "0x10"}, {"ecuAddress": "0x10", "dtcCode": "P0420"}),
        ),
        CommandSpec(
            "ReadDataByID",
            "Read a vehicle data identifier through an ECU",
            "GET",
            "/components/{component}/data/{dataId}",
            (
                ECU_ADDRESS,
                StringParam("dataId", "data identifier, e.g. 0xF190", r"^0x[0-9A-Fa-f]{4}$"),
            ),
            derive=_seed_paths,
            examples=({"ecuAddress": "0x10", "dataId": "0xF190"},),
        ),
        # SOVD-shaped commands, addressed by component.
        CommandSpec(
            "ListComponents",
            "List the vehicle's components (ECUs)",
            "GET",
            "/components",
        ),
        CommandSpec(
            "ListData",
            "List the data items a component can read",
            "GET",
            "/components/{component}/data",
            (COMPONENT,),
            examples=(_ENGINE,),
        ),
        CommandSpec(
            "ReadData",
            "Read one data item of a component",
            "GET",
            "/components/{component}/data/{dataId}",
            (COMPONENT, DATA_ID),
            derive=_sovd_paths,
            examples=(
                {"component": "engine", "dataId": "engine-speed"},
                {"component": "body", "dataId": "0xF190"},
            ),
        ),
        CommandSpec(
            "ListFaults",
            "List a component's stored faults, optionally only those with one status",
            "GET",
            "/components/{component}/faults",
            (
                COMPONENT,
                StringParam(
                    "status",
                    "only faults with this status",
                    enum=FAULT_STATUSES,
                    enum_noun="fault status",
                    required=False,
                ),
            ),
            query=("status",),
            examples=(_ENGINE, {"component": "engine", "status": "confirmed"}),
        ),
        CommandSpec(
            "ClearFaults",
            "Clear every stored fault of a component, or only the one with code",
            "DELETE",
            "/components/{component}/faults[/{code}]",
            (COMPONENT, FAULT_CODE),
            examples=(_ENGINE, {"component": "brakes", "code": "C0035"}),
        ),
        CommandSpec(
            "ListOperations",
            "List the operations a component can run",
            "GET",
            "/components/{component}/operations",
            (COMPONENT,),
            examples=(_ENGINE,),
        ),
        CommandSpec(
            "StartOperation",
            "Run an operation: accepted (body: the execution id, which is this command's id), "
            "progress events, then a result; StopOperation ends it early",
            "POST",
            _OPERATION_PATH,
            (
                COMPONENT,
                OPERATION,
                IntegerParam(
                    "durationMs",
                    "how long the routine runs, in milliseconds",
                    minimum=100,
                    maximum=20_000,
                    default=3_000,
                ),
            ),
            body=("durationMs",),
            examples=(
                {"component": "engine", "operation": "selftest"},
                {"component": "brakes", "operation": "selftest", "durationMs": 500},
            ),
        ),
        CommandSpec(
            "StopOperation",
            "Stop a running execution; its StartOperation command then ends with a result "
            'whose body has "status": "stopped"',
            "DELETE",
            _OPERATION_PATH + "/{executionId}",
            (COMPONENT, OPERATION, EXECUTION_ID),
            derive=_sovd_paths,
            examples=(
                {
                    "component": "engine",
                    "operation": "selftest",
                    "executionId": "3f2b8c1e-0d4a-4e7b-9a51-6c2d9e8f7a10",
                },
            ),
        ),
        CommandSpec(
            "GetOperationStatus",
            "Read the status of an execution: running, completed, stopped or aborted",
            "GET",
            _OPERATION_PATH + "/{executionId}",
            (COMPONENT, OPERATION, EXECUTION_ID),
            derive=_sovd_paths,
            examples=(
                {
                    "component": "engine",
                    "operation": "selftest",
                    "executionId": "3f2b8c1e-0d4a-4e7b-9a51-6c2d9e8f7a10",
                },
            ),
        ),
    )
}


def build_request(name: str, params: Mapping[str, JSON]) -> SovdRequest:
    """Validate `params` for the command `name` and return its SOVD request.

    Raises `CatalogError` for an unknown command, a missing or unexpected
    parameter, or a value that breaks its rule.
    """
    spec = CATALOG.get(name)
    if spec is None:
        raise CatalogError(
            "command", "enum", f"unknown command {name!r}; known: {', '.join(sorted(CATALOG))}"
        )
    allowed = {p.name for p in spec.params}
    for key in params:
        if key not in allowed:
            takes = f"allowed: {', '.join(sorted(allowed))}" if allowed else "it takes none"
            raise CatalogError(
                f"params.{key}",
                "additionalProperties",
                f"{name} takes no parameter {key!r}; {takes}",
            )
    checked: dict[str, Value] = {}
    for param in spec.params:
        if param.name in params:
            checked[param.name] = param.check(params[param.name])
        elif isinstance(param, IntegerParam) and param.default is not None:
            checked[param.name] = param.default
        elif param.required:
            raise CatalogError(
                f"params.{param.name}", "required", f"{name} requires params.{param.name}"
            )
    return spec.to_sovd(checked)
