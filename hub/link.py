"""The hub's side of one vehicle's gRPC stream, as its actor sees it.

The gRPC handler (an asyncio task) drains the outbox and writes to the
stream; the trio actor only ever calls the synchronous, non-blocking
`send_nowait` and `close`, so nothing crosses the bridge per message
(DESIGN.md, "pump shape").
"""

from __future__ import annotations

import asyncio
import itertools
import uuid

import trio

from hub.config import HubConfig
from hub.errors import LinkVerdict
from hub.link_protocol import LinkEnd, LinkProtocol
from hub.model import DisconnectReason
from proto import HubMessage, VehicleMessage

__all__ = ["Link", "LinkEnd", "new_link"]

_ids = itertools.count(1)


class Link:
    """Outgoing half of one vehicle stream; `id` tells successive links of a VIN apart."""

    def __init__(self, vin: str, session_id: str, protocol: LinkProtocol) -> None:
        self.id = next(_ids)
        self.vin = vin
        self.session_id = session_id
        #: The link's protocol state (rate, last heard: trio time), fed by the gateway's reader.
        self.protocol = protocol
        self._outbox = _Outbox()
        self._ended: LinkEnd | None = None

    @property
    def ended(self) -> LinkEnd | None:
        """How the hub ended this link, or None while it is open."""
        return self._ended

    def send_nowait(self, message: HubMessage) -> None:
        """Queue `message` for the vehicle; dropped once the link has ended."""
        if self._ended is None:
            self._outbox.put(message)

    def close(self, verdict: LinkVerdict | None, message: str, reason: DisconnectReason) -> None:
        """End the stream after what is queued, telling `verdict` and `message`; idempotent.

        `verdict` None ends it cleanly (the vehicle closed it, or it was lost).
        """
        self.end(LinkEnd(verdict, message, reason))

    def end(self, end: LinkEnd) -> None:
        """`close` with a decided `LinkEnd` (from `hub.link_protocol`); idempotent."""
        if self._ended is None:
            self._ended = end
            self._outbox.put(end)

    def received(self, message: VehicleMessage, now: float) -> VehicleMessage | None:
        """Pass `message`, received at `now`, through the link's protocol.

        Returns it when it is for the actor; None when the link dealt with it
        itself (a heartbeat answered, or the link ended on a flood: see `ended`).
        """
        decision = self.protocol.received(message, now)
        if decision is None:
            return message
        if isinstance(decision, LinkEnd):
            self.end(decision)
        else:
            self.send_nowait(decision)
        return None

    async def next_outgoing(self) -> HubMessage | LinkEnd:
        """(asyncio side) The next message to write, or the `LinkEnd`."""
        return await self._outbox.get()


class _Outbox:
    """What the trio side queued for the asyncio writer: a list and at most one waiter.

    One per connected vehicle: an `asyncio.Queue` holds three deques and
    costs 3.2 KiB, a deque 0.74 KiB (its first block), this list under 0.1 KiB
    (tracemalloc, 1,000 of each, Python 3.11). It holds a few items at most
    (the actor's mailbox bounds what is sent), so `pop(0)` costs nothing.
    """

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[HubMessage | LinkEnd] = []
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: HubMessage | LinkEnd) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> HubMessage | LinkEnd:
        """(asyncio side, one consumer) The oldest item, waiting for one if none is queued."""
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


def new_link(vin: str, config: HubConfig) -> Link:
    """A link for an admitted `Hello` of `vin`: a new session, its protocol on trio's clock."""
    protocol = LinkProtocol(
        max_messages_per_s=config.max_vehicle_messages_per_s,
        heartbeat_interval_s=config.heartbeat_interval_s,
        now=trio.current_time(),
    )
    return Link(vin, uuid.uuid4().hex, protocol)
