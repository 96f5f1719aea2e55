"""Retention: old audit rows and finished commands go; a signed summary keeps the chain whole."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import trio
from alembic import command as alembic_command

from hub import (
    Command,
    CommandEventRecord,
    CommandStatus,
    EventKind,
    SovdRequest,
    StatusChange,
    run_with_asyncio,
)
from storage import (
    BreakKind,
    Database,
    RetentionPolicy,
    open_database,
    signing_key,
)
from storage.audit_chain import MIGRATED_CHAIN
from storage.migrations import alembic_config
from tests.support.audit_tamper import query, run_sql, tamper

CHAIN = "node-a"
VIN = "WVWZZZ1JZXW000001"
KEY = signing_key("a retention signing secret of more than 32 bytes")
NOW = datetime.now(UTC)
SWEEP_AT = NOW + timedelta(days=40)  # with 30-day windows: older than NOW + 10 days goes


@pytest.fixture
async def db(aio_loop: asyncio.AbstractEventLoop, database_url: str) -> AsyncIterator[Database]:
    async with open_database(database_url, bcrypt_rounds=4, audit_chain=CHAIN) as opened:
        yield opened


def policy(**overrides: object) -> RetentionPolicy:
    values: dict[str, object] = {
        "audit_days": 30,
        "command_days": 30,
        "key": KEY,
        "node": CHAIN,
    }
    return RetentionPolicy(**(values | overrides))  # type: ignore[arg-type]


def command(at: datetime) -> Command:
    return Command(
        id=uuid.uuid4(),
        vin=VIN,
        name="ReadDTC",
        params={"ecuAddress": "0x10"},
        sovd=SovdRequest(method="GET", path="/components/engine/faults", query={}, body=None),
        timeout_s=30.0,
        submitted_by="alice",
        submitted_at=at,
    )


def event(c: Command, seq: int) -> CommandEventRecord:
    return CommandEventRecord(c.id, seq, EventKind.RESULT, 200, {"n": seq}, True, c.submitted_at)


def sql(url: str, statement: str) -> list[tuple[object, ...]]:
    return query(url, statement)


async def history(db: Database) -> dict[str, Command]:
    """Old rows first (older than the windows at SWEEP_AT), then recent ones, then an old one."""
    await db.vehicles.add_vehicle(VIN, make="VW", model="Golf", year=2021)
    old = NOW + timedelta(hours=1)
    done, failed, waiting = command(old), command(old), command(old)
    await db.commands.record([event(done, 0)], [], [done, failed, waiting])
    await db.commands.record(
        [],
        [
            StatusChange(done.id, CommandStatus.SUCCEEDED, old),
            StatusChange(failed.id, CommandStatus.FAILED, old, "no answer"),
        ],
    )
    recent = command(NOW + timedelta(days=20))
    await db.commands.record([event(recent, 0)], [], [recent])
    await db.commands.record(
        [], [StatusChange(recent.id, CommandStatus.SUCCEEDED, recent.submitted_at)]
    )
    # Old by its time, but after a recent row: retention removes a prefix only.
    await db.audit.append_audit(actor="hub", action="vehicle.connected", target=f"vehicle:{VIN}")
    return {"done": done, "failed": failed, "waiting": waiting, "recent": recent}


async def test_retention_removes_the_old_prefix_and_leaves_a_signed_summary(
    db: Database, database_url: str
) -> None:
    commands = await history(db)
    recent_id = str(commands["recent"].id)
    [(first_recent,)] = await trio.to_thread.run_sync(
        sql,
        database_url,
        "SELECT seq FROM audit_events WHERE action = 'command.submitted' "
        f"AND target = 'command:{recent_id}'",
    )
    cut = int(str(first_recent)) - 1
    [(anchor_hash,)] = await trio.to_thread.run_sync(
        sql, database_url, f"SELECT hash FROM audit_events WHERE seq = {cut}"
    )
    before = await db.audit.verify_audit(chain=CHAIN, key=KEY)

    [summary] = await db.audit.sweep_retention(policy(), SWEEP_AT)

    assert (summary.chain, summary.audit_rows, summary.anchor_seq) == (CHAIN, cut, cut)
    assert summary.anchor_hash == anchor_hash
    assert (summary.commands, summary.command_events) == (2, 1)
    assert summary.summary_seq == before[0].last_seq + 1
    # The old commands that finished are gone with their events; the others stay.
    assert await db.commands.get_command(commands["done"].id) is None
    assert await db.commands.get_command(commands["failed"].id) is None
    assert await db.commands.list_events(commands["done"].id) == []
    assert await db.commands.get_command(commands["waiting"].id) is not None
    assert await db.commands.get_command(commands["recent"].id) is not None
    # The summary is in the chain, says what went, and the head's anchor moved.
    [row] = [e for e in await db.audit.list_audit() if e.action == "audit.retention"]
    assert row.actor == "hub" and row.target == f"audit_chain:{CHAIN}"
    assert row.details["anchor_seq"] == cut and row.details["anchor_hash"] == anchor_hash
    audit = row.details["audit"]
    assert isinstance(audit, dict)
    assert (audit["rows"], audit["seq_from"], audit["seq_to"]) == (cut, 1, cut)
    commands_removed = row.details["commands"]
    assert isinstance(commands_removed, dict) and commands_removed["rows"] == 2
    [(anchor_seq, head_anchor_hash)] = await trio.to_thread.run_sync(
        sql, database_url, "SELECT anchor_seq, anchor_hash FROM audit_chains"
    )
    assert (anchor_seq, head_anchor_hash) == (cut, anchor_hash)
    [(lowest,)] = await trio.to_thread.run_sync(
        sql, database_url, "SELECT min(seq) FROM audit_events"
    )
    assert lowest == cut + 1
    # Verification starts at the anchor and still holds, signature included.
    [report] = await db.audit.verify_audit(chain=CHAIN, key=KEY)
    assert report.intact, report.broken
    assert (report.anchor_seq, report.summaries_checked) == (cut, 1)
    assert report.rows_checked == before[0].last_seq - cut + 1
    # Nothing more is old enough: the next sweep removes nothing and writes nothing.
    assert await db.audit.sweep_retention(policy(), SWEEP_AT) == []
    # The unlock was the retention transaction's own: DELETE is refused again.
    with pytest.raises(Exception, match="append-only"):
        await trio.to_thread.run_sync(run_sql, database_url, "DELETE FROM audit_events")
    assert await trio.to_thread.run_sync(
        sql, database_url, "SELECT count(*) FROM audit_retention_unlock"
    ) == [(0,)]


async def test_a_summary_signed_with_another_key_is_named(db: Database) -> None:
    await history(db)
    [summary] = await db.audit.sweep_retention(policy(), SWEEP_AT)
    other = signing_key("another secret, also longer than 32 bytes")
    [report] = await db.audit.verify_audit(chain=CHAIN, key=other)
    assert report.broken is not None
    assert (report.broken.kind, report.broken.seq) == (BreakKind.BAD_SIGNATURE, summary.summary_seq)
    # Without a key the chain still verifies and the anchor is still vouched for.
    [unkeyed] = await db.audit.verify_audit(chain=CHAIN)
    assert unkeyed.intact


async def test_an_anchor_moved_outside_retention_is_unattested(
    db: Database, database_url: str
) -> None:
    await history(db)
    [summary] = await db.audit.sweep_retention(policy(), SWEEP_AT)
    moved = summary.anchor_seq + 1
    await trio.to_thread.run_sync(
        tamper,
        database_url,
        f"UPDATE audit_chains SET anchor_seq = {moved}, anchor_hash = "
        f"(SELECT hash FROM audit_events WHERE seq = {moved})",
        f"DELETE FROM audit_events WHERE seq = {moved}",
    )
    [report] = await db.audit.verify_audit(chain=CHAIN, key=KEY)
    assert report.broken is not None
    assert (report.broken.kind, report.broken.seq) == (BreakKind.UNATTESTED_ANCHOR, moved)


async def test_a_sweep_removes_at_most_max_rows_and_the_next_goes_on(db: Database) -> None:
    await history(db)
    [first] = await db.audit.sweep_retention(policy(max_rows=2, command_days=0), SWEEP_AT)
    assert (first.audit_rows, first.anchor_seq, first.commands) == (2, 2, 0)
    [second] = await db.audit.sweep_retention(policy(max_rows=2, command_days=0), SWEEP_AT)
    assert (second.audit_rows, second.anchor_seq) == (2, 4)
    [report] = await db.audit.verify_audit(chain=CHAIN, key=KEY)
    assert report.intact and report.summaries_checked == 2


async def test_windows_of_zero_keep_everything(db: Database) -> None:
    await history(db)
    assert await db.audit.sweep_retention(policy(audit_days=0, command_days=0), SWEEP_AT) == []


# -- migration 0004 chains the rows written before it ------------------------


def test_migration_0004_chains_the_existing_rows(url_at_0003: str) -> None:
    postgres = url_at_0003.startswith("postgresql")
    zone = "+00" if postgres else ""
    rows = [
        (f"2025-01-0{i + 1} 10:00:00.12345{i}{zone}", f"user{i}", '{"a": 1.0, "b": [1e16, "x"]}')
        for i in range(5)
    ]
    run_sql(
        url_at_0003,
        *(
            "INSERT INTO audit_events (at, actor, action, target, details) "
            f"VALUES ('{at}', '{actor}', 'auth.login', 'user:{actor}', '{details}')"
            for at, actor, details in rows
        ),
    )
    alembic_command.upgrade(alembic_config(url_at_0003), "head")
    assert query(url_at_0003, "SELECT chain, seq, actor FROM audit_events ORDER BY id") == [
        (MIGRATED_CHAIN, i + 1, f"user{i}") for i in range(5)
    ]

    async def check() -> None:
        async with open_database(url_at_0003, audit_chain=CHAIN) as db:
            await db.audit.append_audit(actor="hub", action="hub.started", target="hub")
            reports = await db.audit.verify_audit()
        assert [(r.chain, r.rows_checked, r.intact) for r in reports] == [
            (MIGRATED_CHAIN, 5, True),
            (CHAIN, 1, True),
        ]

    run_with_asyncio(check)
