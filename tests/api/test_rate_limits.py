"""Rate limits and login throttling over HTTP, on a node with its limits in memory and on one
with them in Redis (and on one whose Redis is down).

The client address is varied with `X-Forwarded-For` (the nodes trust one proxy hop).
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.fleet_check import assert_unrelated_command_succeeds
from tests.support.network import closed_port
from tests.support.node import PASSWORD, VINS, Node, NodeSettings

LIMITS = {
    "submit_burst": 3,
    "submit_rate_per_s": 0.001,  # one token per 1000 s: nothing refills during a test
    "login_burst": 5,
    "login_rate_per_s": 0.001,
    "login_max_failures_per_user_address": 2,
    "login_max_failures_per_user": 4,
    "login_max_usernames_per_address": 3,
    "forwarded_for_hops": 1,
}


@pytest.fixture(params=["memory", "redis"])
def node_settings(request: pytest.FixtureRequest) -> NodeSettings:
    """The node's limits in memory, in Redis, or (`redis_down`, by indirect
    parametrization) configured with a Redis that does not answer."""
    if request.param == "memory":
        return NodeSettings(api=LIMITS)
    if request.param == "redis_down":
        return NodeSettings(api=LIMITS, storage={"redis_url": f"redis://127.0.0.1:{closed_port()}"})
    storage = {
        "redis_url": request.getfixturevalue("redis_url"),
        "redis_key_prefix": request.getfixturevalue("redis_key_prefix"),
    }
    return NodeSettings(api=LIMITS, storage=storage)


async def submit_waiting(node: Node, username: str = "engineer") -> httpx.Response:
    """Submit a command that may wait for its (offline) vehicle: 202 unless limited."""
    body = {"vin": VINS[0], "command": "ReadDTC", "params": {"ecuAddress": "0x10"}, "ttl_s": 60}
    return await node.http.post("/api/v1/commands", json=body, headers=await node.headers(username))


async def login(node: Node, username: str, password: str, address: str) -> httpx.Response:
    return await node.http.post(
        "/api/v1/auth/login",
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": address},
    )


async def test_submissions_past_the_burst_are_refused_with_429(node: Node) -> None:
    accepted = [await submit_waiting(node) for _ in range(3)]
    assert [r.status_code for r in accepted] == [202, 202, 202], accepted[-1].text
    assert [r.headers["RateLimit-Remaining"] for r in accepted] == ["2", "1", "0"]
    assert accepted[0].headers["RateLimit-Limit"] == "3"
    assert accepted[0].headers["RateLimit-Policy"] == "3;w=3000"
    assert 2990 <= int(accepted[-1].headers["RateLimit-Reset"]) <= 3000

    refused = await submit_waiting(node)
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["message"].startswith(
        "too many command submissions by engineer (at most 3 at once, 0.001 per second); "
        "try again in "
    )
    assert error["correlation_id"] == refused.headers["X-Request-ID"]
    assert 990 <= int(refused.headers["Retry-After"]) <= 1000
    assert refused.headers["RateLimit-Remaining"] == "0"

    other = await submit_waiting(node, "other")  # each user has a bucket of their own
    assert other.status_code == 202, other.text
    assert other.headers["RateLimit-Remaining"] == "2"


def refusal(response: httpx.Response) -> str:
    """The message of a 429 `too_many_failed_logins`."""
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "too_many_failed_logins", error
    assert 890 <= int(response.headers["Retry-After"]) <= 900
    message: str = error["message"]
    return message


async def fail(node: Node, username: str, address: str, times: int = 1) -> None:
    for _ in range(times):
        wrong = await login(node, username, "not the password", address)
        assert wrong.status_code == 401, wrong.text


async def test_failed_logins_lock_the_pair_not_the_owner_elsewhere(node: Node) -> None:
    await fail(node, "viewer", "10.0.0.1", times=2)

    # The attacker's address is locked out of the account, even with the right password...
    locked = await login(node, "viewer", PASSWORD, "10.0.0.1")
    assert refusal(locked) == (
        "2 failed logins for user 'viewer' from address 10.0.0.1 within 900 s (at most 2); "
        f"try again in {locked.headers['Retry-After']} s, or ask an admin to unlock the account"
    )
    # ...the owner, elsewhere, is not; and a success clears only its own pair.
    owner = await login(node, "viewer", PASSWORD, "10.0.0.2")
    assert owner.status_code == 200, owner.text
    refusal(await login(node, "viewer", PASSWORD, "10.0.0.1"))
    await assert_unrelated_command_succeeds(node)


async def test_a_success_clears_its_pair(node: Node) -> None:
    await fail(node, "viewer", "10.0.0.1")
    assert (await login(node, "viewer", PASSWORD, "10.0.0.1")).status_code == 200
    await fail(node, "viewer", "10.0.0.1")  # 1 of 2 since the success
    assert (await login(node, "viewer", PASSWORD, "10.0.0.1")).status_code == 200


async def test_failures_from_many_addresses_lock_the_username_at_a_higher_count(
    node: Node,
) -> None:
    for n in range(4):  # one failure each: no pair is locked
        await fail(node, "viewer", f"10.0.1.{n}")

    locked = await login(node, "viewer", PASSWORD, "10.0.2.1")
    assert refusal(locked).startswith(
        "4 failed logins for user 'viewer' from all addresses within 900 s (at most 4)"
    )
    other = await login(node, "other", PASSWORD, "10.0.2.1")
    assert other.status_code == 200, other.text
    await assert_unrelated_command_succeeds(node)


async def test_a_shared_address_does_not_lock_another_users_correct_password(
    node: Node,
) -> None:
    # One user behind the address mistypes (and is locked there); a colleague behind the same
    # address is not.
    await fail(node, "other", "10.0.0.5", times=2)
    refusal(await login(node, "other", PASSWORD, "10.0.0.5"))
    colleague = await login(node, "viewer", PASSWORD, "10.0.0.5")
    assert colleague.status_code == 200, colleague.text
    await assert_unrelated_command_succeeds(node)


async def test_failures_for_many_usernames_lock_the_address(node: Node) -> None:
    await fail(node, "alice", "10.0.0.6")
    await fail(node, "viewer", "10.0.0.6")
    assert (await login(node, "viewer", PASSWORD, "10.0.0.6")).status_code == 200  # leaves
    await fail(node, "bob", "10.0.0.6")
    await fail(node, "carol", "10.0.0.6")  # alice, bob, carol: 3 usernames

    locked = await login(node, "other", PASSWORD, "10.0.0.6")
    assert refusal(locked).startswith(
        "3 usernames with failed logins from address 10.0.0.6 within 900 s (at most 3)"
    )
    elsewhere = await login(node, "other", PASSWORD, "10.0.0.7")
    assert elsewhere.status_code == 200, elsewhere.text


async def unlock(node: Node, username: str, as_user: str = "admin") -> httpx.Response:
    user = await node.db.accounts.get_user(username)
    assert user is not None
    return await node.http.post(
        f"/api/v1/users/{user.id}/unlock", headers=await node.headers(as_user)
    )


async def test_an_admin_unlocks_every_lock_of_a_user(node: Node) -> None:
    admin = await node.headers("admin")  # logged in before anyone is locked
    await fail(node, "viewer", "10.0.0.1", times=2)
    await fail(node, "viewer", "10.0.0.2", times=2)  # 4: the username is locked too
    refusal(await login(node, "viewer", PASSWORD, "10.0.0.1"))
    refusal(await login(node, "viewer", PASSWORD, "10.0.0.3"))

    forbidden = await unlock(node, "viewer", as_user="engineer")
    assert forbidden.status_code == 403, forbidden.text
    refusal(await login(node, "viewer", PASSWORD, "10.0.0.3"))
    missing = await node.http.post("/api/v1/users/9999/unlock", headers=admin)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_user"

    unlocked = await unlock(node, "viewer")
    assert unlocked.status_code == 204, unlocked.text
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        answer = await login(node, "viewer", PASSWORD, address)
        assert answer.status_code == 200, (address, answer.text)
    [event] = [
        e
        for e in await node.db.audit.list_audit(target="user:viewer")
        if e.action == "user.unlocked"
    ]
    assert event.actor == "admin"
    assert event.details is not None and event.details["addresses"] == 2
    await assert_unrelated_command_succeeds(node)


async def test_re_enabling_a_user_clears_their_locks(node: Node) -> None:
    admin = await node.headers("admin")
    viewer = await node.db.accounts.get_user("viewer")
    assert viewer is not None
    await fail(node, "viewer", "10.0.0.1", times=2)
    url = f"/api/v1/users/{viewer.id}"

    disabled = await node.http.patch(url, json={"enabled": False}, headers=admin)
    assert disabled.status_code == 200, disabled.text
    refusal(await login(node, "viewer", PASSWORD, "10.0.0.1"))  # disabling is no unlock
    enabled = await node.http.patch(url, json={"enabled": True}, headers=admin)
    assert enabled.status_code == 200, enabled.text

    again = await login(node, "viewer", PASSWORD, "10.0.0.1")
    assert again.status_code == 200, again.text


async def test_logins_from_one_address_are_rate_limited(node: Node) -> None:
    answers = [await login(node, "viewer", PASSWORD, "10.0.0.7") for _ in range(5)]
    assert [r.status_code for r in answers] == [200] * 5
    assert [r.headers["RateLimit-Remaining"] for r in answers] == ["4", "3", "2", "1", "0"]

    refused = await login(node, "viewer", PASSWORD, "10.0.0.7")
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 990

    elsewhere = await login(node, "viewer", PASSWORD, "10.0.0.8")
    assert elsewhere.status_code == 200, elsewhere.text


@pytest.mark.parametrize("node_settings", ["redis"], indirect=True)
async def test_readiness_reports_redis(node: Node) -> None:
    response = await node.http.get("/health/ready")
    assert response.status_code == 200, response.text
    assert response.json()["checks"]["redis"] == "ok"


@pytest.mark.parametrize("node_settings", ["redis_down"], indirect=True)
async def test_with_redis_down_the_node_is_not_ready_but_limits_still_hold(node: Node) -> None:
    response = await node.http.get("/health/ready")
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert "Redis at redis://127.0.0.1:" in body["checks"]["redis"]
    assert "is unavailable" in body["checks"]["redis"]

    # Not an outage of the API: limits are kept in the node's memory meanwhile. The vehicle
    # is connected here: with Redis down, a vehicle held elsewhere (or nowhere) would be a 503.
    await node.connect_vehicle(VINS[0])
    accepted = [await submit_waiting(node) for _ in range(3)]
    assert [r.status_code for r in accepted] == [202, 202, 202], accepted[-1].text
    assert accepted[-1].headers["RateLimit-Remaining"] == "0"
    refused = await submit_waiting(node)
    assert refused.status_code == 429, refused.text
