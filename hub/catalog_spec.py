"""The building blocks of the command catalog: typed parameters and command specs.

Sans-IO. A parameter both checks a submitted value (`check`, raising
`CatalogError` that names the field and the rule) and describes itself as a
JSON Schema (draft 2020-12) property (`schema`): one definition, so the
published schema and the validation cannot drift apart. `hub.catalog` holds
the commands built from them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hub.errors import CatalogError
from hub.model import JSON, SovdRequest

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: A checked parameter value: what `build_request` hands to path, query and body.
Value = str | int


@dataclass(frozen=True, slots=True)
class StringParam:
    """A string parameter: it must match `pattern` (when set), then be one of `enum` (when set).

    `enum_noun` names what the enum lists in messages ("ECU": "0x7f is not a
    known ECU"). Values that become path segments must be constrained by a
    pattern or an enum that excludes `/`.
    """

    name: str
    description: str
    pattern: str | None = None
    enum: tuple[str, ...] | None = None
    enum_noun: str = "value"
    required: bool = True

    def check(self, value: JSON) -> str:
        """The value if it follows the rules; raises `CatalogError` naming the rule it broke."""
        field_ = f"params.{self.name}"
        if not isinstance(value, str):
            rule = f" matching {self.pattern}" if self.pattern else f", one of {_listed(self.enum)}"
            raise CatalogError(
                field_,
                "type",
                f"{field_} must be a string{rule}, got {type(value).__name__}",
            )
        if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
            raise CatalogError(
                field_, "pattern", f"{field_} must match {self.pattern}, got {value!r}"
            )
        if self.enum is not None and value not in self.enum:
            # Past the pattern the value is tame enough to print as is.
            shown = value if self.pattern is not None else repr(value)
            raise CatalogError(
                field_,
                "enum",
                f"{field_} {shown} is not a known {self.enum_noun} (known: {_listed(self.enum)})",
            )
        return value

    def schema(self) -> dict[str, JSON]:
        """This parameter as a JSON Schema (draft 2020-12) property."""
        out: dict[str, JSON] = {"type": "string", "description": self.description}
        if self.pattern is not None:
            out["pattern"] = self.pattern
        if self.enum is not None:
            out["enum"] = list(self.enum)
        return out


@dataclass(frozen=True, slots=True)
class IntegerParam:
    """An integer parameter within `minimum`..`maximum`; `default` applies when it is absent.

    As in JSON Schema, a number with no fractional part (`3.0`) is an integer;
    `true` and `false` are not.
    """

    name: str
    description: str
    minimum: int
    maximum: int
    default: int | None = None

    @property
    def required(self) -> bool:
        """A parameter with a default may be left out."""
        return self.default is None

    def check(self, value: JSON) -> int:
        """The value as an int if it follows the rules; raises `CatalogError` otherwise."""
        field_ = f"params.{self.name}"
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise CatalogError(
                field_,
                "type",
                f"{field_} must be an integer from {self.minimum} to {self.maximum}, "
                f"got {type(value).__name__}",
            )
        for rule, broken in (("minimum", value < self.minimum), ("maximum", value > self.maximum)):
            if broken:
                raise CatalogError(
                    field_,
                    rule,
                    f"{field_} must be from {self.minimum} to {self.maximum}, got {value}",
                )
        return value

    def schema(self) -> dict[str, JSON]:
        """This parameter as a JSON Schema (draft 2020-12) property."""
        out: dict[str, JSON] = {
            "type": "integer",
            "description": self.description,
            "minimum": self.minimum,
            "maximum": self.maximum,
        }
        if self.default is not None:
            out["default"] = self.default
        return out


Param = StringParam | IntegerParam
Derive = Callable[[Mapping[str, Value]], Mapping[str, str]]


def _no_derived(params: Mapping[str, Value]) -> Mapping[str, str]:
    return {}


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """A catalog entry: its parameters and the SOVD request valid parameters become.

    `derive` computes path values from the checked parameters (e.g. the
    component of an ECU address); `examples` are valid parameter sets, shown
    to operators and checked by the tests against both the schema and
    `build_request`.
    """

    name: str
    description: str
    method: str
    path: str
    params: tuple[Param, ...] = ()
    query: tuple[str, ...] = ()
    body: tuple[str, ...] = ()
    derive: Derive = _no_derived
    examples: tuple[Mapping[str, JSON], ...] = ({},)

    def params_schema(self) -> dict[str, JSON]:
        """The JSON Schema (draft 2020-12) of this command's `params` object."""
        return {
            "$schema": JSON_SCHEMA_DIALECT,
            "title": f"{self.name} params",
            "type": "object",
            "properties": {p.name: p.schema() for p in self.params},
            "required": [p.name for p in self.params if p.required],
            "additionalProperties": False,
        }

    def to_sovd(self, checked: Mapping[str, Value]) -> SovdRequest:
        """The SOVD request of already checked parameters."""
        values = {name: str(value) for name, value in checked.items()}
        values.update(self.derive(checked))

        def optional(match: re.Match[str]) -> str:
            part = match.group(1)
            return part if all(v in values for v in _VARIABLE.findall(part)) else ""

        path = _VARIABLE.sub(lambda m: values[m.group(1)], _OPTIONAL.sub(optional, self.path))
        query = {name: values[name] for name in self.query if name in values}
        body: JSON = None
        if self.body:
            body = {"parameters": {name: checked[name] for name in self.body if name in checked}}
        return SovdRequest(self.method, path, query, body)


_VARIABLE = re.compile(r"\{(\w+)\}")
_OPTIONAL = re.compile(r"\[([^\]]*)\]")


def _listed(values: tuple[str, ...] | None) -> str:
    return ", ".join(values or ())
