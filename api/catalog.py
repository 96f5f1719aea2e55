"""Catalog routes: the commands an operator may submit, each with the JSON Schema of its params.

The schemas come from the same definitions (`hub.CATALOG`) that validate
`POST /api/v1/commands`, so what is published is what is enforced.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, JsonValue
from quart import Blueprint
from quart_schema import validate_response

from api.access import requires
from api.auth import Role
from api.errors import ApiError
from hub import CATALOG, CommandSpec

catalog = Blueprint("catalog", __name__, url_prefix="/api/v1/catalog")


class SovdMappingOut(BaseModel):
    method: str = Field(description="SOVD method the command sends")
    path: str = Field(
        description="SOVD path template: {name} is a parameter's value (component is derived "
        "from ecuAddress for the ECU-addressed commands); a part in [...] is present only "
        "when its parameters are given"
    )
    query: list[str] = Field(description="parameters sent in the query string")
    body: list[str] = Field(
        description='parameters sent in the request body as {"parameters": {...}}'
    )


class CatalogCommandOut(BaseModel):
    name: str
    description: str
    sovd: SovdMappingOut
    params: dict[str, JsonValue] = Field(
        description="JSON Schema (draft 2020-12) of the command's params object"
    )
    examples: list[dict[str, JsonValue]] = Field(description="valid params objects")


class CatalogOut(BaseModel):
    items: list[CatalogCommandOut]
    total: int


def _command_out(spec: CommandSpec) -> CatalogCommandOut:
    return CatalogCommandOut(
        name=spec.name,
        description=spec.description,
        sovd=SovdMappingOut(
            method=spec.method, path=spec.path, query=list(spec.query), body=list(spec.body)
        ),
        params=spec.params_schema(),
        examples=[dict(example) for example in spec.examples],
    )


# The catalog is fixed for the life of the process: build its answer once.
_CATALOG_OUT = CatalogOut(
    items=[_command_out(spec) for spec in CATALOG.values()], total=len(CATALOG)
)


@catalog.get("")
@requires(Role.VIEWER)
@validate_response(CatalogOut)
async def list_catalog() -> CatalogOut:
    """Every command of the catalog: its SOVD mapping and the JSON Schema of its params."""
    return _CATALOG_OUT


@catalog.get("/<name>")
@requires(Role.VIEWER)
@validate_response(CatalogCommandOut)
async def get_catalog_command(name: str) -> CatalogCommandOut:
    """One command of the catalog, by name."""
    spec = CATALOG.get(name)
    if spec is None:
        raise ApiError(
            404,
            "unknown_command",
            f"no catalog command {name!r}; known: {', '.join(sorted(CATALOG))}",
        )
    return _command_out(spec)
