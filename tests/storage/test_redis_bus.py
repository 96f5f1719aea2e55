"""The Redis event bus: its wire codec, and two buses (two nodes) on the real test Redis.

The two-node tests run two `RedisBus`es in one process, as two nodes would;
`tests/api/test_multinode_bus.py` runs two whole nodes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
import redis
import trio

from hub import (
    BusMessage,
    CommandEventRecord,
    CommandStatus,
    CommandUpdate,
    DisconnectReason,
    EventKind,
    SessionRevoked,
    StatusChange,
    VehicleStatus,
)
from storage.bus_codec import VERSION, CodecError, decode, encode
from storage.redis_bus import RedisBus, open_redis_bus
from tests.support.network import redis_host_port
from tests.support.tcp_proxy import Cut, TcpProxy, open_tcp_proxy

NOW = datetime(2026, 11, 26, 12, 30, 15, 123456, tzinfo=UTC)
EVENT = CommandEventRecord(
    uuid.uuid4(), 3, EventKind.PROGRESS, 206, {"dtcs": ["P0420", 1, 2.5, None, True]}, False, NOW
)
STATUS = StatusChange(uuid.uuid4(), CommandStatus.FAILED, NOW, error="the vehicle said no")

MESSAGES: list[BusMessage] = [
    EVENT,
    CommandEventRecord(uuid.uuid4(), 0, EventKind.RESULT, 200, None, True, NOW),
    STATUS,
    StatusChange(uuid.uuid4(), CommandStatus.RUNNING, NOW),
    CommandUpdate("engineer", EVENT),
    CommandUpdate(None, STATUS),
    VehicleStatus("WVWZZZ1JZXW000001", True, NOW),
    VehicleStatus(
        "WVWZZZ1JZXW000001",
        False,
        NOW.astimezone(timezone(timedelta(hours=2))),
        DisconnectReason.HEARTBEAT_TIMEOUT,
        "silent for 30 s",
    ),
    SessionRevoked(uuid.uuid4(), NOW),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_bus_message_survives_the_codec(message: BusMessage) -> None:
    node_id, decoded = decode(encode("node-a", message))
    assert node_id == "node-a"
    assert decoded == message
    assert type(decoded) is type(message)


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (orjson.dumps({"v": VERSION + 1, "n": "a", "t": "event", "m": {}}), "version"),
        (orjson.dumps({"v": VERSION, "n": "a", "t": "gossip", "m": {}}), "unknown message type"),
        (orjson.dumps({"v": VERSION, "n": "a", "t": "session", "m": {"id": "x"}}), "malformed"),
        (
            orjson.dumps(
                {"v": VERSION, "n": "a", "t": "session", "m": {"id": str(uuid.uuid4()), "at": 5}}
            ),
            "'at': expected a string, got int",
        ),
        (
            orjson.dumps(
                {"v": VERSION, "n": "a", "t": "event", "m": {**EVENT.to_json(), "seq": "3"}}
            ),
            "'seq': expected an integer, got str",
        ),
        (
            orjson.dumps(
                {"v": VERSION, "n": "a", "t": "vehicle", "m": {"vin": "V", "status": "up"}}
            ),
            "'status': expected 'connected' or 'disconnected'",
        ),
        (
            orjson.dumps(
                {
                    "v": VERSION,
                    "n": "a",
                    "t": "update",
                    "m": {"by": None, "u": {"t": "session", "m": {}}},
                }
            ),
            "malformed",
        ),
    ],
)
def test_garbled_messages_are_codec_errors(data: bytes, complaint: str) -> None:
    with pytest.raises(CodecError, match=complaint):
        decode(data)


def test_an_update_must_carry_an_event_or_a_status() -> None:
    inner = encode("a", SessionRevoked(uuid.uuid4(), NOW))
    envelope = orjson.loads(inner)
    data = orjson.dumps(
        {
            "v": VERSION,
            "n": "a",
            "t": "update",
            "m": {"by": None, "u": {k: envelope[k] for k in "tm"}},
        }
    )
    with pytest.raises(CodecError, match="an update carries an event or a status"):
        decode(data)


def through(proxy: TcpProxy, url: str) -> str:
    """`url` (of the test Redis) going through `proxy` instead."""
    host, port = redis_host_port(url)
    return url.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}", 1)


@asynccontextmanager
async def bus_of(
    url: str, node_id: str, prefix: str, outgoing_messages: int = 10_000
) -> AsyncIterator[RedisBus]:
    """A node's `RedisBus` with short timeouts, so that a cut is noticed quickly."""
    async with open_redis_bus(
        url,
        node_id=node_id,
        key_prefix=prefix,
        timeout_s=0.5,
        ping_interval_s=0.5,
        outgoing_messages=outgoing_messages,
    ) as bus:
        yield bus


def is_after(message: BusMessage, round_: int) -> bool:
    """True for a message published after the restore ending cut number `round_`."""
    return isinstance(message, VehicleStatus) and message.vin.startswith(f"{round_}-after-")


async def wait_disconnected(bus: RedisBus) -> None:
    """Until the bus noticed that its pub/sub connection is gone."""
    while bus.statistics().connected:  # noqa: ASYNC110 (nothing to wait on: it is gone)
        await trio.sleep(0.05)


async def test_a_message_reaches_the_other_node_once_and_its_own_at_once(
    aio_loop: asyncio.AbstractEventLoop, redis_url: str, redis_key_prefix: str
) -> None:
    with trio.fail_after(10):
        async with (
            bus_of(redis_url, "node-a", redis_key_prefix) as a,
            bus_of(redis_url, "node-b", redis_key_prefix) as b,
        ):
            # Both connected: a subscribe made before its node is connected returns at once,
            # unconfirmed, and a message published meanwhile is not delivered to it.
            await a.wait_connected()
            await b.wait_connected()
            async with a.subscribe("fleet") as on_a, b.subscribe("fleet") as on_b:
                a.publish("fleet", MESSAGES[6])
                assert on_a.receive_nowait() == MESSAGES[6]  # local: synchronous
                assert await on_b.receive() == MESSAGES[6]
                b.publish("fleet", MESSAGES[7])
                assert on_b.receive_nowait() == MESSAGES[7]
                assert await on_a.receive() == MESSAGES[7]
                # Nothing twice: a node skips its own messages coming back from Redis.
                a.publish("fleet", MESSAGES[6])
                assert await on_b.receive() == MESSAGES[6]
                assert on_a.receive_nowait() == MESSAGES[6]
                with pytest.raises(trio.WouldBlock):
                    on_a.receive_nowait()
    # Everything sent (the last one flushed on close), nothing received twice.
    assert (a.statistics().published, b.statistics().published) == (2, 1)
    assert (a.statistics().received, b.statistics().received) == (1, 2)


async def test_a_node_receives_only_topics_it_subscribed_to(
    aio_loop: asyncio.AbstractEventLoop, redis_url: str, redis_key_prefix: str
) -> None:
    with trio.fail_after(10):
        async with (
            bus_of(redis_url, "node-a", redis_key_prefix) as a,
            bus_of(redis_url, "node-b", redis_key_prefix) as b,
        ):
            await b.wait_connected()
            async with b.subscribe("vehicle:WANTED") as wanted:
                a.publish("vehicle:UNWANTED", MESSAGES[6])
                a.publish("vehicle:WANTED", MESSAGES[7])
                assert await wanted.receive() == MESSAGES[7]
            # The subscription ended: Redis stops sending the topic to node b.
            async with b.subscribe("fleet") as fleet:
                a.publish("vehicle:WANTED", MESSAGES[6])
                a.publish("fleet", MESSAGES[6])
                assert await fleet.receive() == MESSAGES[6]
            assert b.statistics().received == 2


async def test_garbled_messages_are_dropped_and_the_subscriber_goes_on(
    aio_loop: asyncio.AbstractEventLoop, redis_url: str, redis_key_prefix: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    with trio.fail_after(10):
        async with (
            bus_of(redis_url, "node-a", redis_key_prefix) as a,
            bus_of(redis_url, "node-b", redis_key_prefix) as b,
        ):
            await b.wait_connected()
            async with b.subscribe("fleet") as fleet:
                channel = f"{redis_key_prefix}bus:fleet"
                await trio.to_thread.run_sync(client.publish, channel, b"\xff garbage")
                await trio.to_thread.run_sync(client.publish, channel, b'{"v": 99}')
                a.publish("fleet", MESSAGES[6])
                assert await fleet.receive() == MESSAGES[6]
            assert b.statistics().undecodable == 2
    client.close()


async def test_a_full_outgoing_queue_drops_and_counts_but_delivers_locally(
    aio_loop: asyncio.AbstractEventLoop, redis_url: str, redis_key_prefix: str
) -> None:
    # A publisher that cannot reach Redis (a blackholed proxy): its queue of 3 fills up.
    host, port = redis_host_port(redis_url)
    async with open_tcp_proxy(host, port) as proxy:
        proxy.cut(Cut.BLACKHOLE)
        url = through(proxy, redis_url)
        with trio.fail_after(10):
            async with bus_of(url, "node-a", redis_key_prefix, outgoing_messages=3) as a:
                async with a.subscribe("fleet") as local:
                    for _ in range(10):
                        a.publish("fleet", MESSAGES[6])  # never blocks
                    for _ in range(10):
                        assert local.receive_nowait() == MESSAGES[6]
                stats = a.statistics()
                assert not stats.connected
                # The queue holds 3 (the publisher has not run yet); the rest is dropped.
                assert stats.dropped >= 10 - 3
                assert stats.published == 0


async def test_a_redis_cut_keeps_local_delivery_and_remote_resumes_by_itself(
    aio_loop: asyncio.AbstractEventLoop, redis_url: str, redis_key_prefix: str
) -> None:
    host, port = redis_host_port(redis_url)
    async with open_tcp_proxy(host, port) as proxy:
        url = through(proxy, redis_url)
        with trio.fail_after(30):
            async with (
                bus_of(url, "node-a", redis_key_prefix) as a,
                bus_of(url, "node-b", redis_key_prefix) as b,
            ):
                await b.wait_connected()
                async with b.subscribe("fleet") as on_b, a.subscribe("fleet") as on_a:
                    a.publish("fleet", MESSAGES[6])
                    assert on_a.receive_nowait() == MESSAGES[6]
                    assert await on_b.receive() == MESSAGES[6]
                    # Three reconnections: more than the bus's pool holds, if it leaked any.
                    for round_, how in enumerate((Cut.REFUSE, Cut.BLACKHOLE, Cut.REFUSE)):
                        proxy.cut(how)
                        await wait_disconnected(b)
                        during = VehicleStatus(f"{round_}-during-cut", True, NOW)
                        a.publish("fleet", during)  # b may never see it; a sees it at once
                        assert on_a.receive_nowait() == during
                        proxy.restore()
                        await b.wait_connected()
                        # Re-subscribed by itself: b gets what a publishes from now on
                        # (once a's publisher is through its own reconnection).
                        for attempt in range(100):
                            after = VehicleStatus(f"{round_}-after-{attempt}", True, NOW)
                            a.publish("fleet", after)
                            assert on_a.receive_nowait() == after
                            with trio.move_on_after(0.2):
                                while not is_after(await on_b.receive(), round_):
                                    pass
                                break
                        else:
                            raise AssertionError(f"b got nothing from a after {how} and restore")
