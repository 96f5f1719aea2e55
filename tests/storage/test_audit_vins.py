"""Which vehicle an audit row concerns: set as rows are written, and by migration 0004 for
the rows written before it (the `vin` behind `GET /api/v1/audit?vin=`)."""

from __future__ import annotations

import uuid

from alembic import command as alembic_command

from storage.audit_queries import audit_vin
from storage.migrations import alembic_config
from tests.support.audit_tamper import query, run_sql

VIN = "WVWZZZ1JZXW000001"


def test_a_row_concerns_its_target_vehicle_or_its_command_vehicle() -> None:
    assert audit_vin(f"vehicle:{VIN}", {}) == VIN
    assert audit_vin("command:1", {"vin": VIN, "error": None}) == VIN
    assert audit_vin("user:alice", {"role": "admin"}) is None
    assert audit_vin("vehicle:?", {"claimed_vin": "'X'"}) is None
    assert audit_vin("command:1", {"vin": "short"}) is None
    assert audit_vin("command:1", {"vin": 17}) is None


def test_migration_0004_finds_the_vehicle_of_earlier_rows(url_at_0003: str) -> None:
    postgres = url_at_0003.startswith("postgresql")
    command = uuid.uuid4()
    stored_id = str(command) if postgres else command.hex  # SQLite keeps 32 hex digits
    at = "'2025-01-01 10:00:00+00'" if postgres else "'2025-01-01 10:00:00'"
    true = "true" if postgres else "1"
    run_sql(
        url_at_0003,
        "INSERT INTO vehicles (vin, make, model, year, metadata, token_hash, enabled, created_at) "
        f"VALUES ('{VIN}', 'VW', 'Golf', 2021, '{{}}', '{'0' * 64}', {true}, {at})",
        "INSERT INTO commands (id, vin, submitted_by, name, params, sovd, status, timeout_s, "
        f"submitted_at) VALUES ('{stored_id}', '{VIN}', 'alice', 'ReadDTC', '{{}}', '{{}}', "
        f"'succeeded', 5, {at})",
        *(
            "INSERT INTO audit_events (at, actor, action, target, details) "
            f"VALUES ({at}, 'x', '{action}', '{target}', '{{}}')"
            for action, target in (
                ("vehicle.added", f"vehicle:{VIN}"),
                ("command.succeeded", f"command:{command}"),  # no vin in its details then
                ("command.succeeded", f"command:{uuid.uuid4()}"),  # its command is gone
                ("user.added", "user:alice"),
            )
        ),
    )
    alembic_command.upgrade(alembic_config(url_at_0003), "head")
    assert query(url_at_0003, "SELECT action, vin FROM audit_events ORDER BY id") == [
        ("vehicle.added", VIN),
        ("command.succeeded", VIN),
        ("command.succeeded", None),
        ("user.added", None),
    ]
