"""`sovd-hub audit verify`, run as a real process against a real database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trio

from storage import Database, RetentionPolicy, open_database, signing_key
from tests.support.audit_tamper import query, tamper

SIGNING_SECRET = "audit-cli-test-signing-key-" + "k" * 20
CHAIN = "node-cli"


async def sovd_hub(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run `sovd-hub ARGS`; its exit code, stdout and stderr."""
    done: subprocess.CompletedProcess[bytes] = await trio.run_process(
        [sys.executable, "-m", "sovd_hub", *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env={**os.environ, "SOVD_HUB_JWT_SECRET": "", **(env or {})},
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def some_history(db: Database) -> None:
    await db.vehicles.add_vehicle("WVWZZZ1JZXW000009", make="VW", model="Golf", year=2021)
    for i in range(6):
        await db.audit.append_audit(actor=f"user{i}", action="auth.login", target=f"user:user{i}")


async def test_verify_says_intact_then_names_the_altered_row(
    database_url: str, aio_loop: object
) -> None:
    async with open_database(database_url, audit_chain=CHAIN) as db:
        await some_history(db)
        # Retention (60 days on) removes everything so far and signs its summary.
        policy = RetentionPolicy(30, 0, signing_key(SIGNING_SECRET), CHAIN)
        [summary] = await db.audit.sweep_retention(policy, datetime.now(UTC) + timedelta(days=60))
        await some_history_after(db)
    keyed = {"SOVD_HUB_AUDIT_SIGNING_KEY": SIGNING_SECRET}

    code, out, err = await sovd_hub("audit", "verify", "--database-url", database_url, env=keyed)
    assert code == 0, err
    rows = 1 + 3  # the summary and three rows after it
    assert out.splitlines() == [
        f"chain {CHAIN}: intact, {rows} rows checked (seq {summary.anchor_seq + 1}-"
        f"{summary.anchor_seq + rows}, anchored at seq {summary.anchor_seq}, 1 retention summary)",
        f"audit trail intact: 1 chain(s), {rows} rows checked",
    ]
    assert err == ""

    target = summary.anchor_seq + 3
    [(row_id,)] = await trio.to_thread.run_sync(
        query, database_url, f"SELECT id FROM audit_events WHERE seq = {target}"
    )
    await trio.to_thread.run_sync(
        tamper,
        database_url,
        f"UPDATE audit_events SET target = 'user:nobody' WHERE seq = {target}",
    )
    code, out, _ = await sovd_hub("audit", "verify", "--database-url", database_url, env=keyed)
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(
        f"chain {CHAIN}: BROKEN at seq {target} (id {row_id}): hash mismatch: "
        "the row's content does not match its hash"
    )
    assert lines[-1] == (
        f"audit trail BROKEN: 1 of 1 chain(s); first: chain {CHAIN} at seq {target} (hash mismatch)"
    )


async def some_history_after(db: Database) -> None:
    for i in range(3):
        await db.audit.append_audit(actor="hub", action="vehicle.connected", target=f"v:{i}")


async def test_verify_without_the_key_and_for_an_unknown_chain(
    sqlite_template: Path, tmp_path: Path, aio_loop: object
) -> None:
    # Nothing here depends on the backend: SQLite only, to spare the suite two processes.
    shutil.copyfile(sqlite_template, tmp_path / "hub.db")
    database_url = f"sqlite:///{tmp_path / 'hub.db'}"
    async with open_database(database_url, audit_chain=CHAIN) as db:
        await some_history(db)
    code, out, err = await sovd_hub("audit", "verify", "--database-url", database_url)
    assert code == 0
    assert out.splitlines()[-1].startswith("audit trail intact: 1 chain(s)")
    assert "signatures were not checked: set SOVD_HUB_AUDIT_SIGNING_KEY" in err

    code, out, err = await sovd_hub(
        "audit", "verify", "--chain", "nope", "--database-url", database_url
    )
    assert code == 2
    assert "no audit chain named 'nope'" in err
