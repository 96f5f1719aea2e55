"""The transactions of operator accounts and their login sessions, as asyncio coroutines.

Like `storage.command_queries`, each function is one whole transaction that
`storage.accounts.AccountStore` runs with a single bridge crossing. A session
is a family of refresh tokens: only the hash of the current one is kept,
with its `generation`; presenting an older generation revokes the family.

Serialising admin changes: every `update_user` first locks the enabled
admins' rows (in id order, on Postgres), so two admins demoting each other
at once cannot leave the hub without one; SQLite serialises writers anyway.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub import JSON
from storage.audit_chain import append_audit_row
from storage.errors import LastAdminError, UnknownUserError, UserExistsError
from storage.models import SessionModel, UserModel
from storage.records import LoginSession, RefreshOutcome, RefreshResult, User, UserUpdate

_U = UserModel
_S = SessionModel
_USER_COLUMNS = (_U.id, _U.username, _U.role, _U.created_at, _U.enabled)
_SESSION_COLUMNS = (
    _S.id,
    _S.user_id,
    _S.generation,
    _S.created_at,
    _S.refreshed_at,
    _S.expires_at,
    _S.revoked_at,
    _S.revoked_reason,
    _S.address,
    _S.user_agent,
)


def _user(values: Sequence[Any]) -> User:
    """A `User` from a row that starts with `_USER_COLUMNS`."""
    return User(*values[:5])


def _session(values: Sequence[Any]) -> LoginSession:
    """A `LoginSession` from a row that starts with `_SESSION_COLUMNS` (in field order)."""
    return LoginSession(*values[:10])


# -- users -------------------------------------------------------------------


async def add_user(
    writer: AsyncEngine, username: str, password_hash: str, role: str, actor: str, at: datetime
) -> User:
    try:
        async with writer.begin() as conn:
            user_id = await conn.scalar(
                insert(_U)
                .values(username=username, password_hash=password_hash, role=role, created_at=at)
                .returning(_U.id)
            )
            await append_audit_row(
                conn, at, actor, "user.added", f"user:{username}", {"role": role}
            )
    except IntegrityError as exc:
        raise UserExistsError(f"user {username!r} already exists") from exc
    assert user_id is not None
    return User(id=user_id, username=username, role=role, created_at=at)


async def set_password(
    writer: AsyncEngine, username: str, password_hash: str, at: datetime
) -> list[uuid.UUID]:
    """Replace the password (CLI, demo) and revoke every session of the user."""
    async with writer.begin() as conn:
        user_id = await conn.scalar(
            update(_U)
            .where(_U.username == username)
            .values(password_hash=password_hash)
            .returning(_U.id)
        )
        if user_id is None:
            raise UnknownUserError(f"user {username!r} does not exist")
        revoked = await _revoke_sessions(conn, user_id, at, "password_set")
        await append_audit_row(conn, at, "hub", "user.password_set", f"user:{username}", {})
    return revoked


async def get_user(reader: AsyncEngine, username: str) -> tuple[User, str] | None:
    """The user and their password hash."""
    query = select(*_USER_COLUMNS, _U.password_hash).where(_U.username == username)
    async with reader.connect() as conn:
        row = (await conn.execute(query)).one_or_none()
    return None if row is None else (_user(tuple(row)), row.password_hash)


async def get_user_by_id(reader: AsyncEngine, user_id: int) -> User | None:
    async with reader.connect() as conn:
        row = (await conn.execute(select(*_USER_COLUMNS).where(_U.id == user_id))).one_or_none()
    return None if row is None else _user(row)


async def list_users(reader: AsyncEngine, limit: int, offset: int) -> tuple[list[User], int]:
    """A page of users ordered by id, and how many there are in all."""
    page = select(*_USER_COLUMNS).order_by(_U.id).limit(limit).offset(offset)
    async with reader.connect() as conn:
        rows = (await conn.execute(page)).all()
        total = await conn.scalar(select(func.count()).select_from(_U))
    return [_user(row) for row in rows], total or 0


async def update_user(
    writer: AsyncEngine,
    user_id: int,
    role: str | None,
    enabled: bool | None,
    actor: str,
    at: datetime,
) -> UserUpdate:
    """Change a user's role and/or enabled flag, audited as `actor`.

    Changing the role or disabling revokes every live session of the user.
    Raises `UnknownUserError`, or `LastAdminError` (nothing changed) when no
    enabled admin would remain.
    """
    async with writer.begin() as conn:
        # Lock the admins first, always in the same order: no deadlock, no race.
        admins_query = (
            select(_U.id).where(_U.role == "admin", _U.enabled).order_by(_U.id).with_for_update()
        )
        admins = set((await conn.execute(admins_query)).scalars())
        row = (
            await conn.execute(select(*_USER_COLUMNS).where(_U.id == user_id).with_for_update())
        ).one_or_none()
        if row is None:
            raise UnknownUserError(f"user {user_id} does not exist")
        before = _user(row)
        after = replace(
            before,
            role=before.role if role is None else role,
            enabled=before.enabled if enabled is None else enabled,
        )
        if after == before:
            return UserUpdate(before, after, [])
        still_admin = after.role == "admin" and after.enabled
        if user_id in admins and not still_admin and not admins - {user_id}:
            raise LastAdminError(
                f"user {before.username} is the last enabled admin: enable or promote "
                "another admin first"
            )
        await conn.execute(
            update(_U).where(_U.id == user_id).values(role=after.role, enabled=after.enabled)
        )
        revoked: list[uuid.UUID] = []
        if after.role != before.role or not after.enabled:
            reason = "user_disabled" if not after.enabled else "role_changed"
            revoked = await _revoke_sessions(conn, user_id, at, reason)
        details: dict[str, JSON] = {
            "before": {"role": before.role, "enabled": before.enabled},
            "after": {"role": after.role, "enabled": after.enabled},
            "sessions_revoked": len(revoked),
        }
        await append_audit_row(conn, at, actor, "user.updated", f"user:{before.username}", details)
    return UserUpdate(before, after, revoked)


async def change_password(
    writer: AsyncEngine,
    user_id: int,
    password_hash: str,
    keep_session: uuid.UUID | None,
    at: datetime,
    details: dict[str, JSON],
) -> list[uuid.UUID]:
    """The user's own password change: revokes their other sessions; audited as them."""
    async with writer.begin() as conn:
        username = await conn.scalar(
            update(_U)
            .where(_U.id == user_id)
            .values(password_hash=password_hash)
            .returning(_U.username)
        )
        if username is None:
            raise UnknownUserError(f"user {user_id} does not exist")
        revoked = await _revoke_sessions(conn, user_id, at, "password_changed", keep=keep_session)
        audit = {**details, "sessions_revoked": len(revoked)}
        await append_audit_row(
            conn, at, username, "user.password_changed", f"user:{username}", audit
        )
    return revoked


async def _revoke_sessions(
    conn: AsyncConnection, user_id: int, at: datetime, reason: str, keep: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """Revoke the user's live sessions (but `keep`); their ids.

    Expired sessions are left alone: their access tokens have expired too.
    """
    statement = (
        update(_S)
        .where(_S.user_id == user_id, _S.revoked_at.is_(None), _S.expires_at > at)
        .values(revoked_at=at, revoked_reason=reason)
        .returning(_S.id)
    )
    if keep is not None:
        statement = statement.where(_S.id != keep)
    return sorted((await conn.execute(statement)).scalars())


# -- sessions ----------------------------------------------------------------


async def create_session(
    writer: AsyncEngine,
    session: LoginSession,
    username: str,
    refresh_hash: str,
    details: dict[str, JSON],
) -> None:
    """Store a new session (generation 0) and audit the login that opened it."""
    async with writer.begin() as conn:
        await conn.execute(
            insert(_S).values(
                id=session.id,
                user_id=session.user_id,
                refresh_hash=refresh_hash,
                generation=session.generation,
                created_at=session.created_at,
                refreshed_at=session.refreshed_at,
                expires_at=session.expires_at,
                address=session.address,
                user_agent=session.user_agent,
            )
        )
        audit = {"session_id": str(session.id), **details}
        await append_audit_row(
            conn, session.created_at, username, "auth.login", f"user:{username}", audit
        )


async def rotate_session(
    writer: AsyncEngine,
    session_id: uuid.UUID,
    generation: int,
    presented_hash: str,
    new_hash: str,
    at: datetime,
    expires_at: datetime,
    details: dict[str, JSON],
) -> RefreshResult:
    """Move the session to `generation + 1` if the token presented is its current one.

    An older generation revokes the session and commits that (audited
    `auth.refresh_reused`), then reports `REUSED`: whoever presents the
    newer token next (the thief or the owner) is refused too.
    """
    query = (
        select(*_SESSION_COLUMNS, _S.refresh_hash, *_USER_COLUMNS)
        .join(_U, _U.id == _S.user_id)
        .where(_S.id == session_id)
        .with_for_update(of=_S)
    )
    async with writer.begin() as conn:
        row = (await conn.execute(query)).one_or_none()
        if row is None:
            return RefreshResult(RefreshOutcome.UNKNOWN)
        values = tuple(row)
        session, stored_hash, user = _session(values), str(values[10]), _user(values[11:])
        target = f"user:{user.username}"
        audit: dict[str, JSON] = {"session_id": str(session_id), **details}
        if session.revoked_at is not None:
            return RefreshResult(RefreshOutcome.REVOKED, user, session)
        if generation < session.generation:
            await _revoke_one(conn, session_id, at, "refresh_token_reused")
            audit |= {"presented_generation": generation, "generation": session.generation}
            await append_audit_row(conn, at, user.username, "auth.refresh_reused", target, audit)
            return RefreshResult(RefreshOutcome.REUSED, user, session)
        if generation != session.generation or not hmac.compare_digest(presented_hash, stored_hash):
            return RefreshResult(RefreshOutcome.UNKNOWN)
        if session.expires_at <= at:
            return RefreshResult(RefreshOutcome.EXPIRED, user, session)
        if not user.enabled:  # its sessions were revoked when disabled; make sure
            await _revoke_one(conn, session_id, at, "user_disabled")
            return RefreshResult(RefreshOutcome.REVOKED, user, session)
        await conn.execute(
            update(_S)
            .where(_S.id == session_id)
            .values(
                generation=generation + 1,
                refresh_hash=new_hash,
                refreshed_at=at,
                expires_at=expires_at,
            )
        )
        audit["generation"] = generation + 1
        await append_audit_row(conn, at, user.username, "auth.refresh", target, audit)
    rotated = replace(session, generation=generation + 1, refreshed_at=at, expires_at=expires_at)
    return RefreshResult(RefreshOutcome.ROTATED, user, rotated)


async def revoke_session(
    writer: AsyncEngine,
    session_id: uuid.UUID,
    reason: str,
    action: str,
    at: datetime,
    details: dict[str, JSON],
) -> bool:
    """Revoke a live session, audited as `action` by its user; False if it was not live."""
    async with writer.begin() as conn:
        if not await _revoke_one(conn, session_id, at, reason):
            return False
        username = await conn.scalar(
            select(_U.username).join(_S, _S.user_id == _U.id).where(_S.id == session_id)
        )
        audit = {"session_id": str(session_id), **details}
        await append_audit_row(conn, at, str(username), action, f"user:{username}", audit)
    return True


async def _revoke_one(
    conn: AsyncConnection, session_id: uuid.UUID, at: datetime, reason: str
) -> bool:
    result = await conn.execute(
        update(_S)
        .where(_S.id == session_id, _S.revoked_at.is_(None))
        .values(revoked_at=at, revoked_reason=reason)
    )
    return result.rowcount == 1


async def session_of(
    reader: AsyncEngine, session_id: uuid.UUID
) -> tuple[User, LoginSession] | None:
    """The session and its user (one query)."""
    query = select(*_SESSION_COLUMNS, *_USER_COLUMNS).join(_U, _U.id == _S.user_id)
    async with reader.connect() as conn:
        row = (await conn.execute(query.where(_S.id == session_id))).one_or_none()
    if row is None:
        return None
    values = tuple(row)
    return _user(values[10:]), _session(values)


async def revoked_since(reader: AsyncEngine, since: datetime) -> list[tuple[uuid.UUID, datetime]]:
    """Sessions revoked at or after `since`, with when (to seed a node's revocation set)."""
    query = select(_S.id, _S.revoked_at).where(_S.revoked_at >= since).order_by(_S.revoked_at)
    async with reader.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [(row.id, row.revoked_at) for row in rows if row.revoked_at is not None]
