"""What an actor is sent, and what others hold of it: its messages, handle and context.

An actor's mailbox takes one union, `ActorMessage`: `Dispatch` and `Cancel`
(commands, from the hub), `FromVehicle`, `LinkClosed` and `LinkAttached`
(its link, from the gateway and admission). `VehicleActor` is the handle
the registry maps a VIN to; `ActorContext` is what every actor of a hub
shares. The actor itself is `hub.actor`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

import trio

from hub.auditing import AuditBatcher
from hub.batching import GroupCommitJournal, LastSeen
from hub.config import HubConfig
from hub.link import Link
from hub.model import Command, DisconnectReason
from hub.ports import AuditTrail, EventBus, VehicleLeases
from hub.registry import Registry
from proto import VehicleMessage


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Run `command` on this vehicle."""

    command: Command


@dataclass(frozen=True, slots=True)
class Cancel:
    """An operator (`by`) asks to cancel `command_id`, stored and not final (its submitter's)."""

    command_id: uuid.UUID
    by: str
    submitted_by: str | None = None


@dataclass(frozen=True, slots=True)
class FromVehicle:
    """A message that arrived on link `link_id`."""

    link_id: int
    message: VehicleMessage


@dataclass(frozen=True, slots=True)
class LinkClosed:
    """Link `link_id` ended: why, and a sentence for people."""

    link_id: int
    reason: DisconnectReason
    detail: str


@dataclass(frozen=True, slots=True)
class LinkAttached:
    """A new connection of this vehicle replaces the current link."""

    link: Link


ActorMessage: TypeAlias = Dispatch | Cancel | FromVehicle | LinkClosed | LinkAttached


class VehicleActor:
    """Handle of a running actor: where to send it messages and what it is connected by."""

    def __init__(
        self, link: Link, mailbox: trio.MemorySendChannel[ActorMessage], connected_at: datetime
    ) -> None:
        self.vin = link.vin
        self.link = link
        self.mailbox = mailbox
        self.connected_since = connected_at


@dataclass(frozen=True, slots=True)
class ActorContext:
    """What every actor of a hub shares."""

    config: HubConfig
    journal: GroupCommitJournal
    bus: EventBus
    registry: Registry[VehicleActor]
    last_seen: LastSeen
    audit: AuditTrail
    #: Connections and disconnections, written in batches without waiting.
    notes: AuditBatcher
    #: Scale-out: the leases of the vehicles held here (None: the node runs alone).
    leases: VehicleLeases | None = None
