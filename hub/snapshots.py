"""What a node tells of itself: a vehicle's live link (`Hub.connection`) and the node's
counters (`Hub.statistics`, as `/health/live` reports them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["Connection", "HubStatistics"]


@dataclass(frozen=True, slots=True)
class Connection:
    """A vehicle's live link to this node."""

    vin: str
    session_id: str
    since: datetime


@dataclass(frozen=True, slots=True)
class HubStatistics:
    """A snapshot of a node's counters (`Hub.statistics`), as `/health/live` reports them."""

    #: Vehicles with a live link to this node.
    connected_vehicles: int
    #: Record calls committed by the journal, and in how many batches.
    journal_records: int
    journal_batches: int
    #: Actors' records held through a database outage, not yet written.
    journal_buffered_records: int
    #: Records dropped since the start: the outage buffer was full.
    journal_records_lost: int
    #: Commands dropped because they arrived again (handed over already, or ended).
    duplicate_dispatches: int
    #: The gateway's TCP connections open now, and those closed at once or timed out.
    gateway_connections: int
    gateway_refused_total_cap: int
    gateway_refused_address_cap: int
    gateway_handshake_timeouts: int
    gateway_accept_pauses: int
