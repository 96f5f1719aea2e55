"""Operator accounts: bcrypt hashes, unique names, known roles."""

from __future__ import annotations

from datetime import UTC

import pytest

from storage import Database, UnknownUserError, UserExistsError


async def test_add_user_then_authenticate(database: Database) -> None:
    user = await database.accounts.add_user("alice", "correct horse", "engineer")

    assert (user.username, user.role) == ("alice", "engineer")
    assert user.created_at.tzinfo is UTC
    assert await database.accounts.get_user("alice") == user
    assert await database.accounts.authenticate_user("alice", "correct horse") == user


async def test_authenticate_refuses_a_wrong_password_and_an_unknown_user(
    database: Database,
) -> None:
    await database.accounts.add_user("alice", "correct horse", "viewer")

    assert await database.accounts.authenticate_user("alice", "battery staple") is None
    assert await database.accounts.authenticate_user("mallory", "correct horse") is None
    assert await database.accounts.authenticate_user("alice", "x" * 100) is None
    assert await database.accounts.get_user("mallory") is None


async def test_a_username_is_taken_once(database: Database) -> None:
    await database.accounts.add_user("alice", "one password", "viewer")

    with pytest.raises(UserExistsError, match="user 'alice' already exists"):
        await database.accounts.add_user("alice", "another password", "admin")
    # The first account is untouched.
    user = await database.accounts.authenticate_user("alice", "one password")
    assert user is not None
    assert user.role == "viewer"


async def test_add_user_refuses_an_unknown_role_and_a_too_long_password(
    database: Database,
) -> None:
    with pytest.raises(ValueError, match="role 'root' is unknown: expected one of viewer"):
        await database.accounts.add_user("alice", "pw", "root")
    with pytest.raises(ValueError, match="at most 72"):
        await database.accounts.add_user("alice", "é" * 40, "viewer")
    assert await database.accounts.get_user("alice") is None


async def test_add_user_is_audited_without_the_password(database: Database) -> None:
    await database.accounts.add_user("alice", "correct horse", "admin")

    [event] = await database.audit.list_audit(target="user:alice")
    assert (event.actor, event.action, event.details) == ("hub", "user.added", {"role": "admin"})
    assert "correct horse" not in repr(event)


async def test_set_password_replaces_the_old_one(database: Database) -> None:
    await database.accounts.add_user("alice", "old password", "engineer")

    await database.accounts.set_password("alice", "new password")

    assert await database.accounts.authenticate_user("alice", "old password") is None
    user = await database.accounts.authenticate_user("alice", "new password")
    assert user is not None
    assert user.role == "engineer"
    actions = [e.action for e in await database.audit.list_audit(target="user:alice")]
    assert actions == ["user.added", "user.password_set"]
    with pytest.raises(UnknownUserError, match="user 'mallory' does not exist"):
        await database.accounts.set_password("mallory", "pw")
