"""Commands may wait for an offline vehicle until `expires_at`.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("commands") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_commands_status_expires_at", "commands", ["status", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_commands_status_expires_at", table_name="commands")
    with op.batch_alter_table("commands") as batch:
        batch.drop_column("expires_at")
