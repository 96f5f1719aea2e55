"""Vehicle tokens: an index on `vehicles.token_hash`, so the gateway finds a vehicle by its token.

The gateway authenticates a connection on its request headers, before it
reads any message: it looks the vehicle up by its token's SHA-256 alone.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_vehicles_token_hash", "vehicles", ["token_hash"])


def downgrade() -> None:
    op.drop_index("ix_vehicles_token_hash", table_name="vehicles")
