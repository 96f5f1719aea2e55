"""Weak new passwords are refused over real HTTP (and by the CLI), naming the rule they break."""

from __future__ import annotations

import pytest

from api.passwords import WeakPassword, check_new_password, common_passwords
from tests.support.accounts import bearer, error_code, login
from tests.support.fleet_check import assert_unrelated_command_succeeds
from tests.support.node import PASSWORD, Node

WEAK = [
    (" " * 12, "password_repetitive"),
    ("\t \t \t \t \t \t ", "password_repetitive"),
    ("aaaaaaaaaaaa", "password_repetitive"),
    ("abcabcabcabc", "password_repetitive"),
    ("123456789012", "password_repetitive"),
    ("maintenance.lead", "password_contains_username"),
    ("Maintenance.Lead 2024", "password_contains_username"),
    ("password1234", "password_common"),
    ("Password1234!", "password_common"),
    ("qwertyuiop123", "password_common"),
    ("Correct Horse Battery Staple", "password_common"),
]


async def test_weak_passwords_are_refused_for_new_users_naming_the_rule(node: Node) -> None:
    admin = await node.headers("admin")
    for password, rule in WEAK:
        new = {"username": "maintenance.lead", "password": password, "role": "viewer"}
        response = await node.http.post("/api/v1/users", json=new, headers=admin)
        assert (response.status_code, error_code(response)) == (422, "weak_password"), password
        [detail] = response.json()["error"]["details"]
        assert (detail["field"], detail["rule"]) == ("password", rule), password
        assert response.json()["error"]["message"].startswith("password "), password
    assert await node.db.accounts.get_user("maintenance.lead") is None

    short = {"username": "maintenance.lead", "password": "short", "role": "viewer"}
    too_short = await node.http.post("/api/v1/users", json=short, headers=admin)
    assert (too_short.status_code, error_code(too_short)) == (422, "validation_failed")

    fine = {"username": "maintenance.lead", "password": "tulip ladder orbit", "role": "viewer"}
    created = await node.http.post("/api/v1/users", json=fine, headers=admin)
    assert created.status_code == 201, created.text
    await assert_unrelated_command_succeeds(node)


async def test_weak_new_passwords_are_refused_on_a_password_change(node: Node) -> None:
    tokens = await login(node, "viewer")
    url = "/api/v1/auth/password"
    for password, rule in [
        ("viewer viewer viewer", "password_contains_username"),
        ("password1234", "password_common"),
        (" " * 12, "password_repetitive"),
    ]:
        body = {"current_password": PASSWORD, "new_password": password}
        response = await node.http.post(url, json=body, headers=bearer(tokens))
        assert (response.status_code, error_code(response)) == (422, "weak_password"), password
        [detail] = response.json()["error"]["details"]
        assert (detail["field"], detail["rule"]) == ("new_password", rule)
        assert response.json()["error"]["message"].startswith("new_password ")
    await login(node, "viewer")  # the old password still works: nothing changed


async def test_existing_passwords_keep_working(node: Node) -> None:
    await node.db.accounts.add_user("legacy", "aaaaaaaaaaaa", "viewer")  # set before the rules
    assert (await login(node, "legacy", "aaaaaaaaaaaa"))["access_token"]


def test_the_built_in_list_has_a_few_hundred_lowercase_entries() -> None:
    common = common_passwords()
    assert len(common) >= 300
    assert all(entry == entry.lower() and entry.strip() == entry for entry in common)


@pytest.mark.parametrize(
    "password",
    ["tulip ladder orbit", "correct horse battery", "zebra-42-quartz!", "ab" * 5 + "xyz"],
)
def test_reasonable_passwords_pass(password: str) -> None:
    check_new_password(password, "maintenance.lead")


def test_a_short_username_is_refused_only_as_the_whole_password() -> None:
    check_new_password("education matters", "ed")
    with pytest.raises(WeakPassword) as caught:
        check_new_password("Bo", "bo")
    assert caught.value.rule == "password_too_short"
