"""Accounts: login sessions (access + rotating refresh tokens), logout, password, users (admin).

A login opens a session: a short-lived access JWT naming it (`sid`) and a
refresh token. `POST /auth/refresh` trades the refresh token for new ones
(each works once); presenting a used one again revokes the whole session,
since either the owner or a thief holds a copy. Revoking a session (logout,
reuse, password or role change, disabled account) is written to the
database and to this node's revocation set at once, so its access tokens
stop working on the next request.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import structlog
from quart import Blueprint
from quart_schema import validate_request, validate_response

from api import ratelimit
from api.access import client_address, current_principal, requires, user_agent
from api.auth import InvalidToken, Principal, Role, refresh_hash
from api.errors import ApiError
from api.openapi import errors, no_content
from api.schemas import (
    LoginRequest,
    MeOut,
    PasswordChange,
    PasswordChanged,
    RefreshRequest,
    SessionOut,
    TokenResponse,
)
from api.state import state
from api.users import check_password_field, detail, user_out
from hub import JSON
from storage import (
    LoginSession,
    RefreshOutcome,
    User,
)

log = structlog.get_logger("api.accounts")

accounts = Blueprint("accounts", __name__, url_prefix="/api/v1")


@accounts.before_app_serving
async def load_revoked_sessions() -> None:
    """Seed the node's revocation set with sessions revoked while it was down."""
    s = state()
    since = datetime.now(UTC) - timedelta(seconds=s.tokens.revocations.retention_s)
    revoked = await s.db.accounts.revoked_sessions(since)
    s.tokens.revocations.load((session_id, at.timestamp()) for session_id, at in revoked)
    log.info("sessions.revocations_loaded", count=len(revoked))


# -- sessions ----------------------------------------------------------------


@accounts.post("/auth/login")
@errors(401, 429)
@validate_request(LoginRequest)
@validate_response(TokenResponse)
async def login(data: LoginRequest) -> TokenResponse:
    """Exchange a username and password for an access token and a refresh token.

    401 `invalid_credentials` for an unknown user, a wrong password or a
    disabled account alike; 429 while logins are throttled. Every attempt is
    audited (`auth.login`, `auth.login_failed`) with the client's address.
    """
    s = state()
    address, agent = client_address(), user_agent()
    await ratelimit.check_login(data.username, address)
    user, why = await s.db.accounts.check_password(data.username, data.password)
    if user is None:
        details: dict[str, JSON] = {
            "username": data.username,
            "address": address,
            "user_agent": agent,
            "reason": why,
        }
        await s.db.audit.append_audit(
            actor="anonymous",
            action="auth.login_failed",
            target=f"user:{data.username}",
            details=details,
        )
        await ratelimit.login_failed(data.username, address)
        raise ApiError(401, "invalid_credentials", "invalid username or password")
    session_id = uuid.uuid4()
    refresh = s.tokens.issue_refresh(session_id, 0)
    session = await s.db.accounts.create_session(
        user,
        session_id,
        refresh_hash(refresh),
        ttl_s=s.config.refresh_token_ttl_s,
        address=address,
        user_agent=agent,
    )
    await ratelimit.login_succeeded(data.username, address)
    return _tokens(user, session, refresh)


_REFUSED = {
    RefreshOutcome.REUSED: (
        "refresh_token_reused",
        "this refresh token was already used once, so a copy of it may be in other hands: "
        "its session is now revoked; log in again",
    ),
    RefreshOutcome.REVOKED: (
        "session_revoked",
        "the session of this refresh token was revoked (logout, password or role change, "
        "disabled account, or a reused refresh token): log in again",
    ),
    RefreshOutcome.EXPIRED: (
        "refresh_token_expired",
        "the refresh token expired (unused for refresh_token_ttl_s): log in again",
    ),
    RefreshOutcome.UNKNOWN: (
        "invalid_refresh_token",
        "the refresh token is not one this hub issued, or not the session's current one: "
        "log in again",
    ),
}


@accounts.post("/auth/refresh")
@errors(401, 429)
@validate_request(RefreshRequest)
@validate_response(TokenResponse)
async def refresh(data: RefreshRequest) -> TokenResponse:
    """Trade a refresh token for a new access token and a new refresh token.

    The refresh token presented stops working. Presenting one that was
    already used revokes its session (401 `refresh_token_reused`); others:
    401 `refresh_token_expired`, `session_revoked`, `invalid_refresh_token`.
    """
    s = state()
    try:
        session_id, generation = s.tokens.parse_refresh(data.refresh_token)
    except InvalidToken as exc:
        raise ApiError(401, exc.code, str(exc)) from None
    new_refresh = s.tokens.issue_refresh(session_id, generation + 1)
    result = await s.db.accounts.rotate_session(
        session_id,
        generation,
        refresh_hash(data.refresh_token),
        refresh_hash(new_refresh),
        ttl_s=s.config.refresh_token_ttl_s,
        details={"address": client_address(), "user_agent": user_agent()},
    )
    if result.outcome is RefreshOutcome.ROTATED:
        assert result.user is not None and result.session is not None
        return _tokens(result.user, result.session, new_refresh)
    if result.outcome is RefreshOutcome.REUSED:
        s.tokens.revocations.revoke(session_id)
        log.warning("auth.refresh_reused", session_id=str(session_id), address=client_address())
    code, message = _REFUSED[result.outcome]
    raise ApiError(401, code, message)


@accounts.post("/auth/logout")
@no_content(204)
@requires(Role.VIEWER)
async def logout() -> tuple[str, int]:
    """End the session of this access token: it and the session's refresh token stop working.

    204 with no body; audited `auth.logout`.
    """
    s = state()
    session_id = _session_id(current_principal())
    details: dict[str, JSON] = {"address": client_address(), "user_agent": user_agent()}
    await s.db.accounts.revoke_session(session_id, "logout", action="auth.logout", details=details)
    s.tokens.revocations.revoke(session_id)
    return "", 204


@accounts.get("/auth/me")
@requires(Role.VIEWER)
@validate_response(MeOut)
async def me() -> MeOut:
    """Who you are, and the session of your access token."""
    found = await state().db.accounts.session_of(_session_id(current_principal()))
    if found is None:
        raise ApiError(401, "session_revoked", "the session of this access token is gone")
    user, session = found
    return MeOut(
        **user_out(user).model_dump(),
        session=SessionOut(
            id=session.id,
            created_at=session.created_at,
            refreshed_at=session.refreshed_at,
            expires_at=session.expires_at,
            address=session.address,
            user_agent=session.user_agent,
        ),
    )


@accounts.post("/auth/password")
@errors(429)
@requires(Role.VIEWER)
@validate_request(PasswordChange)
@validate_response(PasswordChanged)
async def change_password(data: PasswordChange) -> PasswordChanged:
    """Change your own password; your other sessions are logged out, this one stays.

    403 `wrong_password` when `current_password` is not yours (counted like a
    failed login, so it is throttled too). Audited `user.password_changed`.
    """
    s = state()
    principal = current_principal()
    check_password_field("new_password", data.new_password, principal.username)
    if data.new_password == data.current_password:
        message = "new_password is the same as current_password: choose a new one"
        raise ApiError(422, "validation_failed", message, details=[detail("new_password", message)])
    address, agent = client_address(), user_agent()
    details: dict[str, JSON] = {"address": address, "user_agent": agent}
    await ratelimit.check_login(principal.username, address)
    user, _ = await s.db.accounts.check_password(principal.username, data.current_password)
    if user is None:
        target = f"user:{principal.username}"
        await s.db.audit.append_audit(
            actor=principal.username,
            action="user.password_change_failed",
            target=target,
            details=details,
        )
        await ratelimit.login_failed(principal.username, address)
        raise ApiError(
            403, "wrong_password", "current_password is not your password; nothing was changed"
        )
    revoked = await s.db.accounts.change_password(
        user.id, data.new_password, keep_session=principal.session_id, details=details
    )
    s.tokens.revocations.revoke_all(revoked)
    await ratelimit.login_succeeded(principal.username, address)
    return PasswordChanged(sessions_revoked=len(revoked))


def _tokens(user: User, session: LoginSession, refresh_token: str) -> TokenResponse:
    s = state()
    access = s.tokens.issue(Principal(user.username, Role(user.role), session.id))
    return TokenResponse(
        access_token=access,
        expires_in=s.tokens.ttl_s,
        refresh_token=refresh_token,
        refresh_expires_in=s.config.refresh_token_ttl_s,
        session_id=session.id,
    )


def _session_id(principal: Principal) -> uuid.UUID:
    if principal.session_id is None:  # only tokens issued outside a login lack one
        raise ApiError(401, "unauthenticated", "this access token has no session: log in again")
    return principal.session_id
