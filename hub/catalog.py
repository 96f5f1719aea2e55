"""The command catalog: named commands an operator may run, mapped onto SOVD requests.

Sans-IO: `build_request(name, params)` validates strictly (no extra
properties) and returns the `SovdRequest` the vehicle will receive, or raises
`CatalogError` naming the field and the rule it broke.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hub.errors import CatalogError
from hub.model import JSON, SovdRequest

#: ECU addresses of the seed catalog and the SOVD component each one is.
ECU_COMPONENTS: Mapping[int, str] = {
    0x10: "engine",
    0x18: "transmission",
    0x28: "brakes",
    0x40: "body",
}


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a command: a string matching `pattern`."""

    name: str
    pattern: str
    required: bool = True

    def check(self, value: JSON) -> str:
        if not isinstance(value, str):
            raise CatalogError(
                f"params.{self.name}",
                "type",
                f"params.{self.name} must be a string matching {self.pattern}, "
                f"got {type(value).__name__}",
            )
        if re.fullmatch(self.pattern, value) is None:
            raise CatalogError(
                f"params.{self.name}",
                "pattern",
                f"params.{self.name} must match {self.pattern}, got {value!r}",
            )
        return value


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """A catalog entry: its parameters and how valid parameters become a SOVD request."""

    name: str
    params: tuple[Param, ...]
    to_sovd: Callable[[Mapping[str, str]], SovdRequest]


ECU_ADDRESS = Param("ecuAddress", r"^0x[0-9A-Fa-f]{2}$")


def _component(params: Mapping[str, str]) -> str:
    address = int(params["ecuAddress"], 16)
    component = ECU_COMPONENTS.get(address)
    if component is None:
        known = ", ".join(f"0x{a:02X}" for a in ECU_COMPONENTS)
        raise CatalogError(
            "params.ecuAddress",
            "enum",
            f"params.ecuAddress {params['ecuAddress']} is not a known ECU (known: {known})",
        )
    return component


def _read_dtc(params: Mapping[str, str]) -> SovdRequest:
    return SovdRequest("GET", f"/components/{_component(params)}/faults")


def _clear_dtc(params: Mapping[str, str]) -> SovdRequest:
    path = f"/components/{_component(params)}/faults"
    if "dtcCode" in params:
        path += f"/{params['dtcCode']}"
    return SovdRequest("DELETE", path)


def _read_data(params: Mapping[str, str]) -> SovdRequest:
    did = "0x" + params["dataId"][2:].upper()
    return SovdRequest("GET", f"/components/{_component(params)}/data/{did}")


CATALOG: Mapping[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        CommandSpec("ReadDTC", (ECU_ADDRESS,), _read_dtc),
        CommandSpec(
            "ClearDTC", (ECU_ADDRESS, Param("dtcCode", r"^P[0-9A-F]{4}$", False)), _clear_dtc
        ),
        CommandSpec(
            "ReadDataByID", (ECU_ADDRESS, Param("dataId", r"^0x[0-9A-Fa-f]{4}$")), _read_data
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
            raise CatalogError(
                f"params.{key}",
                "additionalProperties",
                f"{name} takes no parameter {key!r}; allowed: {', '.join(sorted(allowed))}",
            )
    checked: dict[str, str] = {}
    for param in spec.params:
        if param.name in params:
            checked[param.name] = param.check(params[param.name])
        elif param.required:
            raise CatalogError(
                f"params.{param.name}", "required", f"{name} requires params.{param.name}"
            )
    return spec.to_sovd(checked)
