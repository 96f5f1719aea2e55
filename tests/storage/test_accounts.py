"""Accounts in storage: login sessions (rotation, reuse, expiry, revocation), user changes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from storage import (
    Database,
    LastAdminError,
    LoginSession,
    RefreshOutcome,
    UnknownUserError,
    User,
)

TTL_S = 3600.0


async def _login(db: Database, user: User, refresh_hash: str = "h0") -> LoginSession:
    return await db.accounts.create_session(
        user, uuid.uuid4(), refresh_hash, ttl_s=TTL_S, address="192.0.2.1", user_agent="pytest"
    )


async def _user(db: Database, name: str = "alice", role: str = "engineer") -> User:
    return await db.accounts.add_user(name, "correct horse battery", role)


async def test_check_password_says_why_it_failed(database: Database) -> None:
    alice = await _user(database)
    await database.accounts.add_user("bob", "correct horse battery", "viewer")
    bob = await database.accounts.get_user("bob")
    assert bob is not None
    await database.accounts.update_user(bob.id, enabled=False, by="admin")

    assert await database.accounts.check_password("alice", "correct horse battery") == (alice, "ok")
    assert await database.accounts.check_password("alice", "wrong") == (None, "wrong_password")
    assert await database.accounts.check_password("mallory", "x") == (None, "unknown_user")
    assert await database.accounts.check_password("bob", "correct horse battery") == (
        None,
        "disabled",
    )
    assert await database.accounts.authenticate_user("bob", "correct horse battery") is None


async def test_a_refresh_rotates_the_session_once(database: Database) -> None:
    alice = await _user(database)
    session = await _login(database, alice)
    [login] = [
        e for e in await database.audit.list_audit(target="user:alice") if e.action == "auth.login"
    ]
    assert login.actor == "alice"
    assert login.details == {
        "session_id": str(session.id),
        "address": "192.0.2.1",
        "user_agent": "pytest",
    }

    rotated = await database.accounts.rotate_session(
        session.id, 0, "h0", "h1", ttl_s=TTL_S, details={}
    )
    assert rotated.outcome is RefreshOutcome.ROTATED
    assert rotated.user == alice
    assert rotated.session is not None and rotated.session.generation == 1
    # The current token with the wrong hash is not the session's token: nothing happens.
    wrong = await database.accounts.rotate_session(
        session.id, 1, "hX", "h2", ttl_s=TTL_S, details={}
    )
    assert wrong.outcome is RefreshOutcome.UNKNOWN
    again = await database.accounts.rotate_session(
        session.id, 1, "h1", "h2", ttl_s=TTL_S, details={}
    )
    assert again.outcome is RefreshOutcome.ROTATED
    actions = [e.action for e in await database.audit.list_audit(target="user:alice")]
    assert actions == ["user.added", "auth.login", "auth.refresh", "auth.refresh"]


async def test_an_old_generation_revokes_the_family_and_the_revocation_sticks(
    database: Database,
) -> None:
    alice = await _user(database)
    session = await _login(database, alice)
    await database.accounts.rotate_session(session.id, 0, "h0", "h1", ttl_s=TTL_S, details={})

    reused = await database.accounts.rotate_session(
        session.id, 0, "h0", "h9", ttl_s=TTL_S, details={}
    )
    assert reused.outcome is RefreshOutcome.REUSED
    # The revocation was committed, so the newer token is refused as well.
    newer = await database.accounts.rotate_session(
        session.id, 1, "h1", "h2", ttl_s=TTL_S, details={}
    )
    assert newer.outcome is RefreshOutcome.REVOKED
    found = await database.accounts.session_of(session.id)
    assert found is not None
    assert found[1].revoked_reason == "refresh_token_reused"
    [event] = [
        e
        for e in await database.audit.list_audit(target="user:alice")
        if e.action.endswith("reused")
    ]
    assert event.details["presented_generation"] == 0 and event.details["generation"] == 1
    revoked = await database.accounts.revoked_sessions(datetime.now(UTC) - timedelta(minutes=1))
    assert [session_id for session_id, _ in revoked] == [session.id]


async def test_unknown_and_expired_sessions_are_refused(database: Database) -> None:
    alice = await _user(database)
    expired = await database.accounts.create_session(
        alice, uuid.uuid4(), "h0", ttl_s=-1, address=None, user_agent=None
    )

    outcome = await database.accounts.rotate_session(
        expired.id, 0, "h0", "h1", ttl_s=TTL_S, details={}
    )
    assert outcome.outcome is RefreshOutcome.EXPIRED
    unknown = await database.accounts.rotate_session(
        uuid.uuid4(), 0, "h0", "h1", ttl_s=TTL_S, details={}
    )
    assert unknown.outcome is RefreshOutcome.UNKNOWN


async def test_logout_revokes_once(database: Database) -> None:
    alice = await _user(database)
    session = await _login(database, alice)

    assert await database.accounts.revoke_session(
        session.id, "logout", action="auth.logout", details={}
    )
    assert not await database.accounts.revoke_session(
        session.id, "logout", action="auth.logout", details={}
    )
    outcome = await database.accounts.rotate_session(
        session.id, 0, "h0", "h1", ttl_s=TTL_S, details={}
    )
    assert outcome.outcome is RefreshOutcome.REVOKED
    actions = [e.action for e in await database.audit.list_audit(target="user:alice")]
    assert actions.count("auth.logout") == 1


async def test_a_password_change_keeps_only_the_current_session(database: Database) -> None:
    alice = await _user(database)
    here, elsewhere = await _login(database, alice), await _login(database, alice)

    revoked = await database.accounts.change_password(
        alice.id, "a brand new password", keep_session=here.id, details={"address": "192.0.2.1"}
    )

    assert revoked == [elsewhere.id]
    assert await database.accounts.authenticate_user("alice", "a brand new password") == alice
    assert await database.accounts.authenticate_user("alice", "correct horse battery") is None
    [event] = [
        e for e in await database.audit.list_audit(target="user:alice") if "password" in e.action
    ]
    assert (event.actor, event.action) == ("alice", "user.password_changed")
    assert event.details == {"address": "192.0.2.1", "sessions_revoked": 1}


async def test_set_password_revokes_every_session(database: Database) -> None:
    alice = await _user(database)
    session = await _login(database, alice)

    assert await database.accounts.set_password("alice", "another long password") == [session.id]


async def test_disabling_or_a_new_role_revokes_sessions_and_is_audited(
    database: Database,
) -> None:
    alice = await _user(database)
    first = await _login(database, alice)

    change = await database.accounts.update_user(alice.id, role="viewer", by="root")
    assert (change.before.role, change.after.role) == ("engineer", "viewer")
    assert change.revoked_sessions == [first.id]
    second = await _login(database, change.after)
    disabled = await database.accounts.update_user(alice.id, enabled=False, by="root")
    assert disabled.revoked_sessions == [second.id]
    # A change to nothing new changes nothing and is not audited.
    same = await database.accounts.update_user(alice.id, enabled=False, by="root")
    assert same.before == same.after and same.revoked_sessions == []

    updates = [
        e
        for e in await database.audit.list_audit(target="user:alice")
        if e.action == "user.updated"
    ]
    assert [(e.actor, e.details) for e in updates] == [
        (
            "root",
            {
                "before": {"role": "engineer", "enabled": True},
                "after": {"role": "viewer", "enabled": True},
                "sessions_revoked": 1,
            },
        ),
        (
            "root",
            {
                "before": {"role": "viewer", "enabled": True},
                "after": {"role": "viewer", "enabled": False},
                "sessions_revoked": 1,
            },
        ),
    ]


async def test_the_last_enabled_admin_stays(database: Database) -> None:
    root = await _user(database, "root", "admin")
    other = await _user(database, "other", "admin")
    await database.accounts.update_user(other.id, enabled=False, by="root")

    with pytest.raises(LastAdminError, match="root is the last enabled admin"):
        await database.accounts.update_user(root.id, role="engineer", by="root")
    with pytest.raises(LastAdminError):
        await database.accounts.update_user(root.id, enabled=False, by="root")
    assert await database.accounts.get_user_by_id(root.id) == root
    # With another enabled admin, the change goes through.
    await database.accounts.update_user(other.id, enabled=True, by="root")
    change = await database.accounts.update_user(root.id, role="viewer", by="other")
    assert change.after.role == "viewer"
    with pytest.raises(UnknownUserError):
        await database.accounts.update_user(9999, enabled=False, by="root")


async def test_users_are_listed_a_page_at_a_time(database: Database) -> None:
    for name in ("a", "b", "c"):
        await _user(database, name)

    page, total = await database.accounts.list_users(limit=2, offset=1)

    assert total == 3
    assert [u.username for u in page] == ["b", "c"]
    assert all(u.enabled for u in page)
