"""Who may call what: every HTTP route against every role, from one table.

The table is written by hand from the rules in the README (viewer reads the
fleet; engineer submits commands and reads and cancels its own; admin does
everything). A route the table does not name fails the test, so a new route
cannot ship without deciding who may call it.
"""

from __future__ import annotations

import enum

import pytest

from tests.support.app import SQLITE, app_rules
from tests.support.node import VINS, Node


class Access(enum.Enum):
    """The least a caller needs; OWN_* routes also need the command to be theirs (or admin)."""

    PUBLIC = "anyone"
    VIEWER = "viewer"
    ENGINEER = "engineer"
    ADMIN = "admin"
    OWN_VIEWER = "the command's submitter or an admin"
    OWN_ENGINEER = "the command's submitter (engineer) or an admin"


ROUTES: dict[tuple[str, str], Access] = {
    ("post", "/api/v1/auth/login"): Access.PUBLIC,
    ("post", "/api/v1/auth/refresh"): Access.PUBLIC,
    ("post", "/api/v1/auth/logout"): Access.VIEWER,
    ("get", "/api/v1/auth/me"): Access.VIEWER,
    ("post", "/api/v1/auth/password"): Access.VIEWER,
    ("get", "/api/v1/users"): Access.ADMIN,
    ("post", "/api/v1/users"): Access.ADMIN,
    ("get", "/api/v1/users/{user_id}"): Access.ADMIN,
    ("patch", "/api/v1/users/{user_id}"): Access.ADMIN,
    ("post", "/api/v1/users/{user_id}/unlock"): Access.ADMIN,
    ("get", "/api/v1/vehicles"): Access.VIEWER,
    ("post", "/api/v1/vehicles"): Access.ADMIN,
    ("get", "/api/v1/vehicles/{vin}"): Access.VIEWER,
    ("patch", "/api/v1/vehicles/{vin}"): Access.ADMIN,
    ("post", "/api/v1/vehicles/{vin}/token"): Access.ADMIN,
    ("post", "/api/v1/vehicles/{vin}/disable"): Access.ADMIN,
    ("post", "/api/v1/vehicles/{vin}/enable"): Access.ADMIN,
    ("get", "/api/v1/catalog"): Access.VIEWER,
    ("get", "/api/v1/catalog/{name}"): Access.VIEWER,
    ("post", "/api/v1/commands"): Access.ENGINEER,
    ("get", "/api/v1/commands"): Access.VIEWER,
    ("get", "/api/v1/commands/{command_id}"): Access.OWN_VIEWER,
    ("get", "/api/v1/commands/{command_id}/events"): Access.OWN_VIEWER,
    ("post", "/api/v1/commands/{command_id}/cancel"): Access.OWN_ENGINEER,
    ("get", "/api/v1/audit"): Access.ADMIN,
    ("get", "/api/v1/audit/export"): Access.ADMIN,
    ("get", "/health/live"): Access.PUBLIC,
    ("get", "/health/ready"): Access.PUBLIC,
}

RANK = {"viewer": 1, "engineer": 2, "admin": 3}
NEEDS = {
    Access.VIEWER: 1,
    Access.OWN_VIEWER: 1,
    Access.ENGINEER: 2,
    Access.OWN_ENGINEER: 2,
    Access.ADMIN: 3,
}
#: Who calls: no token, each role, and `other`, an engineer who owns none of the commands.
CALLERS = (None, "viewer", "engineer", "other", "admin")


def app_routes() -> set[tuple[str, str]]:
    """(method, path) of every HTTP route of the app."""
    return {(method, path) for path, method in app_rules()}


def test_the_table_names_every_route_the_app_has() -> None:
    rules = app_routes()
    missing = rules - set(ROUTES)
    assert not missing, f"decide who may call {sorted(missing)} and add it to ROUTES"
    stale = {route for route in set(ROUTES) - rules if not route[1].startswith("/api/v1/audit")}
    assert not stale, f"ROUTES names routes that do not exist: {sorted(stale)}"


def expected(access: Access, caller: str | None) -> set[int] | None:
    """The statuses `caller` must get; None: anything but 401 and 403."""
    if access is Access.PUBLIC:
        return None
    if caller is None:
        return {401}
    role = "engineer" if caller == "other" else caller
    if RANK[role] < NEEDS[access]:
        return {403}
    owns = caller in ("engineer", "admin")  # the engineer submitted the command under test
    if access in (Access.OWN_VIEWER, Access.OWN_ENGINEER) and not owns:
        return {404}  # someone else's command is not shown to exist
    return None


@SQLITE
async def test_every_route_enforces_its_role_and_ownership(node: Node) -> None:
    submitted = await node.submit(VINS[0], "ReadDTC", {"ecuAddress": "0x10"}, ttl_s=600)
    assert submitted.status_code == 202, submitted.text
    users = await node.http.get("/api/v1/users", headers=await node.headers("admin"))
    viewer_id = next(u["id"] for u in users.json()["items"] if u["username"] == "viewer")
    values = {
        "vin": VINS[1],
        "user_id": str(viewer_id),
        "command_id": submitted.json()["id"],
        "name": "ReadDTC",
    }
    failures = []
    routes = app_routes()
    for (method, template), access in sorted(ROUTES.items(), key=_logout_last):
        if template.startswith("/api/v1/audit") and (method, template) not in routes:
            continue  # the audit routes arrive with the durability work
        path = template.format(**values)
        for caller in CALLERS:
            headers = {} if caller is None else await node.headers(caller)
            body: dict[str, object] | None = {} if method in ("post", "patch") else None
            response = await node.http.request(method, path, json=body, headers=headers)
            want = expected(access, caller)
            got = response.status_code
            wrong = (got not in want) if want is not None else got in (401, 403)
            if wrong:
                failures.append(f"{method.upper()} {path} as {caller}: {got} {response.text[:200]}")
    assert not failures, "\n".join(failures)


def _logout_last(item: tuple[tuple[str, str], Access]) -> tuple[bool, str, str]:
    (method, template), _ = item
    return (template.endswith("/logout"), template, method)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_logout_needs_a_session_and_ends_only_its_own(node: Node) -> None:
    assert (await node.http.post("/api/v1/auth/logout")).status_code == 401
    viewer = await node.headers("viewer")
    engineer = await node.headers("engineer")
    assert (await node.http.post("/api/v1/auth/logout", headers=viewer)).status_code == 204
    assert (await node.http.get("/api/v1/auth/me", headers=viewer)).status_code == 401
    assert (await node.http.get("/api/v1/auth/me", headers=engineer)).status_code == 200
