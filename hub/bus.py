"""The in-process event bus: the embedded default when no Redis is configured."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from hub.ports import BusMessage


@dataclass(frozen=True, slots=True)
class BusStatistics:
    """A snapshot of an in-process bus (`InProcessBus.statistics`)."""

    #: Topics with at least one subscriber.
    topics: int
    #: Subscriptions over all topics.
    subscriptions: int


class InProcessBus:
    """Fans messages out to the subscribers of a topic inside this process.

    Each subscriber has a bounded buffer (`buffer_size` messages); one that
    falls behind by more has its channel closed instead of slowing the
    publisher, and must subscribe again (with `from_seq` to catch up).
    """

    def __init__(self, buffer_size: int = 256) -> None:
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be at least 1, got {buffer_size}")
        self._buffer_size = buffer_size
        self._subscribers: defaultdict[str, set[trio.MemorySendChannel[BusMessage]]] = defaultdict(
            set
        )

    def publish(self, topic: str, message: BusMessage) -> None:
        """Hand `message` to every subscriber of `topic`; never blocks."""
        for channel in tuple(self._subscribers.get(topic, ())):
            try:
                channel.send_nowait(message)
            except trio.WouldBlock:
                # Too slow: drop the subscriber rather than block the actor.
                channel.close()
                self._subscribers[topic].discard(channel)
            except trio.BrokenResourceError:
                self._subscribers[topic].discard(channel)

    @asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[trio.MemoryReceiveChannel[BusMessage]]:
        """Receive what is published on `topic` from now on, while the context is open."""
        send, receive = trio.open_memory_channel[BusMessage](self._buffer_size)
        subscribers = self._subscribers[topic]
        subscribers.add(send)
        try:
            with receive:
                yield receive
        finally:
            subscribers.discard(send)
            if not subscribers and self._subscribers.get(topic) is subscribers:
                del self._subscribers[topic]
            send.close()

    def statistics(self) -> BusStatistics:
        """Topics with subscribers and the number of subscriptions."""
        return BusStatistics(
            topics=len(self._subscribers),
            subscriptions=sum(len(s) for s in self._subscribers.values()),
        )
