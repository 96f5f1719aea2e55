"""The in-process event bus: topic fan-out, unsubscribe, and slow subscribers."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime

import pytest
import trio
import trio.testing

from hub import BusMessage, BusStatistics, CommandStatus, InProcessBus, StatusChange

AT = datetime(2025, 1, 1, tzinfo=UTC)


def _message(n: int = 0) -> StatusChange:
    return StatusChange(uuid.UUID(int=n), CommandStatus.RUNNING, AT)


def _drain(channel: trio.MemoryReceiveChannel[BusMessage]) -> list[BusMessage]:
    received = []
    while True:
        try:
            received.append(channel.receive_nowait())
        except trio.WouldBlock:
            return received


async def test_subscribers_of_a_topic_get_its_messages_only() -> None:
    bus = InProcessBus()
    async with (
        bus.subscribe("command:a") as first,
        bus.subscribe("command:a") as second,
        bus.subscribe("command:b") as other,
    ):
        bus.publish("command:a", _message(1))
        bus.publish("command:b", _message(2))
        bus.publish("command:c", _message(3))  # nobody listens: dropped, no error

        assert _drain(first) == [_message(1)]
        assert _drain(second) == [_message(1)]
        assert _drain(other) == [_message(2)]


async def test_subscriber_sees_only_what_is_published_after_it_subscribed() -> None:
    bus = InProcessBus()
    bus.publish("t", _message(1))
    async with bus.subscribe("t") as channel:
        bus.publish("t", _message(2))

        assert _drain(channel) == [_message(2)]


async def test_messages_arrive_in_publish_order() -> None:
    bus = InProcessBus()
    async with bus.subscribe("t") as channel:
        for n in range(10):
            bus.publish("t", _message(n))

        assert _drain(channel) == [_message(n) for n in range(10)]


async def test_leaving_the_context_unsubscribes() -> None:
    bus = InProcessBus()
    async with bus.subscribe("t") as channel, bus.subscribe("t") as staying:
        assert bus.statistics() == BusStatistics(topics=1, subscriptions=2)
    async with bus.subscribe("t") as staying:
        async with bus.subscribe("t") as channel:
            assert bus.statistics() == BusStatistics(topics=1, subscriptions=2)
        assert bus.statistics() == BusStatistics(topics=1, subscriptions=1)

        bus.publish("t", _message(1))

        assert _drain(staying) == [_message(1)]
        with pytest.raises(trio.ClosedResourceError):
            channel.receive_nowait()
    assert bus.statistics() == BusStatistics(topics=0, subscriptions=0)
    bus.publish("t", _message(2))  # no subscriber left: nothing to do, no error


async def test_unsubscribes_when_the_body_raises() -> None:
    bus = InProcessBus()
    with pytest.raises(RuntimeError, match="handler failed"):
        async with bus.subscribe("t"):
            raise RuntimeError("handler failed")

    assert bus.statistics() == BusStatistics(topics=0, subscriptions=0)


async def test_slow_subscriber_is_dropped_and_the_publisher_never_blocks() -> None:
    bus = InProcessBus(buffer_size=3)
    async with bus.subscribe("t") as slow, bus.subscribe("t") as fast:
        received: list[BusMessage] = []
        for n in range(10):
            # publish is synchronous: it cannot wait for a reader, whatever the buffers hold.
            bus.publish("t", _message(n))
            received += _drain(fast)

        assert received == [_message(n) for n in range(10)]
        assert bus.statistics() == BusStatistics(topics=1, subscriptions=1)
        # The slow one keeps what fit in its buffer, then sees its channel end.
        with trio.testing.assert_checkpoints():
            assert [await slow.receive() for _ in range(3)] == [_message(n) for n in range(3)]
        with pytest.raises(trio.EndOfChannel):
            await slow.receive()


async def test_dropped_subscriber_may_subscribe_again() -> None:
    bus = InProcessBus(buffer_size=1)
    async with bus.subscribe("t") as slow:
        bus.publish("t", _message(1))
        bus.publish("t", _message(2))  # overflows: dropped
        assert slow.receive_nowait() == _message(1)
        with pytest.raises(trio.EndOfChannel):
            slow.receive_nowait()
    async with bus.subscribe("t") as again:
        bus.publish("t", _message(3))

        assert _drain(again) == [_message(3)]


async def test_closing_the_receive_side_early_unsubscribes_on_next_publish() -> None:
    bus = InProcessBus()
    async with bus.subscribe("t") as channel, bus.subscribe("t") as other:
        await channel.aclose()

        bus.publish("t", _message(1))

        assert bus.statistics() == BusStatistics(topics=1, subscriptions=1)
        assert _drain(other) == [_message(1)]


async def test_a_dropped_subscriber_leaving_late_does_not_unsubscribe_a_newer_one() -> None:
    bus = InProcessBus(buffer_size=1)
    async with contextlib.AsyncExitStack() as stack:
        async with bus.subscribe("t") as slow:
            async with bus.subscribe("t") as fast:
                bus.publish("t", _message(1))
                assert _drain(fast) == [_message(1)]
                bus.publish("t", _message(2))  # overflows `slow`: dropped, still draining
                assert _drain(fast) == [_message(2)]
            # `fast` has left; a new subscriber arrives while `slow` is still open.
            newer = await stack.enter_async_context(bus.subscribe("t"))
            assert slow.receive_nowait() == _message(1)
        # `slow` has left now; `newer` has not and must still get the topic's messages.
        bus.publish("t", _message(3))

        assert bus.statistics() == BusStatistics(topics=1, subscriptions=1)
        assert _drain(newer) == [_message(3)]
