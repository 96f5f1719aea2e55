"""The audit trail's hash chain: appended gap-free, append-only in the database, verified."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import trio

from hub import AuditNote, Command, CommandStatus, SovdRequest, StatusChange, run_asyncio
from storage import BreakKind, ChainReport, Database, open_database
from storage.audit_chain import GENESIS_HASH, append_audit_rows, canonical_row, row_hash
from tests.support.audit_tamper import query, run_sql, tamper

CHAIN = "node-a"
VIN = "WVWZZZ1JZXW000001"
T0 = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
async def db(aio_loop: asyncio.AbstractEventLoop, database_url: str) -> AsyncIterator[Database]:
    async with open_database(database_url, bcrypt_rounds=4, audit_chain=CHAIN) as opened:
        yield opened


def command(at: datetime = T0, vin: str = VIN) -> Command:
    return Command(
        id=uuid.uuid4(),
        vin=vin,
        name="ReadDTC",
        params={"ecuAddress": "0x10", "big": 1e16, "small": 1.5e-7},
        sovd=SovdRequest(method="GET", path="/components/engine/faults", query={}, body=None),
        timeout_s=30.0,
        submitted_by="alice",
        submitted_at=at,
    )


async def some_history(db: Database) -> None:
    """Eight audit rows of several kinds, through several repository methods."""
    await db.vehicles.add_vehicle(VIN, make="VW", model="Golf", year=2021)  # 1
    await db.accounts.add_user("alice", "correct horse battery", "engineer")  # 2
    first, second = command(), command(T0 + timedelta(seconds=1))
    await db.commands.record([], [], [first, second])  # 3, 4
    done = [StatusChange(first.id, CommandStatus.SUCCEEDED, T0 + timedelta(seconds=2))]
    await db.commands.record([], done)  # 5
    await db.audit.append_audit(
        actor="hub", action="vehicle.connected", target=f"vehicle:{VIN}"
    )  # 6
    await db.vehicles.set_vehicle_enabled(VIN, False, by="admin")  # 7
    await db.audit.append_audit(actor="bob", action="auth.login_failed", target="user:bob")  # 8


async def verify(db: Database, key: bytes | None = None) -> ChainReport:
    [report] = await db.audit.verify_audit(chain=CHAIN, key=key)
    return report


def sql(url: str, statement: str) -> list[tuple[object, ...]]:
    return query(url, statement)


async def test_appends_form_one_gap_free_chain_that_verifies(
    db: Database, database_url: str
) -> None:
    await some_history(db)
    rows = await trio.to_thread.run_sync(
        sql,
        database_url,
        "SELECT chain, seq, prev_hash, hash, action FROM audit_events ORDER BY seq",
    )
    n = len(rows)
    assert n >= 8
    assert [r[0] for r in rows] == [CHAIN] * n
    assert [r[1] for r in rows] == list(range(1, n + 1))
    assert rows[0][2] == GENESIS_HASH
    assert all(rows[i][2] == rows[i - 1][3] for i in range(1, n))
    [head] = await trio.to_thread.run_sync(
        sql, database_url, "SELECT chain, last_seq, last_hash, anchor_seq FROM audit_chains"
    )
    assert head == (CHAIN, n, rows[-1][3], 0)
    report = await verify(db)
    assert report.intact and report.rows_checked == n and report.last_seq == n


def test_the_hash_covers_every_field_in_a_canonical_form() -> None:
    at = datetime(2025, 6, 1, 14, 0, 0, 123456, tzinfo=UTC)
    text = canonical_row("n", 3, at, "alice", "auth.login", "user:alice", {"b": 1, "a": [2.0]})
    assert text == (
        '{"action":"auth.login","actor":"alice","at":"2025-06-01T14:00:00.123456Z",'
        '"chain":"n","details":{"a":[2],"b":1},"seq":3,"target":"user:alice"}'
    )
    base = row_hash(GENESIS_HASH, "n", 3, at, "alice", "a", "t", {})
    assert len(base) == 64
    assert row_hash("1" * 64, "n", 3, at, "alice", "a", "t", {}) != base
    assert row_hash(GENESIS_HASH, "n", 4, at, "alice", "a", "t", {}) != base
    assert row_hash(GENESIS_HASH, "n", 3, at, "alice", "a", "t", {"x": 1}) != base


async def test_update_and_delete_of_audit_rows_are_refused_by_the_database(
    db: Database, database_url: str
) -> None:
    await some_history(db)
    for statement in (
        "UPDATE audit_events SET actor = 'mallory' WHERE action = 'user.added'",
        "DELETE FROM audit_events WHERE action = 'user.added'",
    ):
        with pytest.raises(Exception, match="append-only"):
            await trio.to_thread.run_sync(run_sql, database_url, statement)
    assert (await verify(db)).intact
    [(actor,)] = await trio.to_thread.run_sync(
        sql, database_url, "SELECT actor FROM audit_events WHERE action = 'user.added'"
    )
    assert actor == "hub"


async def test_an_altered_row_is_named_by_verify(db: Database, database_url: str) -> None:
    await some_history(db)
    [(row_id,)] = await trio.to_thread.run_sync(
        sql, database_url, "SELECT id FROM audit_events WHERE seq = 5"
    )
    await trio.to_thread.run_sync(
        tamper, database_url, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 5"
    )
    report = await verify(db)
    assert report.broken is not None
    assert (report.broken.kind, report.broken.seq, report.broken.id) == (
        BreakKind.HASH_MISMATCH,
        5,
        row_id,
    )
    assert report.rows_checked == 4
    assert "actor 'mallory'" in report.broken.message


async def test_a_row_rewritten_with_a_fresh_hash_breaks_the_next_link(
    db: Database, database_url: str
) -> None:
    await some_history(db)
    await trio.to_thread.run_sync(
        tamper, database_url, f"UPDATE audit_events SET hash = '{'f' * 64}' WHERE seq = 5"
    )
    report = await verify(db)
    assert report.broken is not None
    # Row 5's own hash no longer matches its content: it is the first broken row.
    assert (report.broken.kind, report.broken.seq) == (BreakKind.HASH_MISMATCH, 5)


async def test_a_deleted_row_is_a_missing_seq(db: Database, database_url: str) -> None:
    await some_history(db)
    await trio.to_thread.run_sync(tamper, database_url, "DELETE FROM audit_events WHERE seq = 4")
    report = await verify(db)
    assert report.broken is not None
    assert (report.broken.kind, report.broken.seq, report.broken.id) == (
        BreakKind.MISSING_SEQ,
        4,
        None,
    )
    assert "seq 4 is missing (the next row is seq 5" in report.broken.message


async def test_a_truncated_tail_is_a_head_mismatch(db: Database, database_url: str) -> None:
    await some_history(db)
    await trio.to_thread.run_sync(tamper, database_url, "DELETE FROM audit_events WHERE seq >= 7")
    report = await verify(db)
    assert report.broken is not None
    assert report.broken.kind == BreakKind.HEAD_MISMATCH
    assert report.broken.seq == 7
    assert f"ends at seq 6 but its head says seq {report.last_seq}" in report.broken.message
    assert report.rows_checked == 6


async def test_a_chain_whose_head_was_deleted_is_reported(db: Database, database_url: str) -> None:
    await some_history(db)
    await trio.to_thread.run_sync(tamper, database_url, "DELETE FROM audit_chains")
    report = await verify(db)
    assert report.broken is not None and report.broken.kind == BreakKind.NO_HEAD


async def test_each_node_appends_to_its_own_chain(
    db: Database, database_url: str, aio_loop: asyncio.AbstractEventLoop
) -> None:
    await db.audit.append_audit(actor="hub", action="a", target="t")
    async with open_database(database_url, node_id="node-b") as other:
        assert other.audit_chain == "node-b"
        await other.audit.append_audit(actor="hub", action="b", target="t")
        await other.audit.append_audit(actor="hub", action="c", target="t")
        reports = await other.audit.verify_audit()
    assert [(r.chain, r.rows_checked, r.intact) for r in reports] == [
        (CHAIN, 1, True),
        ("node-b", 2, True),
    ]


async def test_concurrent_appends_and_group_commits_give_one_gap_free_chain(
    db: Database,
) -> None:
    await db.vehicles.add_vehicle(VIN, make="VW", model="Golf", year=2021)
    before = (await verify(db)).last_seq

    async def route_style(i: int) -> None:
        await db.audit.append_audit(actor=f"user{i}", action="auth.login", target=f"user:user{i}")

    async def group_commit(i: int) -> None:
        submitted = [command(T0 + timedelta(seconds=i)) for _ in range(3)]
        await db.commands.record([], [], submitted)
        ended = [StatusChange(c.id, CommandStatus.FAILED, T0, "x") for c in submitted[:2]]
        await db.commands.record([], ended)

    async with trio.open_nursery() as nursery:
        for i in range(40):
            nursery.start_soon(route_style, i)
            nursery.start_soon(group_commit, i)
    report = await verify(db)
    assert report.intact, report.broken
    assert report.rows_checked == before + 40 + 40 * 5 == report.last_seq


class _RolledBack(Exception):
    pass


async def _append_then_roll_back(db: Database) -> None:
    async def transaction() -> None:
        async with db.engine.writer.begin() as conn:
            note = AuditNote(T0, "hub", "rolled.back", "t", {})
            await append_audit_rows(conn, [note])
            raise _RolledBack

    with pytest.raises(_RolledBack):
        await run_asyncio(transaction)


async def test_a_head_advanced_elsewhere_or_rolled_back_still_gives_one_gap_free_chain(
    db: Database, database_url: str, aio_loop: asyncio.AbstractEventLoop
) -> None:
    """Each engine remembers the head it wrote; another process's appends (another engine
    on the same chain), a rolled-back append and retention-style head moves make that stale,
    and the next append then takes the head the slow way."""
    async with open_database(database_url, audit_chain=CHAIN) as other:
        for i in range(3):
            await db.audit.append_audit(actor="a", action=f"a{i}", target="t")
            await other.audit.append_audit(actor="b", action=f"b{i}", target="t")
        await _append_then_roll_back(db)
        await db.audit.append_audit(actor="a", action="after rollback", target="t")
        await other.audit.append_audit(actor="b", action="after rollback", target="t")
    report = await verify(db)
    assert report.intact, report.broken
    assert report.rows_checked == report.last_seq == 8
    actions = await db.audit.list_audit()
    assert "rolled.back" not in {record.action for record in actions}


async def test_json_numbers_hash_the_same_after_the_round_trip(db: Database) -> None:
    details = {"f": 1e16, "g": 2.5, "h": 1e-7, "i": 10**20, "j": [1.0, True, None, "x"]}
    await db.audit.append_audit(actor="a", action="numbers", target="t", details=details)  # type: ignore[arg-type]
    assert (await verify(db)).intact
