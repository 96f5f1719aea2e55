"""The hub's side of one vehicle's gRPC stream, as its actor sees it.

The gRPC handler (an asyncio task) drains the outbox and writes to the
stream; the trio actor only ever calls the synchronous, non-blocking
`send_nowait` and `close`, so nothing crosses the bridge per message
(DESIGN.md, "pump shape").
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

import trio
from grpclib.const import Status

from hub.model import DisconnectReason
from proto import HubMessage

_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class LinkEnd:
    """The last item of an outbox: end the stream with `status` (None: end it cleanly)."""

    status: Status | None
    message: str
    reason: DisconnectReason


class Link:
    """Outgoing half of one vehicle stream; `id` tells successive links of a VIN apart."""

    def __init__(self, vin: str, session_id: str) -> None:
        self.id = next(_ids)
        self.vin = vin
        self.session_id = session_id
        self._outbox: asyncio.Queue[HubMessage | LinkEnd] = asyncio.Queue()
        self._ended: LinkEnd | None = None
        #: trio time of the last message from the vehicle (set by the gateway's reader).
        self.last_heard = trio.current_time()

    @property
    def ended(self) -> LinkEnd | None:
        """How the hub ended this link, or None while it is open."""
        return self._ended

    def send_nowait(self, message: HubMessage) -> None:
        """Queue `message` for the vehicle; dropped once the link has ended."""
        if self._ended is None:
            self._outbox.put_nowait(message)

    def close(self, status: Status | None, message: str, reason: DisconnectReason) -> None:
        """End the stream after what is queued, with `status` and `message`; idempotent."""
        if self._ended is None:
            self._ended = LinkEnd(status, message, reason)
            self._outbox.put_nowait(self._ended)

    async def next_outgoing(self) -> HubMessage | LinkEnd:
        """(asyncio side) The next message to write, or the `LinkEnd`."""
        return await self._outbox.get()
