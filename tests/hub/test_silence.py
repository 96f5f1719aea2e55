"""The silence watch: one sweep over every link ends the silent ones, and only those."""

from __future__ import annotations

from datetime import UTC, datetime

import trio

from hub import DisconnectReason, HubConfig, LinkVerdict
from hub.link import new_link
from hub.mailbox import ActorMessage, VehicleActor
from hub.registry import Registry
from hub.silence import watch_silence
from proto import Heartbeat, VehicleMessage

INTERVAL_S = 0.05  # silent after 0.15 s; a sweep every 0.025 s


async def test_a_link_silent_past_its_limit_ends_within_a_sweep_and_a_heard_one_stays() -> None:
    config = HubConfig(heartbeat_interval_s=INTERVAL_S)
    registry: Registry[VehicleActor] = Registry()
    send, _receive = trio.open_memory_channel[ActorMessage](10)
    quiet, heard = new_link("WVWZZZ1JZXW000001", config), new_link("WVWZZZ1JZXW000002", config)
    for link in (quiet, heard):
        registry.add(VehicleActor(link, send, datetime.now(UTC)))
    started = trio.current_time()
    heartbeat = VehicleMessage(heartbeat=Heartbeat())

    async with trio.open_nursery() as nursery:
        await nursery.start(watch_silence, registry, INTERVAL_S)
        while quiet.ended is None:
            assert trio.current_time() - started < 1.0, "the silent link was never ended"
            heard.received(heartbeat, trio.current_time())
            await trio.sleep(INTERVAL_S / 5)
        ended_after_s = trio.current_time() - started
        for _ in range(10):  # a few sweeps more
            heard.received(heartbeat, trio.current_time())
            await trio.sleep(INTERVAL_S / 5)
        nursery.cancel_scope.cancel()

    assert 3 * INTERVAL_S <= ended_after_s < 4.5 * INTERVAL_S
    assert quiet.ended is not None
    assert (quiet.ended.verdict, quiet.ended.reason) == (
        LinkVerdict.UNAVAILABLE,
        DisconnectReason.HEARTBEAT_TIMEOUT,
    )
    assert heard.ended is None
