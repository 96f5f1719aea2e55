"""The silence watch: one timer for every link's liveness, not one per actor.

A link must be heard at least every `SILENT_HEARTBEATS` heartbeat intervals
(`hub.link_protocol`). Heartbeats are answered on the asyncio side and never
reach the actor, so an actor waiting with a deadline at the moment its
link would go silent woke every 20-30 s only to find the vehicle heard meanwhile: at
10,000 vehicles with 10 s heartbeats, 400 trio wake-ups a second and about a
fifth of an idle hub's CPU (issue 13, `bench hold --profile`). The watch
looks at every link once per sweep instead, every half heartbeat interval
(a link costs about 1-2 us a sweep), and ends a silent one; the gateway then
tells its actor `LinkClosed` with the heartbeat timeout as the reason, as
for any link the hub ends. A silent link ends at most half an interval after
its limit.
"""

from __future__ import annotations

import trio

from hub.mailbox import VehicleActor
from hub.registry import Registry

__all__ = ["watch_silence"]


async def watch_silence(
    actors: Registry[VehicleActor],
    heartbeat_interval_s: float,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """End every link that went silent, sweeping until cancelled."""
    sweep_s = heartbeat_interval_s / 2
    task_status.started()
    while True:
        await trio.sleep(sweep_s)
        now = trio.current_time()
        for actor in actors:  # no checkpoint: the registry cannot change meanwhile
            silence = actor.link.protocol.silence(now)
            if silence is not None:
                actor.link.end(silence)  # idempotent: a link already ended stays as it ended
