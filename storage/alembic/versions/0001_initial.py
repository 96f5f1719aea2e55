"""Initial schema: users, vehicles, commands, command events, audit trail.

Revision ID: 0001
Revises:
Create Date: 2025-11-26

Written by hand to run unchanged on SQLite and Postgres. Constraint names
follow `storage.models.NAMING_CONVENTION`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.JSON:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _big_id() -> sa.BigInteger:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create every table of the first release."""
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("password_hash", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
        sa.CheckConstraint("role IN ('viewer', 'engineer', 'admin')", name="ck_users_role"),
    )
    op.create_table(
        "vehicles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vin", sa.String(17), nullable=False),
        sa.Column("make", sa.String(100), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("metadata", _json(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("last_seen_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_vehicles"),
        sa.UniqueConstraint("vin", name="uq_vehicles_vin"),
        sa.CheckConstraint("length(vin) = 17", name="ck_vehicles_vin_length"),
    )
    op.create_table(
        "commands",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("vin", sa.String(17), nullable=False),
        sa.Column("submitted_by", sa.String(150), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("sovd", _json(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("timeout_s", sa.Float(), nullable=False),
        sa.Column("submitted_at", _timestamp(), nullable=False),
        sa.Column("started_at", _timestamp(), nullable=True),
        sa.Column("finished_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_commands"),
        sa.ForeignKeyConstraint(["vin"], ["vehicles.vin"], name="fk_commands_vin_vehicles"),
    )
    op.create_index("ix_commands_vin_submitted_at", "commands", ["vin", "submitted_at"])
    op.create_index("ix_commands_status", "commands", ["status"])
    op.create_table(
        "command_events",
        sa.Column("id", _big_id(), nullable=False),
        sa.Column("command_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", _json(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("received_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_command_events"),
        sa.UniqueConstraint("command_id", "seq", name="uq_command_events_command_id_seq"),
        sa.ForeignKeyConstraint(
            ["command_id"], ["commands.id"], name="fk_command_events_command_id_commands"
        ),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("at", _timestamp(), nullable=False),
        sa.Column("actor", sa.String(150), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("details", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_audit_events_target", "audit_events", ["target"])


def downgrade() -> None:
    """Drop every table (this loses all data)."""
    op.drop_index("ix_audit_events_target", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_table("command_events")
    op.drop_index("ix_commands_status", table_name="commands")
    op.drop_index("ix_commands_vin_submitted_at", table_name="commands")
    op.drop_table("commands")
    op.drop_table("vehicles")
    op.drop_table("users")
