"""Sessions over real HTTP: login, refresh rotation and reuse, logout, /me, password change."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
import trio
import trio_websocket

from api import ratelimit
from api.auth import InvalidToken, Principal, Role, SessionRevocations, TokenIssuer
from api.config import ApiConfig
from api.errors import ApiError
from hub import HubConfig
from sovd_hub import open_node
from storage import StorageConfig
from tests.support.accounts import AGENT, audit, bearer, error_code, login, me, refresh
from tests.support.node import JWT_SECRET, PASSWORD, Node
from tests.support.websocket import open_socket, send_json


async def test_login_gives_a_session_that_me_describes(node: Node) -> None:
    tokens = await login(node, "engineer")

    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 900
    assert tokens["refresh_expires_in"] == 14 * 24 * 3600
    response = await me(node, tokens)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["username"], body["role"], body["enabled"]) == ("engineer", "engineer", True)
    assert body["session"]["id"] == tokens["session_id"]
    assert body["session"]["address"] == "127.0.0.1"
    assert body["session"]["user_agent"] == "fleet-console/1.0"
    [event] = await audit(node, "engineer", "auth.login")
    assert event.details["address"] == "127.0.0.1"
    assert event.details["session_id"] == tokens["session_id"]


async def test_a_refresh_rotates_both_tokens(node: Node) -> None:
    first = await login(node, "engineer")

    response = await refresh(node, first["refresh_token"])

    assert response.status_code == 200, response.text
    second = response.json()
    assert second["session_id"] == first["session_id"]
    assert second["refresh_token"] != first["refresh_token"]
    assert (await me(node, second)).status_code == 200
    third = await refresh(node, second["refresh_token"])
    assert third.status_code == 200, third.text
    assert len(await audit(node, "engineer", "auth.refresh")) == 2


async def test_a_reused_refresh_token_revokes_the_whole_session(node: Node) -> None:
    stolen = await login(node, "engineer")
    elsewhere = await login(node, "engineer")  # another session of the same user
    rotated = (await refresh(node, stolen["refresh_token"])).json()

    replay = await refresh(node, stolen["refresh_token"])

    assert replay.status_code == 401
    assert error_code(replay) == "refresh_token_reused"
    assert "revoked" in replay.json()["error"]["message"]
    # The newer refresh token and every access token of the session are dead.
    newer = await refresh(node, rotated["refresh_token"])
    assert (newer.status_code, error_code(newer)) == (401, "session_revoked")
    for tokens in (stolen, rotated):
        refused = await me(node, tokens)
        assert (refused.status_code, error_code(refused)) == (401, "session_revoked")
    # The user's other session is untouched.
    assert (await me(node, elsewhere)).status_code == 200
    [event] = await audit(node, "engineer", "auth.refresh_reused")
    assert event.details["session_id"] == stolen["session_id"]


async def test_logout_ends_the_session_at_once(node: Node) -> None:
    tokens = await login(node, "viewer")
    other = await login(node, "viewer")
    assert (await me(node, tokens)).status_code == 200  # now in the verified-token cache

    response = await node.http.post("/api/v1/auth/logout", headers=bearer(tokens))

    assert response.status_code == 204
    refused = await me(node, tokens)
    assert (refused.status_code, error_code(refused)) == (401, "session_revoked")
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    vehicles = await node.http.get("/api/v1/vehicles", headers=bearer(tokens))
    assert vehicles.status_code == 401
    gone = await refresh(node, tokens["refresh_token"])
    assert (gone.status_code, error_code(gone)) == (401, "session_revoked")
    assert (await me(node, other)).status_code == 200
    assert len(await audit(node, "viewer", "auth.logout")) == 1
    # The WebSocket refuses the revoked token too.
    async with open_socket(node) as ws:
        await send_json(ws, {"type": "auth", "token": tokens["access_token"]})
        with trio.fail_after(5), pytest.raises(trio_websocket.ConnectionClosed) as closed:
            await ws.get_message()
    assert closed.value.reason is not None
    assert closed.value.reason.code == 4401
    assert "revoked" in (closed.value.reason.reason or "")


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("not-a-token", "invalid_refresh_token"),
        (f"{uuid.uuid4().hex}.0.nonce.forgedmac", "invalid_refresh_token"),
    ],
)
async def test_a_refresh_token_we_did_not_issue_is_refused(
    node: Node, token: str, code: str
) -> None:
    response = await refresh(node, token)

    assert (response.status_code, error_code(response)) == (401, code)


async def test_a_forged_old_generation_does_not_revoke_a_session(node: Node) -> None:
    tokens = await login(node, "engineer")
    await refresh(node, tokens["refresh_token"])
    # Someone who read the session id (it is in the JWT) tries generation 0 without our MAC.
    forged = f"{uuid.UUID(tokens['session_id']).hex}.0.guess.guess"

    response = await refresh(node, forged)

    assert error_code(response) == "invalid_refresh_token"
    assert await audit(node, "engineer", "auth.refresh_reused") == []


async def test_failed_logins_are_audited_with_address_and_user_agent(node: Node) -> None:
    headers = {**AGENT, "X-Forwarded-For": "203.0.113.9"}  # not trusted by default
    wrong = await node.http.post(
        "/api/v1/auth/login", json={"username": "viewer", "password": "nope"}, headers=headers
    )
    unknown = await node.http.post(
        "/api/v1/auth/login", json={"username": "nobody", "password": "nope"}, headers=headers
    )

    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_credentials"
        assert response.json()["error"]["message"] == "invalid username or password"
    [event] = await audit(node, "viewer", "auth.login_failed")
    assert event.actor == "anonymous"
    assert event.details == {
        "username": "viewer",
        "address": "127.0.0.1",
        "user_agent": "fleet-console/1.0",
        "reason": "wrong_password",
    }
    [other] = await audit(node, "nobody", "auth.login_failed")
    assert other.details["reason"] == "unknown_user"


async def test_a_username_with_control_characters_is_refused_before_any_lookup(
    node: Node,
) -> None:
    response = await node.http.post(
        "/api/v1/auth/login", json={"username": "ad\u0000min", "password": PASSWORD}
    )

    assert (response.status_code, error_code(response)) == (422, "validation_failed")
    assert response.json()["error"]["details"][0]["field"] == "username"


async def test_logins_go_through_the_throttle(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str, str]] = []

    def recorder(name: str) -> Any:
        async def record(username: str, address: str) -> None:
            calls.append((name, username, address))

        return record

    for name in ("check_login", "login_failed", "login_succeeded"):
        monkeypatch.setattr(ratelimit, name, recorder(name))
    await node.http.post("/api/v1/auth/login", json={"username": "viewer", "password": "nope"})
    await login(node, "viewer")
    assert calls == [
        ("check_login", "viewer", "127.0.0.1"),
        ("login_failed", "viewer", "127.0.0.1"),
        ("check_login", "viewer", "127.0.0.1"),
        ("login_succeeded", "viewer", "127.0.0.1"),
    ]

    async def throttled(username: str, address: str) -> None:
        raise ApiError(429, "too_many_failed_logins", "wait", headers={"Retry-After": "60"})

    monkeypatch.setattr(ratelimit, "check_login", throttled)
    response = await node.http.post(
        "/api/v1/auth/login", json={"username": "admin", "password": "guess"}
    )
    assert response.status_code == 429
    # Refused before the password was looked at: no failure recorded for it.
    assert await audit(node, "admin", "auth.login_failed") == []


async def test_a_password_change_logs_out_the_other_sessions(node: Node) -> None:
    here = await login(node, "engineer")
    there = await login(node, "engineer")
    url = "/api/v1/auth/password"

    wrong = await node.http.post(
        url,
        json={"current_password": "not mine", "new_password": "a much better password"},
        headers=bearer(here),
    )
    short = await node.http.post(
        url, json={"current_password": PASSWORD, "new_password": "short"}, headers=bearer(here)
    )
    too_long = await node.http.post(
        url, json={"current_password": PASSWORD, "new_password": "é" * 40}, headers=bearer(here)
    )
    assert (wrong.status_code, error_code(wrong)) == (403, "wrong_password")
    assert (short.status_code, error_code(short)) == (422, "validation_failed")
    assert "at least 12 characters" in short.json()["error"]["message"]
    assert (too_long.status_code, error_code(too_long)) == (422, "validation_failed")
    assert "80 bytes" in too_long.json()["error"]["message"]
    assert (await me(node, there)).status_code == 200  # nothing changed so far

    changed = await node.http.post(
        url,
        json={"current_password": PASSWORD, "new_password": "a much better password"},
        headers=bearer(here),
    )

    assert changed.status_code == 200, changed.text
    assert changed.json() == {"sessions_revoked": 1}
    assert (await me(node, here)).status_code == 200
    assert error_code(await me(node, there)) == "session_revoked"
    old = await node.http.post(
        "/api/v1/auth/login", json={"username": "engineer", "password": PASSWORD}
    )
    assert old.status_code == 401
    await login(node, "engineer", "a much better password")
    [event] = await audit(node, "engineer", "user.password_changed")
    assert event.details["sessions_revoked"] == 1
    assert len(await audit(node, "engineer", "user.password_change_failed")) == 1


async def test_revocations_made_before_a_node_started_are_known_to_it(
    node: Node, database_url: str
) -> None:
    tokens = await login(node, "viewer")
    await node.http.post("/api/v1/auth/logout", headers=bearer(tokens))
    # A second node on the same database (and JWT secret) starts after the logout.
    config = ApiConfig(http_port=0, jwt_secret=JWT_SECRET, forwarded_for_hops=1)
    storage = StorageConfig(database_url=database_url, bcrypt_rounds=4)
    async with (
        open_node(HubConfig(grpc_port=0, shutdown_grace_s=1), config, storage) as (addresses, _),
        httpx.AsyncClient(base_url=addresses.http_url) as http,
    ):
        refused = await http.get("/api/v1/auth/me", headers=bearer(tokens))
        assert (refused.status_code, error_code(refused)) == (401, "session_revoked")
        # Behind one trusted proxy, the address is the entry that proxy added.
        await http.post(
            "/api/v1/auth/login",
            json={"username": "viewer", "password": "nope"},
            headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.9"},
        )
    [event] = await audit(node, "viewer", "auth.login_failed")
    assert event.details["address"] == "203.0.113.9"


# -- the token issuer, without a node ---------------------------------------------

SECRET = "s" * 40


def test_a_revoked_session_is_refused_even_from_the_cache() -> None:
    issuer = TokenIssuer(SECRET, ttl_s=60)
    session_id = uuid.uuid4()
    token = issuer.issue(Principal("eve", Role.ENGINEER, session_id))
    assert issuer.verify(token).session_id == session_id

    issuer.revocations.revoke(session_id)

    with pytest.raises(InvalidToken, match="revoked") as caught:
        issuer.verify(token)
    assert caught.value.code == "session_revoked"


def test_revocations_are_forgotten_once_their_tokens_expired(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    revocations = SessionRevocations(retention_s=60)
    old, new = uuid.uuid4(), uuid.uuid4()
    revocations.load([(old, time.time() - 61), (new, time.time() - 1)])
    assert old not in revocations and new in revocations
    later = time.time() + 120
    monkeypatch.setattr(time, "time", lambda: later)
    revocations.revoke(uuid.uuid4())
    assert new not in revocations and len(revocations) == 1


def test_refresh_tokens_carry_session_and_generation_under_a_mac() -> None:
    issuer = TokenIssuer(SECRET, ttl_s=60)
    session_id = uuid.uuid4()
    token = issuer.issue_refresh(session_id, 3)

    assert issuer.parse_refresh(token) == (session_id, 3)
    assert issuer.issue_refresh(session_id, 3) != token
    body, _, mac = token.rpartition(".")
    tampered = body.replace(".3.", ".2.") + "." + mac
    for bad in (tampered, token + "x", TokenIssuer("t" * 40, 60).issue_refresh(session_id, 3)):
        with pytest.raises(InvalidToken) as caught:
            issuer.parse_refresh(bad)
        assert caught.value.code == "invalid_refresh_token"
