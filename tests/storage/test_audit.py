"""The audit trail: appended, listed in order, filtered by target."""

from __future__ import annotations

from datetime import UTC, datetime

from storage import Database


async def test_append_and_list_audit_in_order(database: Database) -> None:
    before = datetime.now(UTC)
    await database.audit.append_audit(actor="alice", action="user.login", target="user:alice")
    await database.audit.append_audit(
        actor="vehicle:WVWZZZ1JZXW000001",
        action="vehicle.connected",
        target="vehicle:WVWZZZ1JZXW000001",
        details={"agent_version": "1.2.3", "capabilities": ["sovd"]},
    )
    await database.audit.append_audit(actor="bob", action="user.login", target="user:bob")

    events = await database.audit.list_audit()
    assert [e.actor for e in events] == ["alice", "vehicle:WVWZZZ1JZXW000001", "bob"]
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert events[0].details == {}
    assert events[1].details == {"agent_version": "1.2.3", "capabilities": ["sovd"]}
    assert all(e.at.tzinfo is UTC and before <= e.at <= datetime.now(UTC) for e in events)

    [only] = await database.audit.list_audit(target="user:bob")
    assert only == events[2]
    assert await database.audit.list_audit(target="user:nobody") == []
