"""Admin user management over real HTTP: list, create, read, change role or enabled."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.accounts import audit, bearer, error_code, login, me, refresh
from tests.support.node import PASSWORD, Node


async def user_id(node: Node, username: str) -> int:
    user = await node.db.accounts.get_user(username)
    assert user is not None
    return user.id


async def patch(node: Node, target: int, body: dict[str, Any], as_user: str = "admin") -> Any:
    return await node.http.patch(
        f"/api/v1/users/{target}", json=body, headers=await node.headers(as_user)
    )


async def test_admins_list_users_a_page_at_a_time(node: Node) -> None:
    headers = await node.headers("admin")

    everyone = await node.http.get("/api/v1/users", headers=headers)
    page = await node.http.get("/api/v1/users?limit=2&offset=1", headers=headers)
    bad = await node.http.get("/api/v1/users?limit=0", headers=headers)

    assert everyone.status_code == 200, everyone.text
    assert [u["username"] for u in everyone.json()["items"]] == [
        "admin",
        "engineer",
        "viewer",
        "other",
    ]
    assert everyone.json()["items"][0].keys() == {
        "id",
        "username",
        "role",
        "enabled",
        "created_at",
    }
    body = page.json()
    assert [u["username"] for u in body["items"]] == ["engineer", "viewer"]
    assert (body["total"], body["limit"], body["offset"]) == (4, 2, 1)
    assert (bad.status_code, error_code(bad)) == (422, "validation_failed")


@pytest.mark.parametrize("username", ["engineer", "viewer"])
async def test_only_admins_manage_users(node: Node, username: str) -> None:
    headers = await node.headers(username)
    target = await user_id(node, "other")

    responses = [
        await node.http.get("/api/v1/users", headers=headers),
        await node.http.get(f"/api/v1/users/{target}", headers=headers),
        await node.http.post(
            "/api/v1/users",
            json={"username": "eve", "password": "x" * 20, "role": "admin"},
            headers=headers,
        ),
        await node.http.patch(f"/api/v1/users/{target}", json={"role": "admin"}, headers=headers),
    ]

    assert [(r.status_code, error_code(r)) for r in responses] == [(403, "forbidden")] * 4
    assert await node.db.accounts.get_user("eve") is None
    other = await node.db.accounts.get_user("other")
    assert other is not None and other.role == "engineer"


async def test_create_a_user_who_can_then_log_in(node: Node) -> None:
    new = {"username": "dana.k", "password": "a long password", "role": "viewer"}
    headers = await node.headers("admin")

    created = await node.http.post("/api/v1/users", json=new, headers=headers)

    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["username"], body["role"], body["enabled"]) == ("dana.k", "viewer", True)
    assert created.headers["Location"] == f"/api/v1/users/{body['id']}"
    fetched = await node.http.get(created.headers["Location"], headers=headers)
    assert fetched.json() == body
    tokens = await login(node, "dana.k", "a long password")
    assert (await me(node, tokens)).json()["role"] == "viewer"
    [event] = await audit(node, "dana.k", "user.added")
    assert (event.actor, event.details) == ("admin", {"role": "viewer"})
    again = await node.http.post("/api/v1/users", json=new, headers=headers)
    assert (again.status_code, error_code(again)) == (409, "user_exists")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "bob", "password": "short", "role": "viewer"}, "password"),
        ({"username": "bob", "password": "é" * 40, "role": "viewer"}, "password"),
        ({"username": "bob smith", "password": "x" * 20, "role": "viewer"}, "username"),
        ({"username": "bob", "password": "x" * 20, "role": "root"}, "role"),
        ({"username": "bob", "password": "x" * 20}, "role"),
    ],
)
async def test_a_bad_new_user_is_refused_and_nothing_is_created(
    node: Node, body: dict[str, Any], field: str
) -> None:
    response = await node.http.post("/api/v1/users", json=body, headers=await node.headers("admin"))

    assert (response.status_code, error_code(response)) == (422, "validation_failed")
    assert response.json()["error"]["message"].startswith(field)
    assert await node.db.accounts.get_user(body["username"]) is None


async def test_an_unknown_user_is_404(node: Node) -> None:
    headers = await node.headers("admin")
    for url in ("/api/v1/users/9999", "/api/v1/users/99999999999"):
        response = await node.http.get(url, headers=headers)
        assert response.status_code == 404, url
    missing = await patch(node, 9999, {"enabled": False})
    assert (missing.status_code, error_code(missing)) == (404, "unknown_user")


async def test_a_new_role_logs_the_user_out_and_is_audited(node: Node) -> None:
    tokens = await login(node, "other")
    assert (await me(node, tokens)).status_code == 200

    response = await patch(node, await user_id(node, "other"), {"role": "viewer"})

    assert response.status_code == 200, response.text
    assert response.json()["role"] == "viewer"
    refused = await me(node, tokens)
    assert (refused.status_code, error_code(refused)) == (401, "session_revoked")
    fresh = await login(node, "other")
    submit = await node.http.post(
        "/api/v1/commands",
        json={"vin": "WVWZZZ1JZXW000001", "command": "ReadDTC", "params": {"ecuAddress": "0x10"}},
        headers=bearer(fresh),
    )
    assert submit.status_code == 403  # a viewer now
    [event] = await audit(node, "other", "user.updated")
    assert event.actor == "admin"
    assert event.details == {
        "before": {"role": "engineer", "enabled": True},
        "after": {"role": "viewer", "enabled": True},
        "sessions_revoked": 1,
    }


async def test_a_disabled_user_cannot_log_in_and_their_tokens_die(node: Node) -> None:
    tokens = await login(node, "other")
    target = await user_id(node, "other")

    disabled = await patch(node, target, {"enabled": False})

    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    assert error_code(await me(node, tokens)) == "session_revoked"
    assert error_code(await refresh(node, tokens["refresh_token"])) == "session_revoked"
    refused = await node.http.post(
        "/api/v1/auth/login", json={"username": "other", "password": PASSWORD}
    )
    wrong = await node.http.post(
        "/api/v1/auth/login", json={"username": "other", "password": "not the password"}
    )
    # No hint that the account exists or is disabled: the same answer as a wrong password.
    assert refused.status_code == wrong.status_code == 401
    assert _without_correlation(refused) == _without_correlation(wrong)
    [failure, _] = await audit(node, "other", "auth.login_failed")
    assert failure.details["reason"] == "disabled"

    enabled = await patch(node, target, {"enabled": True})
    assert enabled.json()["enabled"] is True
    await login(node, "other")


async def test_the_last_enabled_admin_cannot_be_demoted_or_disabled(node: Node) -> None:
    admin = await user_id(node, "admin")
    headers = await node.headers("admin")

    for body in ({"role": "engineer"}, {"enabled": False}, {"role": "viewer", "enabled": True}):
        response = await patch(node, admin, body)
        assert (response.status_code, error_code(response)) == (409, "last_admin"), body
        assert "last enabled admin" in response.json()["error"]["message"]
    # Nothing changed: still an admin, still logged in.
    assert (await node.http.get("/api/v1/users", headers=headers)).status_code == 200
    assert await audit(node, "admin", "user.updated") == []

    # Once another admin exists, the first may step down.
    promoted = await patch(node, await user_id(node, "engineer"), {"role": "admin"})
    assert promoted.status_code == 200
    stepped_down = await patch(node, admin, {"role": "engineer"})
    assert stepped_down.status_code == 200, stepped_down.text
    assert error_code(await node.http.get("/api/v1/users", headers=headers)) == "session_revoked"


async def test_an_empty_change_is_refused(node: Node) -> None:
    target = await user_id(node, "viewer")
    for body in ({}, {"role": None}, {"enabled": "false"}, {"username": "x"}):
        response = await patch(node, target, body)
        assert (response.status_code, error_code(response)) == (422, "validation_failed"), body
    user = await node.db.accounts.get_user("viewer")
    assert user is not None and (user.role, user.enabled) == ("viewer", True)


async def test_there_is_no_way_to_delete_a_user(node: Node) -> None:
    response = await node.http.delete(
        f"/api/v1/users/{await user_id(node, 'viewer')}", headers=await node.headers("admin")
    )

    assert response.status_code == 405
    assert await node.db.accounts.get_user("viewer") is not None


def _without_correlation(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    body["error"].pop("correlation_id")
    return body
