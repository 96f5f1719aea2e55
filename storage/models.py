"""SQLAlchemy 2 declarative models: the tables the hub keeps.

The initial migration (`storage/alembic/versions/0001_initial.py`) is written
by hand from these; a change here needs a new migration too.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    JSON as SA_JSON,
)
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from hub import JSON

__all__ = [
    "ROLES",
    "AuditChainModel",
    "AuditEventModel",
    "AuditRetentionUnlockModel",
    "Base",
    "CommandEventModel",
    "CommandModel",
    "SessionModel",
    "UTCDateTime",
    "UserModel",
    "VehicleModel",
]

ROLES = ("viewer", "engineer", "admin")

# Deterministic constraint names, so later migrations can name what they alter.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on Postgres (indexable, compact), JSON text elsewhere.
JSONType = SA_JSON().with_variant(JSONB(), "postgresql")

# High-volume append-only tables get 64-bit ids on Postgres; SQLite only
# autoincrements a column declared exactly INTEGER PRIMARY KEY.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    Postgres keeps `timestamptz`. SQLite has no time zones, so values are
    stored as naive UTC and come back with `tzinfo=UTC`. Naive datetimes are
    refused: their zone is a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; pass a timezone-aware one")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every storage model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UserModel(Base):
    """An operator account."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('viewer', 'engineer', 'admin')", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=true())


class SessionModel(Base):
    """One login: a family of refresh tokens, each used once, and the access tokens they gave.

    Only the hash of the current refresh token is kept. Revoking the session
    (logout, reuse of an old refresh token, a disabled user) ends the family
    and every access token that names it.
    """

    __tablename__ = "sessions"
    __table_args__ = (
        Index("ix_sessions_user_id", "user_id"),
        Index("ix_sessions_revoked_at", "revoked_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id"))
    refresh_hash: Mapped[str] = mapped_column(String(64))
    generation: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(256), nullable=True)


class VehicleModel(Base):
    """A registered vehicle and the hash of its link token."""

    __tablename__ = "vehicles"
    __table_args__ = (
        CheckConstraint("length(vin) = 17", name="vin_length"),
        # The gateway finds a connecting vehicle by its token's hash (migration 0005).
        Index("ix_vehicles_token_hash", "token_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vin: Mapped[str] = mapped_column(String(17), unique=True)
    make: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(100))
    year: Mapped[int] = mapped_column(Integer)
    # "metadata" is reserved on declarative classes, hence the attribute name.
    metadata_: Mapped[dict[str, JSON]] = mapped_column("metadata", JSONType)
    token_hash: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class CommandModel(Base):
    """An operator's command and where it is in its lifecycle."""

    __tablename__ = "commands"
    __table_args__ = (
        Index("ix_commands_vin_submitted_at", "vin", "submitted_at"),
        Index("ix_commands_status", "status"),
        Index("ix_commands_status_expires_at", "status", "expires_at"),
        Index("ix_commands_submitted_by_submitted_at", "submitted_by", "submitted_at"),
        Index("ix_commands_submitted_at", "submitted_at"),
        Index("ix_commands_node_id_status", "node_id", "status"),
        UniqueConstraint("submitted_by", "idempotency_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    vin: Mapped[str] = mapped_column(String(17), ForeignKey("vehicles.vin"))
    submitted_by: Mapped[str] = mapped_column(String(150))
    name: Mapped[str] = mapped_column(String(100))
    params: Mapped[dict[str, JSON]] = mapped_column(JSONType)
    sovd: Mapped[dict[str, JSON]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    timeout_s: Mapped[float] = mapped_column(Float)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: Set for a command that may wait for its offline vehicle until then (`ttl_s`).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: The operator's `Idempotency-Key` and the hash of the body it came with.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: The node (`node_id`) that accepted the command, then the one that dispatched it:
    #: its restart interrupts the command if it is still active (NULL: written before 0004).
    node_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class CommandEventModel(Base):
    """One event a vehicle reported for a command, numbered by `seq`."""

    __tablename__ = "command_events"
    __table_args__ = (UniqueConstraint("command_id", "seq"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    command_id: Mapped[uuid.UUID] = mapped_column(Uuid(), ForeignKey("commands.id"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[int] = mapped_column(Integer)
    # JSON null is a value here (stored as 'null'), not a missing one.
    body: Mapped[JSON] = mapped_column(JSONType, nullable=False)
    final: Mapped[bool] = mapped_column(Boolean)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditEventModel(Base):
    """One entry of the append-only audit trail."""

    __tablename__ = "audit_events"
    # AUTOINCREMENT on SQLite: ids of an append-only trail are never reused.
    __table_args__ = (
        Index("ix_audit_events_target", "target"),
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_actor", "actor", "id"),
        Index("ix_audit_events_action", "action", "id"),
        Index("ix_audit_events_vin", "vin", "id"),
        UniqueConstraint("chain", "seq"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(150))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(200))
    details: Mapped[dict[str, JSON]] = mapped_column(JSONType)
    #: The hash chain (storage/audit_chain.py): the node's chain, 1, 2, 3... in it.
    chain: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    #: The vehicle the row concerns (a `vehicle:<VIN>` target, or `details["vin"]` of a
    #: command's row), for `GET /api/v1/audit?vin=`; derived, so not in the hash.
    vin: Mapped[str | None] = mapped_column(String(17), nullable=True)


class AuditChainModel(Base):
    """The head of one audit hash chain, locked by every transaction that appends to it.

    `anchor_seq`/`anchor_hash`: where verification starts (0 and 64 zeros,
    or the last row retention removed).
    """

    __tablename__ = "audit_chains"

    chain: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))
    anchor_seq: Mapped[int] = mapped_column(BigInteger)
    anchor_hash: Mapped[str] = mapped_column(String(64))


class AuditRetentionUnlockModel(Base):
    """While a retention transaction holds a row here, the triggers let it DELETE audit rows.

    The row is inserted and deleted inside that one transaction, so no other
    transaction ever sees it.
    """

    __tablename__ = "audit_retention_unlock"

    chain: Mapped[str] = mapped_column(String(64), primary_key=True)
