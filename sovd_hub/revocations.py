"""Session revocations shared between nodes over the event bus (topic `sessions`).

A logout (or password change, role change, reused refresh token) on one node
is recorded in the database and added to that node's `SessionRevocations`;
`share_revocations` makes the node also publish it as a `SessionRevoked`,
and `follow_revocations` adds every node's to this one's, so an access token
of a revoked session is refused everywhere at once, not only after a restart
(which reloads them from the database). With Redis down the message is lost
(counted in the bus's statistics): other nodes keep accepting that session's
access tokens until they expire (`access_token_ttl_s`), or until they restart.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import structlog
import trio

from api import SessionRevocations
from hub import SESSIONS_TOPIC, EventBus, SessionRevoked

log = structlog.get_logger("sovd_hub.revocations")


def share_revocations(bus: EventBus, revocations: SessionRevocations) -> None:
    """Publish every revocation made on this node on the bus's `sessions` topic."""

    def announce(session_id: uuid.UUID, at: float) -> None:
        bus.publish(SESSIONS_TOPIC, SessionRevoked(session_id, datetime.fromtimestamp(at, UTC)))

    revocations.announce = announce


async def follow_revocations(
    bus: EventBus,
    revocations: SessionRevocations,
    *,
    task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Add the revocations published on the bus (by any node) to `revocations`.

    Started once subscribed, with the cancel scope that stops it. A
    subscription dropped for falling behind is renewed (what it missed is in
    the database and reloaded at the next start).
    """
    with trio.CancelScope() as scope:
        started = False
        while True:
            async with bus.subscribe(SESSIONS_TOPIC) as live:
                if not started:
                    task_status.started(scope)
                    started = True
                async for message in live:
                    if isinstance(message, SessionRevoked):
                        revocations.learn(message.session_id, message.at.timestamp())
            log.warning("sessions.revocations_fell_behind")
