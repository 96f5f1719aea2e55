"""The hub's database: users, vehicles, commands, their events and the audit trail.

SQLAlchemy's async engine is asyncio; the hub is trio. Every public method
of `Database` is a trio `async def` that crosses the bridge once, running
its whole transaction as one asyncio coroutine from `storage.queries`. All of
them need a running `trio_asyncio.open_loop()`.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import bcrypt
import trio
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hub.auditing import AuditNote
from hub.bridge import run_asyncio
from hub.credentials import hash_vehicle_token, new_vehicle_token
from hub.model import (
    JSON,
    Command,
    CommandEventRecord,
    CommandStatus,
    CommandUpdate,
    StatusChange,
    StoredCommand,
    VehicleCredentials,
)
from storage import (
    accounts,
    audit_queries,
    audit_retention,
    audit_verify,
    cluster_queries,
    history,
    queries,
)
from storage.audit_chain import AUDIT_CHAIN_OPTION, AuditRow
from storage.audit_queries import AuditEntry, AuditFilter
from storage.audit_retention import RetentionPolicy, RetentionSummary
from storage.audit_verify import ChainReport
from storage.errors import StorageError, translate_errors
from storage.history import CommandFilter, Page, VehicleChanges, VehicleFilter, VehicleOverview
from storage.models import ROLES
from storage.records import (
    AuditEvent,
    CommandRow,
    LoginSession,
    NewVehicle,
    RefreshResult,
    User,
    UserUpdate,
    Vehicle,
)
from storage.urls import mask_url, normalise_url

__all__ = ["Database", "open_database"]

P = ParamSpec("P")
T = TypeVar("T")

#: bcrypt work factor of new password hashes (~0.25 s of CPU each here).
BCRYPT_ROUNDS = 12
# A real hash of the same cost: an unknown username costs what a wrong password does.
_DUMMY_HASH = b"$2b$12$VGiWG5Q.xJJB4QQNFS2/q.8wHRCqYw06e0xiCQH6D4g54T3k5NjQy"
_MAX_PASSWORD_BYTES = 72  # bcrypt 5 refuses longer passwords
_SQLITE_BUSY_TIMEOUT_MS = 5000
_WRITE = "sovd_hub_write"  # execution option marking a transaction that writes


@asynccontextmanager
async def open_database(
    url: str,
    *,
    pool_size: int = 10,
    bcrypt_rounds: int = BCRYPT_ROUNDS,
    node_id: str | None = None,
    audit_chain: str | None = None,
    connect_timeout_s: float = 5.0,
    command_timeout_s: float = 10.0,
) -> AsyncIterator[Database]:
    """Open a connection pool to the database at `url` (any URL `normalise_url` takes).

    `node_id`: the hub node writing through it; the commands it stores or
    dispatches are stamped with it (crash recovery). `audit_chain`: the audit
    hash chain its audit events extend (default: `node_id`, else the host
    name; see `storage.audit_chain`). Must run inside
    `trio_asyncio.open_loop()`. Connects lazily: a database that is down shows
    up as `DatabaseUnavailable` from the first call (see `Database.ping`). The
    pool is closed on exit, shielded from cancellation. On Postgres a
    connection attempt gives up after `connect_timeout_s` and a statement
    after `command_timeout_s` (a partitioned network answers nothing: without
    them a query would hang), and pooled connections are checked before use
    (`pool_pre_ping`); SQLite, a local file, has no such failure.
    """
    async_url = normalise_url(url)
    _check_sqlite_directory(async_url, url)
    engine = _create_engine(async_url, pool_size, connect_timeout_s, command_timeout_s)
    try:
        yield Database(
            engine, mask_url(url), bcrypt_rounds, node_id=node_id, audit_chain=audit_chain
        )
    finally:
        with trio.CancelScope(shield=True):
            await run_asyncio(engine.dispose)


def _check_sqlite_directory(async_url: str, url: str) -> None:
    # SQLite creates a missing file but not its directory; say so plainly
    # rather than "unable to open database file".
    parsed = make_url(async_url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    directory = Path(parsed.database).parent
    if not directory.is_dir():
        raise StorageError(
            f"database at {mask_url(url)}: directory {directory} does not exist; "
            "create it or change SOVD_HUB_DATABASE_URL"
        )


def _create_engine(
    async_url: str, pool_size: int, connect_timeout_s: float, command_timeout_s: float
) -> AsyncEngine:
    parsed = make_url(async_url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(
            parsed,
            pool_size=pool_size,
            pool_pre_ping=True,
            connect_args={"timeout": connect_timeout_s, "command_timeout": command_timeout_s},
        )
    in_memory = parsed.database in (None, "", ":memory:")
    engine = create_async_engine(parsed, **({} if in_memory else {"pool_size": pool_size}))
    event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: object) -> None:
    # Turn off the driver's implicit BEGIN: `_on_sqlite_begin` emits our own.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _on_sqlite_begin(connection: Any) -> None:
    # A writer takes the write lock up front: a deferred transaction that
    # upgrades later fails at once with "database is locked" instead of waiting.
    writes = connection.get_execution_options().get(_WRITE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


class Database:
    """The hub's storage; implements `hub.ports.VehicleDirectory` and `CommandJournal`.

    Every method raises `DatabaseUnavailable` when the database does not
    answer and `StorageError` when it refuses. Cancelling a call cancels its
    transaction, which is rolled back.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        masked_url: str,
        bcrypt_rounds: int = BCRYPT_ROUNDS,
        *,
        node_id: str | None = None,
        audit_chain: str | None = None,
    ) -> None:
        if not 4 <= bcrypt_rounds <= 31:
            raise ValueError(f"bcrypt_rounds must be 4-31, got {bcrypt_rounds}")
        self._bcrypt_rounds = bcrypt_rounds
        #: The node writing through this handle (None: a tool, not a node); see `open_database`.
        self.node_id = node_id
        self._reader = engine
        #: The audit hash chain this handle appends to (see `storage.audit_chain`).
        self.audit_chain = audit_chain or node_id or socket.gethostname()
        self._writer = engine.execution_options(
            **{_WRITE: True, AUDIT_CHAIN_OPTION: self.audit_chain}
        )
        self._url = masked_url

    @property
    def url(self) -> str:
        """The database URL with its password masked."""
        return self._url

    async def _run(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        with translate_errors(self._url):
            return await run_asyncio(fn, *args, **kwargs)

    async def ping(self) -> None:
        """Return once the database answers a query; raise `DatabaseUnavailable` if not."""
        await self._run(queries.ping, self._reader)

    # -- users -------------------------------------------------------------

    async def add_user(self, username: str, password: str, role: str, *, by: str = "hub") -> User:
        """Create an operator account (audited `user.added` as `by`).

        Raises `UserExistsError` if the name is taken, `ValueError` for an
        unknown role, an empty username or a password over bcrypt's 72 bytes.
        """
        _check_role(role)
        if not username:
            raise ValueError("username is empty")
        hashed = await _hash_password(password, self._bcrypt_rounds)
        now = datetime.now(UTC)
        return await self._run(accounts.add_user, self._writer, username, hashed, role, by, now)

    async def set_password(self, username: str, password: str) -> list[uuid.UUID]:
        """Replace the user's password (audited) and revoke all their sessions (their ids).

        Raises `UnknownUserError` if there is no such user, `ValueError` for a
        password longer than bcrypt's 72 bytes.
        """
        hashed = await _hash_password(password, self._bcrypt_rounds)
        return await self._run(
            accounts.set_password, self._writer, username, hashed, datetime.now(UTC)
        )

    async def check_password(self, username: str, password: str) -> tuple[User | None, str]:
        """`(user, "ok")` if the password is theirs and they are enabled, else `(None, why)`.

        `why` is `unknown_user`, `wrong_password` or `disabled` (for the audit
        trail, not for the caller's answer). Always spends one bcrypt check
        (in a worker thread), so the time taken tells nothing.
        """
        found = await self._run(accounts.get_user, self._reader, username)
        stored = found[1].encode() if found is not None else _DUMMY_HASH
        secret = password.encode()
        if len(secret) > _MAX_PASSWORD_BYTES:
            secret = b""  # cannot be anyone's password; still spend the check
        matches = await trio.to_thread.run_sync(bcrypt.checkpw, secret, stored)
        if found is None:
            return None, "unknown_user"
        if not matches:
            return None, "wrong_password"
        return (found[0], "ok") if found[0].enabled else (None, "disabled")

    async def authenticate_user(self, username: str, password: str) -> User | None:
        """The user when `password` is theirs and they are enabled; else None (see above)."""
        return (await self.check_password(username, password))[0]

    async def get_user(self, username: str) -> User | None:
        """The user called `username`, or None."""
        found = await self._run(accounts.get_user, self._reader, username)
        return found[0] if found is not None else None

    async def get_user_by_id(self, user_id: int) -> User | None:
        """The user with this id, or None."""
        return await self._run(accounts.get_user_by_id, self._reader, user_id)

    async def list_users(self, *, limit: int, offset: int = 0) -> tuple[list[User], int]:
        """A page of users ordered by id, and the total number of users."""
        return await self._run(accounts.list_users, self._reader, limit, offset)

    async def update_user(
        self, user_id: int, *, role: str | None = None, enabled: bool | None = None, by: str
    ) -> UserUpdate:
        """Change a user's role and/or enabled flag (audited `user.updated` as `by`).

        A role change or disabling revokes all the user's sessions. Raises
        `UnknownUserError`, `LastAdminError` (no enabled admin would remain;
        nothing changes) or `ValueError` for an unknown role.
        """
        if role is not None:
            _check_role(role)
        now = datetime.now(UTC)
        return await self._run(accounts.update_user, self._writer, user_id, role, enabled, by, now)

    async def change_password(
        self,
        user_id: int,
        password: str,
        *,
        keep_session: uuid.UUID | None,
        details: dict[str, JSON],
    ) -> list[uuid.UUID]:
        """The user's own password change (audited `user.password_changed`).

        Revokes their sessions except `keep_session`; returns the ids revoked.
        """
        hashed = await _hash_password(password, self._bcrypt_rounds)
        now = datetime.now(UTC)
        return await self._run(
            accounts.change_password, self._writer, user_id, hashed, keep_session, now, details
        )

    # -- sessions (refresh-token families) ---------------------------------

    async def create_session(
        self,
        user: User,
        session_id: uuid.UUID,
        refresh_hash: str,
        *,
        ttl_s: float,
        address: str | None,
        user_agent: str | None,
    ) -> LoginSession:
        """Open a session for `user` (generation 0), audited `auth.login`."""
        now = datetime.now(UTC)
        session = LoginSession(
            session_id, user.id, 0, now, now, now + timedelta(seconds=ttl_s), None, None,
            address, user_agent,
        )  # fmt: skip
        details: dict[str, JSON] = {"address": address, "user_agent": user_agent}
        await self._run(
            accounts.create_session, self._writer, session, user.username, refresh_hash, details
        )
        return session

    async def rotate_session(
        self,
        session_id: uuid.UUID,
        generation: int,
        presented_hash: str,
        new_hash: str,
        *,
        ttl_s: float,
        details: dict[str, JSON],
    ) -> RefreshResult:
        """Present refresh token `generation` (by its hash); rotate to `new_hash` if current.

        An older generation revokes the session (committed, audited
        `auth.refresh_reused`); see `RefreshOutcome` for the other outcomes.
        """
        now = datetime.now(UTC)
        expires_at = now + timedelta(seconds=ttl_s)
        return await self._run(
            accounts.rotate_session, self._writer, session_id, generation, presented_hash,
            new_hash, now, expires_at, details,
        )  # fmt: skip

    async def revoke_session(
        self, session_id: uuid.UUID, reason: str, *, action: str, details: dict[str, JSON]
    ) -> bool:
        """Revoke a live session (audited `action`, as its user); False if it was not live."""
        now = datetime.now(UTC)
        return await self._run(
            accounts.revoke_session, self._writer, session_id, reason, action, now, details
        )

    async def session_of(self, session_id: uuid.UUID) -> tuple[User, LoginSession] | None:
        """A session and its user, or None."""
        return await self._run(accounts.session_of, self._reader, session_id)

    async def revoked_sessions(self, since: datetime) -> list[tuple[uuid.UUID, datetime]]:
        """Ids of the sessions revoked since `since`, with when."""
        return await self._run(accounts.revoked_since, self._reader, since)

    # -- vehicles ----------------------------------------------------------

    async def add_vehicle(
        self,
        vin: str,
        *,
        make: str,
        model: str,
        year: int,
        metadata: dict[str, JSON] | None = None,
    ) -> tuple[Vehicle, str]:
        """Register a vehicle (audited); returns it and its new token.

        The token is shown once: only its hash is stored. Raises
        `VehicleExistsError` if the VIN is registered, `ValueError` if the VIN
        is not 17 characters long.
        """
        [added] = await self.add_vehicles([NewVehicle(vin, make, model, year, metadata or {})])
        return added

    async def add_vehicles(
        self, vehicles: Sequence[NewVehicle], *, by: str = "hub"
    ) -> list[tuple[Vehicle, str]]:
        """Register many vehicles in one transaction (all or none), audited as `by`.

        Returns each with its new token (shown once: only its hash is stored).
        """
        now = datetime.now(UTC)
        added = []
        for new in vehicles:
            if len(new.vin) != 17:
                raise ValueError(f"VIN {new.vin!r} is {len(new.vin)} characters long; a VIN has 17")
            vehicle = Vehicle(
                vin=new.vin,
                make=new.make,
                model=new.model,
                year=new.year,
                metadata=dict(new.metadata),
                enabled=True,
                created_at=now,
                last_seen_at=None,
            )
            added.append((vehicle, new_vehicle_token()))
        rows = [(vehicle, hash_vehicle_token(token)) for vehicle, token in added]
        await self._run(queries.add_vehicles, self._writer, rows, by)
        return added

    async def rotate_vehicle_token(self, vin: str, *, by: str = "hub") -> str:
        """Issue the vehicle a new token (audited as `by`) and return it; the old one stops working.

        Raises `UnknownVehicleError` if the VIN is not registered. A link that
        is already up is the hub's to close.
        """
        token = new_vehicle_token()
        values: dict[str, object] = {"token_hash": hash_vehicle_token(token)}
        await self._run(
            queries.update_vehicle, self._writer, vin, values, "vehicle.token_rotated", by
        )
        return token

    async def set_vehicle_enabled(self, vin: str, enabled: bool, *, by: str = "hub") -> None:
        """Enable or disable a vehicle (audited as `by`); `UnknownVehicleError` if unregistered."""
        action = "vehicle.enabled" if enabled else "vehicle.disabled"
        values: dict[str, object] = {"enabled": enabled}
        await self._run(queries.update_vehicle, self._writer, vin, values, action, by)

    async def list_vehicles(self) -> list[Vehicle]:
        """Every registered vehicle, ordered by VIN."""
        return await self._run(history.list_vehicles, self._reader, None)

    async def get_vehicle(self, vin: str) -> Vehicle | None:
        """The vehicle with this VIN, or None."""
        found = await self._run(history.list_vehicles, self._reader, vin)
        return found[0] if found else None

    async def search_vehicles(
        self, wanted: VehicleFilter, *, limit: int, offset: int = 0
    ) -> Page[Vehicle]:
        """A page (ordered by VIN) of the vehicles `wanted` selects, with their total count."""
        return await self._run(history.search_vehicles, self._reader, wanted, limit, offset)

    async def vehicle_overview(
        self, vin: str, *, commands_of: str | None = None, recent: int = 10
    ) -> VehicleOverview | None:
        """The vehicle with its active command counts and `recent` newest commands; None if absent.

        `commands_of` limits the recent commands to that submitter's.
        """
        return await self._run(history.vehicle_overview, self._reader, vin, commands_of, recent)

    async def update_vehicle(self, vin: str, changes: VehicleChanges, *, by: str) -> Vehicle:
        """Change a vehicle's make, model, year or metadata (audited "vehicle.updated" as `by`).

        Returns the vehicle as stored now; nothing is written when no value
        differs. Raises `UnknownVehicleError` if the VIN is not registered.
        """
        return await self._run(history.update_vehicle, self._writer, vin, changes, by)

    async def find_vehicle(self, vin: str) -> VehicleCredentials | None:
        """The vehicle's credentials, or None when the VIN is not registered."""
        return await self._run(queries.find_vehicle, self._reader, vin)

    async def find_vehicles(self, vins: Collection[str]) -> dict[str, VehicleCredentials]:
        """Credentials of the registered vehicles among `vins`, in one query."""
        if not vins:
            return {}
        return await self._run(queries.find_vehicles, self._reader, vins)

    async def find_vehicles_by_token(
        self, token_hashes: Collection[str]
    ) -> list[VehicleCredentials]:
        """Credentials of the registered vehicles whose token hashes to one of `token_hashes`."""
        if not token_hashes:
            return []
        return await self._run(queries.find_vehicles_by_token, self._reader, token_hashes)

    async def record_seen(self, seen: Mapping[str, datetime]) -> None:
        """Set each vehicle's `last_seen_at` (one transaction); never moves it back in time."""
        if seen:
            await self._run(queries.record_seen, self._writer, seen)

    # -- commands ----------------------------------------------------------

    async def create_command(self, command: Command) -> None:
        """Store a new command as pending, with its "command.submitted" audit event.

        Both are committed, in one transaction, when this returns. Raises
        `UnknownVehicleError` if the VIN is not registered, `ConflictError` if
        the id is taken.
        """
        await self._run(queries.create_command, self._writer, command, self.node_id)

    async def get_command(self, command_id: uuid.UUID) -> CommandRow | None:
        """The command with this id, or None."""
        return await self._run(queries.get_command, self._reader, command_id)

    async def pending_command(self, command_id: uuid.UUID) -> Command | None:
        """Scale-out: the stored command if it is still `pending` (else None)."""
        row = await self.get_command(command_id)
        return row.command() if row is not None and row.status is CommandStatus.PENDING else None

    async def stored_command(self, command_id: uuid.UUID) -> StoredCommand | None:
        """Scale-out: who submitted `command_id`, for which vehicle (None: unknown)."""
        row = await self.get_command(command_id)
        return row.stored() if row is not None else None

    async def list_commands(
        self, wanted: CommandFilter, *, limit: int, offset: int = 0
    ) -> Page[CommandRow]:
        """A page (newest first) of the commands `wanted` selects, with their total count."""
        return await self._run(history.list_commands, self._reader, wanted, limit, offset)

    async def find_idempotent(
        self, submitted_by: str, key: str
    ) -> tuple[CommandRow, str | None] | None:
        """The command `submitted_by` sent with idempotency key `key` and its request hash."""
        return await self._run(history.find_idempotent, self._reader, submitted_by, key)

    async def list_events(
        self, command_id: uuid.UUID, from_seq: int = 0
    ) -> list[CommandEventRecord]:
        """The command's stored events with `seq >= from_seq`, ordered by seq."""
        return await self._run(queries.list_events, self._reader, command_id, from_seq)

    async def waiting_commands(self, vin: str) -> list[Command]:
        """`vin`'s commands waiting for it to come online (pending, expiring), oldest first."""
        return await self._run(queries.waiting_commands, self._reader, vin)

    async def expire_waiting(
        self, now: datetime, spare: Collection[str]
    ) -> list[tuple[str, CommandUpdate]]:
        """Waiting commands past their expiry become `expired` (audited), except `spare` VINs'.

        Returns each command's VIN and its change, with its submitter.
        """
        return await self._run(queries.expire_waiting, self._writer, now, spare)

    async def command_with_events(
        self, command_id: uuid.UUID, from_seq: int = 0
    ) -> tuple[CommandRow | None, list[CommandEventRecord]]:
        """The command and its events from `from_seq` (one bridge crossing; None, [] if absent).

        The command is read first, so when it is final the events are complete.
        """
        return await self._run(queries.command_with_events, self._reader, command_id, from_seq)

    async def record(
        self,
        events: Sequence[CommandEventRecord],
        changes: Sequence[StatusChange],
        commands: Sequence[Command] = (),
    ) -> frozenset[uuid.UUID]:
        """Store new commands, events and status changes in one transaction.

        Returns once committed. New commands are stored as pending with their
        "command.submitted" audit events. Events already stored (same command
        id and seq) are ignored. Statuses only move forward: RUNNING sets
        `started_at` once; the first final status of a command sets
        `finished_at` and `error` and appends a "command.<status>" audit
        event; a change never moves a command that is already final. A new
        command whose submitter already used its `idempotency_key` is skipped
        (no row, no audit event) and its id returned; the rest is stored.
        """
        if commands or events or changes:
            return await self._run(
                queries.record, self._writer, commands, events, changes, self.node_id
            )
        return frozenset()

    async def interrupt_unfinished(
        self, at: datetime, reason: str
    ) -> list[tuple[str, CommandUpdate]]:
        """Mark this node's non-final commands interrupted, with `reason` and an audit event.

        Startup recovery. "This node's": stamped with `node_id`, or with no
        node (written before nodes were recorded); other nodes' commands are
        left alone. Commands waiting for an offline vehicle (pending, with an
        expiry) keep waiting. Returns each moved command's VIN and change.
        """
        return await self._run(queries.interrupt_unfinished, self._writer, at, reason, self.node_id)

    async def active_nodes(self) -> set[str]:
        """Scale-out: node ids stamped on active commands (not counting waiting ones)."""
        return await self._run(cluster_queries.active_nodes, self._reader)

    async def interrupt_node(
        self, node_id: str, at: datetime, reason: str, *, pending: bool = True
    ) -> list[tuple[str, CommandUpdate]]:
        """Scale-out: a dead node's active commands (only its dispatched ones with
        `pending=False`) become interrupted (idempotent, audited)."""
        return await self._run(
            cluster_queries.interrupt_node, self._writer, node_id, at, reason, pending=pending
        )

    async def pending_of_node(self, node_id: str) -> list[tuple[uuid.UUID, str]]:
        """Scale-out: a node's pending commands without a ttl (id, VIN), oldest first."""
        return await self._run(cluster_queries.pending_of_node, self._reader, node_id)

    async def stamp_pending(self, command_id: uuid.UUID, node_id: str) -> None:
        """Scale-out: stamp the node whose actor takes a still-pending routed command."""
        await self._run(cluster_queries.stamp_pending, self._writer, command_id, node_id)

    async def due_waiting_vins(self, now: datetime) -> set[str]:
        """VINs of waiting commands due to expire at `now` (see `hub.ports.DueWaiting`)."""
        return await self._run(cluster_queries.due_waiting_vins, self._reader, now)

    # -- audit -------------------------------------------------------------

    async def append_audit(
        self, *, actor: str, action: str, target: str, details: dict[str, JSON] | None = None
    ) -> None:
        """Append an event, stamped now, to the audit trail; returns once committed."""
        await self._run(queries.append_audit, self._writer, actor, action, target, details or {})

    async def list_audit(self, *, target: str | None = None) -> list[AuditEvent]:
        """The audit trail, oldest first; only `target`'s events when given."""
        return await self._run(queries.list_audit, self._reader, target)

    async def verify_audit(
        self, *, chain: str | None = None, key: bytes | None = None
    ) -> list[ChainReport]:
        """Verify every audit chain (or `chain`) from its anchor to its head; see `audit_verify`.

        `key`: checks the retention summaries' signatures (`signing_key`).
        """
        return await self._run(audit_verify.verify_chains, self._reader, chain=chain, key=key)

    async def sweep_retention(
        self, policy: RetentionPolicy, now: datetime | None = None
    ) -> list[RetentionSummary]:
        """Remove what is older than the retention windows, leaving signed summaries."""
        at = datetime.now(UTC) if now is None else now
        return await self._run(audit_retention.sweep_retention, self._writer, at, policy)

    async def append_audits(self, notes: Sequence[AuditNote]) -> None:
        """Append `notes` (stamped by their writer), in order, in one transaction."""
        rows: list[AuditRow] = [
            {"at": n.at, "actor": n.actor, "action": n.action, "target": n.target,
             "details": n.details}
            for n in notes
        ]  # fmt: skip
        if rows:
            await self._run(queries.append_audits, self._writer, rows)

    async def audit_page(self, wanted: AuditFilter, *, limit: int) -> list[AuditEntry]:
        """Up to `limit` audit events `wanted` selects, in id order (one keyset page)."""
        return await self._run(audit_queries.audit_page, self._reader, wanted, limit)

    async def last_audit_id(self) -> int:
        """The id of the newest audit event (0: none)."""
        return await self._run(audit_queries.last_audit_id, self._reader)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"role {role!r} is unknown: expected one of {', '.join(ROLES)}")


async def _hash_password(password: str, rounds: int) -> str:
    secret = password.encode()
    if len(secret) > _MAX_PASSWORD_BYTES:
        raise ValueError(
            f"password is {len(secret)} bytes long; bcrypt takes at most {_MAX_PASSWORD_BYTES}"
        )
    salt = bcrypt.gensalt(rounds)
    hashed = await trio.to_thread.run_sync(bcrypt.hashpw, secret, salt)
    return hashed.decode()
