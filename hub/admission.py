"""Admission of vehicle links: who a connection's token may be, and attaching its `Hello`.

`Admission` (`Hub.admission`) is what the gateway asks, once per connection:
`authenticate` (before any message is read: the token's candidates), then
`attach` (the `Hello` checked by `link_protocol.admit`, the Welcome sent, the
vehicle's actor started, or told of its new link). It holds the attach lock
shared with `Submissions`, so a command is either handed to a starting actor
or left to expire, and it counts refused links for the audit trail
(`audit_refusal`, written in windows by `hub.refusals`).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
import trio

from hub.auditing import AuditBatcher, storable, vehicle_target
from hub.batching import CredentialLookup, GroupCommitJournal, LastSeen, LookupFailed
from hub.credentials import hash_vehicle_token, verify_vehicle_token
from hub.dispatching import Dispatcher
from hub.errors import VehicleRefused
from hub.link import Link
from hub.link_protocol import LinkVerdict, admit, welcome
from hub.mailbox import ActorMessage, LinkAttached, VehicleActor
from hub.model import JSON, Command, Disconnect, DisconnectReason, VehicleCredentials
from hub.ports import CommandBacklog, VehicleLeases
from hub.refusals import RefusalTally
from hub.registry import Registry
from hub.untrusted import plausible_vin
from proto import Hello

log = structlog.get_logger("hub.admission")

#: Starts the actor of a link, with the commands that waited for its vehicle.
StartActor = Callable[[Link, list[Command]], Awaitable[VehicleActor]]


@dataclass(frozen=True, slots=True)
class Candidates:
    """The vehicles a connection's token may be (`Admission.authenticate`), and when asked."""

    vehicles: list[VehicleCredentials]
    #: trio time just before the lookup: what was committed before it, the lookup saw.
    asked_at: float


class Admission:
    """This node's admission of vehicle links; see the module docstring."""

    def __init__(
        self,
        *,
        actors: Registry[VehicleActor],
        dispatcher: Dispatcher,
        attach_lock: trio.Lock,
        backlog: CommandBacklog,
        leases: VehicleLeases | None,
        journal: GroupCommitJournal,
        credentials: CredentialLookup,
        last_seen: LastSeen,
        notes: AuditBatcher,
        refusals: RefusalTally,
        heartbeat_interval_s: float,
        start_actor: StartActor,
    ) -> None:
        self._actors = actors
        self._dispatcher = dispatcher
        self._attach_lock = attach_lock
        self._backlog = backlog
        self._leases = leases
        self._journal = journal
        self._credentials = credentials
        self._last_seen = last_seen
        self._notes = notes
        self._refusals = refusals
        self._heartbeat_interval_s = heartbeat_interval_s
        self._start_actor = start_actor
        #: Set as the hub stops: new links are refused with `UNAVAILABLE`.
        self.stopping = False
        # VIN -> when this node last stored a command to wait for it (see `_waiting`).
        self._left_waiting: dict[str, float] = {}

    async def authenticate(self, token: str) -> Candidates:
        """The vehicles `token` may be (found by its hash alone, before any message is read).

        Raises `VehicleRefused`: `LinkVerdict.UNAUTHENTICATED` when no registered
        vehicle has this token, `UNAVAILABLE` while the hub stops or cannot read
        its database. Which of them the connection is, its `Hello` says (`attach`).
        """
        if self.stopping:
            raise VehicleRefused(LinkVerdict.UNAVAILABLE, "the hub is shutting down")
        outage = self._journal.outage  # links already up stay up; new ones wait for the database
        if outage is not None:
            raise VehicleRefused(
                LinkVerdict.UNAVAILABLE,
                f"the hub cannot check credentials: its database does not answer; retry in "
                f"{outage.retry_after_s} s",
            )
        token_hash = hash_vehicle_token(token)
        asked_at = trio.current_time()
        try:
            candidates = await self._credentials.find(token_hash)
        except LookupFailed as exc:
            raise VehicleRefused(LinkVerdict.UNAVAILABLE, f"{exc}; retry later") from exc
        # The database found them by hash; compare again in constant time all the same.
        found = [c for c in candidates if verify_vehicle_token(token, c.token_hash)]
        if not found:
            raise VehicleRefused(
                LinkVerdict.UNAUTHENTICATED,
                "unknown vehicle token: no registered vehicle has it (never issued, or rotated "
                "since); send the vehicle's current token",
            )
        return Candidates(found, asked_at)

    def left_waiting(self, vin: str) -> None:
        """Note that a command waiting for `vin` was just stored (under the attach lock)."""
        self._left_waiting[vin] = trio.current_time()

    async def _waiting(self, credentials: VehicleCredentials, asked_at: float) -> list[Command]:
        """The commands waiting for a vehicle whose actor starts (under the attach lock).

        Not read when this node runs alone, the credentials' lookup found none,
        and this node stored none since that lookup began: alone, every waiting
        command is stored by this node, under the attach lock, and noted
        (`left_waiting`). In scale-out another node may have stored one: read.
        """
        vin = credentials.vin
        stored_at = self._left_waiting.get(vin, -math.inf)
        if self._leases is None and not credentials.waiting and stored_at < asked_at:
            return []
        self._left_waiting.pop(vin, None)
        return await self._backlog.waiting_commands(vin)

    async def attach(
        self, hello: Hello, candidates: Candidates, link: Link
    ) -> trio.MemorySendChannel[ActorMessage]:
        """Admit a vehicle's new link; returns the mailbox its messages go to.

        `candidates` are what `authenticate` found for the connection's token.
        Raises `VehicleRefused` for a `Hello` whose VIN cannot be one, whose
        VIN the token is not for, or for a disabled vehicle (`link_protocol.admit`).
        A link of a VIN that is already connected replaces the old one; the actor
        keeps its identity.
        """
        if self.stopping:
            raise VehicleRefused(LinkVerdict.UNAVAILABLE, "the hub is shutting down")
        try:
            credentials = admit(hello, candidates.vehicles)
        except VehicleRefused as exc:
            if plausible_vin(hello.vin):  # a VIN that cannot be one is not remembered
                self._refused(hello.vin, exc.message)
            raise
        link.send_nowait(welcome(link.session_id, self._heartbeat_interval_s))
        async with self._attach_lock:
            actor = self._actors.get(hello.vin)
            # After the previous actor's release (it releases as it leaves the registry), and
            # before waiting commands are loaded, so that other nodes' sweepers spare them.
            if self._leases is not None:
                self._leases.claim(hello.vin)
            try:
                if actor is None:
                    waiting = await self._waiting(credentials, candidates.asked_at)
                    for command in waiting:
                        self._dispatcher.remember(command.id)
                    actor = await self._start_actor(link, waiting)
                else:
                    await actor.mailbox.send(LinkAttached(link))
            except BaseException:
                if self._leases is not None and hello.vin not in self._actors:
                    self._leases.release(hello.vin)
                raise
            inbox = actor.mailbox.clone()
        self._last_seen.mark(hello.vin, datetime.now(UTC))
        log.info("vehicle.connected", vin=hello.vin, session=link.session_id)
        self._notes.note(
            "vehicle.connected",
            actor=f"vehicle:{hello.vin}",
            target=f"vehicle:{hello.vin}",
            details={
                "session": link.session_id,
                "agent_version": storable(hello.agent_version, 100),
            },
        )
        return inbox

    def audit_refusal(self, address: str, vin: str | None, told: str, reason: str) -> None:
        """Count a refused link from `address` (claiming `vin`, if it said) for the audit trail.

        `told` is what the vehicle was told (the gateway's gRPC status name, e.g.
        `UNAUTHENTICATED`), counted per window in the row's `statuses`.

        Refusals are written as one row per source, vehicle and `refusal_audit_window_s`,
        with their count (`hub.refusals`); never blocks. `reason` must be bounded already.
        """
        details: dict[str, JSON] = {}
        target = "vehicle:?"
        if vin is not None:
            target, details = vehicle_target(vin)
        self._refusals.refused(address, target, told, storable(reason, 500), details)

    def _refused(self, vin: str, detail: str) -> None:
        # Kept for registered vehicles only: unknown VINs must not grow our memory.
        if vin not in self._actors:
            refused = Disconnect(DisconnectReason.REFUSED, detail, datetime.now(UTC))
            self._actors.disconnected(vin, refused)
