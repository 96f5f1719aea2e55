"""The hub's side of one vehicle's gRPC stream, as its actor sees it.

The gRPC handler (an asyncio task) drains the outbox and writes to the
stream; the trio actor only ever calls the synchronous, non-blocking
`send_nowait` and `close`, so nothing crosses the bridge per message
(DESIGN.md, "pump shape").
"""

from __future__ import annotations

import asyncio
import itertools

from hub.errors import LinkVerdict
from hub.link_protocol import LinkEnd, LinkProtocol
from hub.model import DisconnectReason
from proto import HubMessage

__all__ = ["Link", "LinkEnd"]

_ids = itertools.count(1)


class Link:
    """Outgoing half of one vehicle stream; `id` tells successive links of a VIN apart."""

    def __init__(self, vin: str, session_id: str, protocol: LinkProtocol) -> None:
        self.id = next(_ids)
        self.vin = vin
        self.session_id = session_id
        #: The link's protocol state (rate, last heard: trio time), fed by the gateway's reader.
        self.protocol = protocol
        self._outbox: asyncio.Queue[HubMessage | LinkEnd] = asyncio.Queue()
        self._ended: LinkEnd | None = None

    @property
    def ended(self) -> LinkEnd | None:
        """How the hub ended this link, or None while it is open."""
        return self._ended

    def send_nowait(self, message: HubMessage) -> None:
        """Queue `message` for the vehicle; dropped once the link has ended."""
        if self._ended is None:
            self._outbox.put_nowait(message)

    def close(self, verdict: LinkVerdict | None, message: str, reason: DisconnectReason) -> None:
        """End the stream after what is queued, telling `verdict` and `message`; idempotent.

        `verdict` None ends it cleanly (the vehicle closed it, or it was lost).
        """
        self.end(LinkEnd(verdict, message, reason))

    def end(self, end: LinkEnd) -> None:
        """`close` with a decided `LinkEnd` (from `hub.link_protocol`); idempotent."""
        if self._ended is None:
            self._ended = end
            self._outbox.put_nowait(end)

    async def next_outgoing(self) -> HubMessage | LinkEnd:
        """(asyncio side) The next message to write, or the `LinkEnd`."""
        return await self._outbox.get()
