"""The accounts' store: operator users (passwords hashed with bcrypt) and their login
sessions (families of rotating refresh tokens).

Each method crosses the bridge once (`storage.engine.Engine.run`) to run one
transaction of `account_queries`; bcrypt runs in a worker thread.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import bcrypt
import trio

from hub import JSON
from storage import account_queries
from storage.engine import Engine, Store
from storage.models import ROLES
from storage.records import LoginSession, RefreshResult, User, UserUpdate

__all__ = ["BCRYPT_ROUNDS", "AccountStore"]

#: bcrypt work factor of new password hashes (~0.25 s of CPU each here).
BCRYPT_ROUNDS = 12
# A real hash of the same cost: an unknown username costs what a wrong password does.
_DUMMY_HASH = b"$2b$12$VGiWG5Q.xJJB4QQNFS2/q.8wHRCqYw06e0xiCQH6D4g54T3k5NjQy"
_MAX_PASSWORD_BYTES = 72  # bcrypt 5 refuses longer passwords


class AccountStore(Store):
    """Operator accounts and their sessions (errors and cancellation: see `Store`)."""

    def __init__(self, engine: Engine, bcrypt_rounds: int = BCRYPT_ROUNDS) -> None:
        if not 4 <= bcrypt_rounds <= 31:
            raise ValueError(f"bcrypt_rounds must be 4-31, got {bcrypt_rounds}")
        super().__init__(engine)
        self._bcrypt_rounds = bcrypt_rounds

    async def add_user(self, username: str, password: str, role: str, *, by: str = "hub") -> User:
        """Create an operator account (audited `user.added` as `by`).

        Raises `UserExistsError` if the name is taken, `ValueError` for an
        unknown role, an empty username or a password over bcrypt's 72 bytes.
        """
        _check_role(role)
        if not username:
            raise ValueError("username is empty")
        hashed = await _hash_password(password, self._bcrypt_rounds)
        now = datetime.now(UTC)
        return await self._run(
            account_queries.add_user, self._writer, username, hashed, role, by, now
        )

    async def set_password(self, username: str, password: str) -> list[uuid.UUID]:
        """Replace the user's password (audited) and revoke all their sessions (their ids).

        Raises `UnknownUserError` if there is no such user, `ValueError` for a
        password longer than bcrypt's 72 bytes.
        """
        hashed = await _hash_password(password, self._bcrypt_rounds)
        return await self._run(
            account_queries.set_password, self._writer, username, hashed, datetime.now(UTC)
        )

    async def check_password(self, username: str, password: str) -> tuple[User | None, str]:
        """`(user, "ok")` if the password is theirs and they are enabled, else `(None, why)`.

        `why` is `unknown_user`, `wrong_password` or `disabled` (for the audit
        trail, not for the caller's answer). Always spends one bcrypt check
        (in a worker thread), so the time taken tells nothing.
        """
        found = await self._run(account_queries.get_user, self._reader, username)
        stored = found[1].encode() if found is not None else _DUMMY_HASH
        secret = password.encode()
        if len(secret) > _MAX_PASSWORD_BYTES:
            secret = b""  # cannot be anyone's password; still spend the check
        matches = await trio.to_thread.run_sync(bcrypt.checkpw, secret, stored)
        if found is None:
            return None, "unknown_user"
        if not matches:
            return None, "wrong_password"
        return (found[0], "ok") if found[0].enabled else (None, "disabled")

    async def authenticate_user(self, username: str, password: str) -> User | None:
        """The user when `password` is theirs and they are enabled; else None (see above)."""
        return (await self.check_password(username, password))[0]

    async def get_user(self, username: str) -> User | None:
        """The user called `username`, or None."""
        found = await self._run(account_queries.get_user, self._reader, username)
        return found[0] if found is not None else None

    async def get_user_by_id(self, user_id: int) -> User | None:
        """The user with this id, or None."""
        return await self._run(account_queries.get_user_by_id, self._reader, user_id)

    async def list_users(self, *, limit: int, offset: int = 0) -> tuple[list[User], int]:
        """A page of users ordered by id, and the total number of users."""
        return await self._run(account_queries.list_users, self._reader, limit, offset)

    async def update_user(
        self, user_id: int, *, role: str | None = None, enabled: bool | None = None, by: str
    ) -> UserUpdate:
        """Change a user's role and/or enabled flag (audited `user.updated` as `by`).

        A role change or disabling revokes all the user's sessions. Raises
        `UnknownUserError`, `LastAdminError` (no enabled admin would remain;
        nothing changes) or `ValueError` for an unknown role.
        """
        if role is not None:
            _check_role(role)
        now = datetime.now(UTC)
        return await self._run(
            account_queries.update_user, self._writer, user_id, role, enabled, by, now
        )

    async def change_password(
        self,
        user_id: int,
        password: str,
        *,
        keep_session: uuid.UUID | None,
        details: dict[str, JSON],
    ) -> list[uuid.UUID]:
        """The user's own password change (audited `user.password_changed`).

        Revokes their sessions except `keep_session`; returns the ids revoked.
        """
        hashed = await _hash_password(password, self._bcrypt_rounds)
        now = datetime.now(UTC)
        return await self._run(
            account_queries.change_password,
            self._writer,
            user_id,
            hashed,
            keep_session,
            now,
            details,
        )

    # -- sessions (refresh-token families) --

    async def create_session(
        self,
        user: User,
        session_id: uuid.UUID,
        refresh_hash: str,
        *,
        ttl_s: float,
        address: str | None,
        user_agent: str | None,
    ) -> LoginSession:
        """Open a session for `user` (generation 0), audited `auth.login`."""
        now = datetime.now(UTC)
        session = LoginSession(
            session_id, user.id, 0, now, now, now + timedelta(seconds=ttl_s), None, None,
            address, user_agent,
        )  # fmt: skip
        details: dict[str, JSON] = {"address": address, "user_agent": user_agent}
        await self._run(
            account_queries.create_session,
            self._writer,
            session,
            user.username,
            refresh_hash,
            details,
        )
        return session

    async def rotate_session(
        self,
        session_id: uuid.UUID,
        generation: int,
        presented_hash: str,
        new_hash: str,
        *,
        ttl_s: float,
        details: dict[str, JSON],
    ) -> RefreshResult:
        """Present refresh token `generation` (by its hash); rotate to `new_hash` if current.

        An older generation revokes the session (committed, audited
        `auth.refresh_reused`); see `RefreshOutcome` for the other outcomes.
        """
        now = datetime.now(UTC)
        expires_at = now + timedelta(seconds=ttl_s)
        return await self._run(
            account_queries.rotate_session, self._writer, session_id, generation, presented_hash,
            new_hash, now, expires_at, details,
        )  # fmt: skip

    async def revoke_session(
        self, session_id: uuid.UUID, reason: str, *, action: str, details: dict[str, JSON]
    ) -> bool:
        """Revoke a live session (audited `action`, as its user); False if it was not live."""
        now = datetime.now(UTC)
        return await self._run(
            account_queries.revoke_session,
            self._writer,
            session_id,
            reason,
            action,
            now,
            details,
        )

    async def session_of(self, session_id: uuid.UUID) -> tuple[User, LoginSession] | None:
        """A session and its user, or None."""
        return await self._run(account_queries.session_of, self._reader, session_id)

    async def revoked_sessions(self, since: datetime) -> list[tuple[uuid.UUID, datetime]]:
        """Ids of the sessions revoked since `since`, with when."""
        return await self._run(account_queries.revoked_since, self._reader, since)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"role {role!r} is unknown: expected one of {', '.join(ROLES)}")


async def _hash_password(password: str, rounds: int) -> str:
    secret = password.encode()
    if len(secret) > _MAX_PASSWORD_BYTES:
        raise ValueError(
            f"password is {len(secret)} bytes long; bcrypt takes at most {_MAX_PASSWORD_BYTES}"
        )
    salt = bcrypt.gensalt(rounds)
    hashed = await trio.to_thread.run_sync(bcrypt.hashpw, secret, salt)
    return hashed.decode()
