"""Access tokens signed with the real key but wrong are refused (401) on REST and the WebSocket.

Whoever holds `jwt_secret` can sign anything; these tokens are what a leaked
key, another service sharing it, or a bug would produce: another issuer or
audience, a 100-year expiry, no session, a user that does not exist claiming
admin, a disabled user, a revoked session.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio_websocket
from joserfc import jwt
from joserfc.jwk import OctKey

from api.auth import InvalidToken, Principal, Role
from api.session_check import ActiveSessions, SessionFacts
from storage import DatabaseUnavailable
from tests.support.accounts import login
from tests.support.fleet_check import assert_unrelated_command_succeeds
from tests.support.node import JWT_SECRET, Node
from tests.support.websocket import open_socket, send_json

KEY = OctKey.import_key(JWT_SECRET.encode())
YEAR_S = 365 * 24 * 3600


def forge(base: dict[str, Any], **changes: Any) -> str:
    """A token signed with the node's real key: `base`'s claims with `changes` (None drops)."""
    claims = {**base, **changes}
    return jwt.encode({"alg": "HS256"}, {k: v for k, v in claims.items() if v is not None}, KEY)


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, KEY, algorithms=["HS256"]).claims)


async def refused_everywhere(node: Node, token: str, code: str, message: str) -> None:
    """401 `code` with `message` (a prefix) on /users and /audit; the WebSocket closes 4401."""
    for url in ("/api/v1/users", "/api/v1/audit"):
        response = await node.http.get(url, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, (url, response.text)
        error = response.json()["error"]
        assert error["code"] == code, (url, error)
        assert error["message"].startswith(message), (url, error)
    async with open_socket(node) as ws:
        await send_json(ws, {"type": "auth", "token": token})
        with trio.fail_after(5), pytest.raises(trio_websocket.ConnectionClosed) as closed:
            await ws.get_message()
    assert closed.value.reason is not None
    assert closed.value.reason.code == 4401
    assert (closed.value.reason.reason or "").startswith(message[:60])


def now() -> int:
    return int(time.time())


CASES: list[tuple[str, Callable[[dict[str, Any]], dict[str, Any]], str, str]] = [
    (
        "another issuer",
        lambda c: {"iss": "someone-else"},
        "invalid_token_issuer",
        "the access token's issuer (iss) is 'someone-else', expected 'sovd-hub' (jwt_issuer)",
    ),
    (
        "no issuer",
        lambda c: {"iss": None},
        "invalid_token_issuer",
        "the access token's issuer (iss) is None, expected 'sovd-hub'",
    ),
    (
        "another audience",
        lambda c: {"aud": ["billing"]},
        "invalid_token_audience",
        "the access token's audience (aud) is ['billing'], expected 'sovd-hub-api'",
    ),
    (
        "no audience",
        lambda c: {"aud": None},
        "invalid_token_audience",
        "the access token's audience (aud) is None",
    ),
    (
        "a 100-year expiry",
        lambda c: {"iat": now(), "exp": now() + 100 * YEAR_S},
        "token_lifetime_too_long",
        f"the access token lives {100 * YEAR_S} s from iat to exp; this hub issues them for 900",
    ),
    (
        "a 100-year expiry issued long ago",
        lambda c: {"iat": now() - 50 * YEAR_S, "exp": now() + 50 * YEAR_S},
        "token_lifetime_too_long",
        "the access token lives",
    ),
    (
        "no session",
        lambda c: {"sid": None},
        "token_without_session",
        "the access token names no session (sid is None)",
    ),
    (
        "a user that does not exist claiming admin",
        lambda c: {"sub": "ghost", "role": "admin", "sid": str(uuid.uuid4())},
        "unknown_session",
        "the session of this access token does not exist on this hub",
    ),
    (
        "a user that does not exist in a real session",
        lambda c: {"sub": "ghost", "role": "admin"},
        "unknown_session",
        "the access token names user 'ghost', but its session is another user's",
    ),
    (
        "a viewer's session claiming admin",
        lambda c: {"role": "admin"},
        "role_mismatch",
        "the access token claims role admin, but user 'viewer' is viewer",
    ),
]


@pytest.mark.parametrize(("case", "change", "code", "message"), CASES, ids=[c[0] for c in CASES])
async def test_a_token_signed_with_the_real_key_but_wrong_is_refused(
    node: Node,
    case: str,
    change: Callable[[dict[str, Any]], dict[str, Any]],
    code: str,
    message: str,
) -> None:
    real = claims_of((await login(node, "viewer"))["access_token"])
    await refused_everywhere(node, forge(real, **change(real)), code, message)
    await assert_unrelated_command_succeeds(node)


async def test_tokens_of_a_disabled_user_or_a_revoked_session_are_refused(node: Node) -> None:
    admin = await node.headers("admin")
    other = await login(node, "other")
    user = await node.db.accounts.get_user("other")
    assert user is not None
    disabled = await node.http.patch(
        f"/api/v1/users/{user.id}", json={"enabled": False}, headers=admin
    )
    assert disabled.status_code == 200, disabled.text
    # As issued, and re-signed with a fresh expiry: the session is revoked either way.
    for token in (other["access_token"], forge(claims_of(other["access_token"]), iat=now())):
        await refused_everywhere(
            node, token, "session_revoked", "the session of this access token was revoked"
        )

    viewer = await login(node, "viewer")
    logout = await node.http.post(
        "/api/v1/auth/logout", headers={"Authorization": f"Bearer {viewer['access_token']}"}
    )
    assert logout.status_code == 204
    await refused_everywhere(
        node, viewer["access_token"], "session_revoked", "the session of this access token was"
    )
    await assert_unrelated_command_succeeds(node)


async def test_a_real_token_carries_issuer_audience_and_its_session(node: Node) -> None:
    tokens = await login(node, "viewer")
    claims = claims_of(tokens["access_token"])
    assert (claims["iss"], claims["aud"], claims["sid"]) == (
        "sovd-hub",
        "sovd-hub-api",
        tokens["session_id"],
    )
    assert claims["exp"] - claims["iat"] == 900


# -- the session check, without a node ---------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_session_is_read_once_per_recheck_and_again_after_a_revocation() -> None:
    session_id = uuid.uuid4()
    answers: list[SessionFacts | Exception | None] = []

    async def lookup(asked: uuid.UUID) -> SessionFacts | None:
        assert asked == session_id
        answer = answers[0] if len(answers) == 1 else answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    clock = FakeClock()
    sessions = ActiveSessions(lookup, recheck_s=60, clock=clock)
    eve = Principal("eve", Role.ENGINEER, session_id)
    answers.append(SessionFacts("eve", "engineer", user_enabled=True, revoked=False))
    for _ in range(100):
        await sessions.check(eve)
    assert sessions.lookups == 1  # not one query per request

    answers[:] = [SessionFacts("eve", "engineer", user_enabled=False, revoked=False)]
    await sessions.check(eve)  # cached: a disable revokes the sessions, which forgets them
    sessions.forget(session_id)
    with pytest.raises(InvalidToken) as caught:
        await sessions.check(eve)
    assert caught.value.code == "user_disabled"
    assert sessions.lookups == 2

    answers[:] = [DatabaseUnavailable("the database is away")]
    clock.now += 61
    with pytest.raises(InvalidToken):  # the last answer stands while the database is away
        await sessions.check(eve)
    sessions.forget(session_id)
    with pytest.raises(DatabaseUnavailable):  # never read: the outage is the answer
        await sessions.check(eve)
