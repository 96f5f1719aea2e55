"""Durability: the audit trail becomes a hash chain, append-only in the database.

Adds `chain`, `seq`, `prev_hash`, `hash` to `audit_events` (rows written
before this migration are chained, in id order, into the chain "migrated"
with `storage.audit_chain.row_hash`), the chain heads (`audit_chains`), the
retention unlock table and the triggers that refuse UPDATE and DELETE on
`audit_events` (DELETE is allowed only inside a retention transaction, which
holds a row in `audit_retention_unlock`). Other parts of issue 6 add their
columns here too.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.audit_chain import GENESIS_HASH, MIGRATED_CHAIN, row_hash
from storage.models import JSONType, UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PAGE = 1000

_PG_TRIGGERS = (
    """
    CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM audit_retention_unlock) THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    """
    CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
        FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()
    """,
    """
    CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
        FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()
    """,
    # Bites only when the hub's role does not own the table (see the README).
    "REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM PUBLIC",
)

_SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    BEGIN
        SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused');
    END
    """,
    """
    CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    WHEN NOT EXISTS (SELECT 1 FROM audit_retention_unlock)
    BEGIN
        SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused');
    END
    """,
)


def upgrade() -> None:
    op.create_table(
        "audit_chains",
        sa.Column("chain", sa.String(64), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("anchor_seq", sa.BigInteger(), nullable=False),
        sa.Column("anchor_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("chain", name="pk_audit_chains"),
    )
    op.create_table(
        "audit_retention_unlock",
        sa.Column("chain", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("chain", name="pk_audit_retention_unlock"),
    )
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("chain", sa.String(64), nullable=True))
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("prev_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("vin", sa.String(17), nullable=True))
    _chain_existing_rows()
    _fill_vins()
    with op.batch_alter_table("audit_events", table_kwargs={"sqlite_autoincrement": True}) as batch:
        for name in ("chain", "seq", "prev_hash", "hash"):
            batch.alter_column(name, nullable=False)
        batch.create_unique_constraint("uq_audit_events_chain_seq", ["chain", "seq"])
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    # (x, id): a filtered audit listing walks its rows in id order (keyset pages).
    op.create_index("ix_audit_events_actor", "audit_events", ["actor", "id"])
    op.create_index("ix_audit_events_action", "audit_events", ["action", "id"])
    op.create_index("ix_audit_events_vin", "audit_events", ["vin", "id"])
    # Crash recovery: which node holds each command (NULL for commands written before).
    with op.batch_alter_table("commands") as batch:
        batch.add_column(sa.Column("node_id", sa.String(64), nullable=True))
    op.create_index("ix_commands_node_id_status", "commands", ["node_id", "status"])
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in _PG_TRIGGERS if postgres else _SQLITE_TRIGGERS:
        op.execute(statement)


def _fill_vins() -> None:
    """The vehicle of the rows written before this migration (`GET /api/v1/audit?vin=`).

    From a `vehicle:<VIN>` target, or the command's VIN for a `command:<id>`
    target (SQLite keeps uuids as 32 hex digits, Postgres as `uuid`).
    """
    op.execute(
        "UPDATE audit_events SET vin = substr(target, 9) "
        "WHERE target LIKE 'vehicle:%' AND length(target) = 25"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE audit_events SET vin = commands.vin FROM commands "
            "WHERE audit_events.target LIKE 'command:%' "
            "AND commands.id::text = substr(audit_events.target, 9)"
        )
    else:
        op.execute(
            "UPDATE audit_events SET vin = (SELECT commands.vin FROM commands "
            "WHERE commands.id = replace(substr(audit_events.target, 9), '-', '')) "
            "WHERE target LIKE 'command:%'"
        )


def _chain_existing_rows() -> None:
    """Chain the rows written before this migration, in id order, page by page."""
    events = sa.table(
        "audit_events",
        sa.column("id", sa.BigInteger()),
        sa.column("at", UTCDateTime()),
        sa.column("actor", sa.String()),
        sa.column("action", sa.String()),
        sa.column("target", sa.String()),
        sa.column("details", JSONType),
        sa.column("chain", sa.String()),
        sa.column("seq", sa.BigInteger()),
        sa.column("prev_hash", sa.String()),
        sa.column("hash", sa.String()),
    )
    chains = sa.table(
        "audit_chains",
        sa.column("chain", sa.String()),
        sa.column("last_seq", sa.BigInteger()),
        sa.column("last_hash", sa.String()),
        sa.column("anchor_seq", sa.BigInteger()),
        sa.column("anchor_hash", sa.String()),
    )
    bind = op.get_bind()
    set_chain = (
        sa.update(events)
        .where(events.c.id == sa.bindparam("b_id"))
        .values(
            chain=MIGRATED_CHAIN,
            seq=sa.bindparam("b_seq"),
            prev_hash=sa.bindparam("b_prev"),
            hash=sa.bindparam("b_hash"),
        )
    )
    columns = (events.c.id, events.c.at, events.c.actor, events.c.action, events.c.target)
    last_id, seq, prev = -1, 0, GENESIS_HASH
    while True:
        page = bind.execute(
            sa.select(*columns, events.c.details)
            .where(events.c.id > last_id)
            .order_by(events.c.id)
            .limit(_PAGE)
        ).all()
        if not page:
            break
        params = []
        for row in page:
            seq += 1
            digest = row_hash(
                prev, MIGRATED_CHAIN, seq, row.at, row.actor, row.action, row.target, row.details
            )
            params.append({"b_id": row.id, "b_seq": seq, "b_prev": prev, "b_hash": digest})
            prev, last_id = digest, row.id
        bind.execute(set_chain, params)
    if seq:
        bind.execute(
            sa.insert(chains).values(
                chain=MIGRATED_CHAIN,
                last_seq=seq,
                last_hash=prev,
                anchor_seq=0,
                anchor_hash=GENESIS_HASH,
            )
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION audit_events_append_only()")
    else:
        op.execute("DROP TRIGGER audit_events_no_delete")
        op.execute("DROP TRIGGER audit_events_no_update")
    op.drop_index("ix_commands_node_id_status", table_name="commands")
    with op.batch_alter_table("commands") as batch:
        batch.drop_column("node_id")
    op.drop_index("ix_audit_events_vin", table_name="audit_events")
    op.drop_index("ix_audit_events_action", table_name="audit_events")
    op.drop_index("ix_audit_events_actor", table_name="audit_events")
    op.drop_index("ix_audit_events_at", table_name="audit_events")
    with op.batch_alter_table("audit_events", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_constraint("uq_audit_events_chain_seq", type_="unique")
        batch.drop_column("vin")
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
        batch.drop_column("seq")
        batch.drop_column("chain")
    op.drop_table("audit_retention_unlock")
    op.drop_table("audit_chains")
