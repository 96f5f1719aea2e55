"""Rate limits and login throttling over HTTP, on a node with its limits in memory and on one
with them in Redis (and on one whose Redis is down).

The client address is varied with `X-Forwarded-For` (the nodes trust one proxy hop).
"""

from __future__ import annotations

import httpx
import pytest

from tests.storage.test_keyvalue import closed_port

from .conftest import PASSWORD, VINS, Node, NodeSettings

LIMITS = {
    "submit_burst": 3,
    "submit_rate_per_s": 0.001,  # one token per 1000 s: nothing refills during a test
    "login_burst": 5,
    "login_rate_per_s": 0.001,
    "login_max_failures_per_user": 2,
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


async def test_failed_logins_lock_the_username_until_the_window_ends(node: Node) -> None:
    for _ in range(2):
        wrong = await login(node, "engineer", "not the password", "10.0.0.1")
        assert wrong.status_code == 401, wrong.text

    # Even the right password, even from elsewhere: the username is locked.
    locked = await login(node, "engineer", PASSWORD, "10.0.0.2")
    assert locked.status_code == 429, locked.text
    assert locked.json()["error"]["code"] == "too_many_failed_logins"
    assert "2 failed logins for user 'engineer'" in locked.json()["error"]["message"]
    assert 890 <= int(locked.headers["Retry-After"]) <= 900

    fine = await login(node, "other", PASSWORD, "10.0.0.3")
    assert fine.status_code == 200, fine.text


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
