"""The node's retention task and its settings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
import trio

from hub import Command, CommandStatus, ConfigError, SovdRequest, StatusChange
from sovd_hub import retention_policy, run_retention, verify_key
from storage import Database, StorageConfig, signing_key

JWT_SECRET = "retention-test-jwt-secret-" + "j" * 20
VIN = "WVWZZZ1JZXW000008"


def test_no_window_means_no_task_and_the_key_falls_back_to_jwt_secret() -> None:
    assert retention_policy(StorageConfig(), JWT_SECRET, "n1") is None
    policy = retention_policy(StorageConfig(command_retention_days=7), JWT_SECRET, "n1")
    assert policy is not None
    assert (policy.audit_days, policy.command_days, policy.node) == (0, 7, "n1")
    assert policy.key == signing_key(JWT_SECRET)
    dedicated = "d" * 40
    config = StorageConfig(audit_retention_days=90, audit_signing_key=dedicated)
    keyed = retention_policy(config, JWT_SECRET, "n1")
    assert keyed is not None and keyed.key == signing_key(dedicated)
    assert verify_key(config, None) == (signing_key(dedicated), None)
    assert verify_key(StorageConfig(), {"jwt_secret": JWT_SECRET}) == (
        signing_key(JWT_SECRET),
        None,
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"audit_retention_days": -1}, "audit_retention_days (SOVD_HUB_AUDIT_RETENTION_DAYS)"),
        ({"command_retention_days": 40000}, "0 (keep forever) to 36500, got 40000"),
        ({"retention_sweep_s": 0}, "retention_sweep_s must be a finite number greater than 0"),
        ({"audit_signing_key": "short"}, "audit_signing_key (SOVD_HUB_AUDIT_SIGNING_KEY)"),
    ],
)
def test_bad_retention_settings_are_refused(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        StorageConfig(**settings)  # type: ignore[arg-type]


async def test_the_task_sweeps_when_started(database: Database) -> None:
    await database.vehicles.add_vehicle(VIN, make="VW", model="Golf", year=2021)
    long_ago = datetime.now(UTC) - timedelta(days=10)
    old = Command(
        id=uuid.uuid4(),
        vin=VIN,
        name="ReadDTC",
        params={},
        sovd=SovdRequest(method="GET", path="/components/engine/faults", query={}, body=None),
        timeout_s=30.0,
        submitted_by="alice",
        submitted_at=long_ago,
    )
    await database.commands.record([], [], [old])
    await database.commands.record([], [StatusChange(old.id, CommandStatus.SUCCEEDED, long_ago)])
    policy = retention_policy(StorageConfig(command_retention_days=1), JWT_SECRET, "n1")
    swept = trio.Event()
    async with trio.open_nursery() as nursery:
        scope = await nursery.start(
            partial(run_retention, on_sweep=lambda _: swept.set()), database, policy, 3600.0
        )
        await swept.wait()
        scope.cancel()
    assert await database.commands.get_command(old.id) is None
    [summary] = [e for e in await database.audit.list_audit() if e.action == "audit.retention"]
    removed = summary.details["commands"]
    assert isinstance(removed, dict) and removed["rows"] == 1
    [report] = await database.audit.verify_audit(key=signing_key(JWT_SECRET))
    assert report.intact and report.summaries_checked == 1
