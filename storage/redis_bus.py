"""The event bus of several nodes: local delivery at once, fan-out to the others over Redis.

`RedisBus` implements the hub's `EventBus` port. `publish` hands a message
to this node's subscribers at once (an `InProcessBus`, same semantics) and
puts it, without blocking, on a bounded outgoing queue (`outgoing_messages`).
One publisher task drains that queue, encodes (`storage.bus_codec`) and
sends the messages as pipelined `PUBLISH`es on the channel
`<key_prefix>bus:<topic>`. When the queue is full or Redis does not answer,
messages are dropped and counted (`statistics().dropped`), never waited
for: other nodes' live subscribers may then miss them; command events and
final statuses are in the database, which a WebSocket reads on (re)subscribe.

One subscriber task per node keeps its own pub/sub connection and
`SUBSCRIBE`s exactly the topics this node has local subscribers for
(`UNSUBSCRIBE` when the last one leaves): Redis then only sends a node the
vehicles and commands somebody watches there, where a pattern subscription
would send every node every message of a 20,000-vehicle fleet. Messages
from other nodes (the envelope names the publisher; a node skips its own,
delivered already) go to the local subscribers; garbled ones are logged,
counted and dropped. `subscribe` returns once Redis has confirmed the
subscription (bounded by `timeout_s`; not waited for while Redis is down), so
a WebSocket that subscribes and then reads the database misses nothing
published after its read.

Redis down: local delivery goes on unchanged; the subscriber reconnects with
backoff (0.1 s doubling to 5 s) and subscribes again to every topic wanted
then; a pub/sub connection that answers no PING for `ping_interval_s +
timeout_s` is dropped and reconnected (a network partition closes nothing).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import orjson
import structlog
import trio
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError

from hub import BusMessage, InProcessBus, run_asyncio
from storage.bus_codec import CodecError, decode, encode
from storage.keyvalue import KeyValue, KeyValueError, RedisUnavailable, open_keyvalue

__all__ = ["RedisBus", "open_redis_bus"]

log = structlog.get_logger("storage.redis_bus")

#: Messages sent to Redis in one pipeline at most.
PUBLISH_BATCH = 512
#: Reconnection backoff of the subscriber: first wait, longest wait (seconds).
BACKOFF_S = (0.1, 5.0)


@asynccontextmanager
async def open_redis_bus(
    url: str,
    *,
    node_id: str,
    key_prefix: str,
    timeout_s: float = 1.0,
    buffer_size: int = 256,
    outgoing_messages: int = 10_000,
    ping_interval_s: float = 5.0,
) -> AsyncIterator[RedisBus]:
    """A `RedisBus` of node `node_id` on the Redis at `url`, running while the context is open.

    Opens its own two connections (pub/sub and publishing), apart from the
    node's `KeyValue` pool. Connects lazily and never fails for a Redis that
    is down (see `statistics().connected`). On exit, what is still queued
    is sent for up to `timeout_s`, then both tasks are cancelled and the
    connections closed (shielded). Must run in trio hosted on
    asyncio (`hub.run_with_asyncio`).
    """
    async with (
        open_keyvalue(url, key_prefix=key_prefix, pool_size=3, timeout_s=timeout_s) as kv,
        trio.open_nursery() as nursery,
    ):
        bus = RedisBus(
            kv,
            node_id,
            timeout_s=timeout_s,
            buffer_size=buffer_size,
            outgoing_messages=outgoing_messages,
            ping_interval_s=ping_interval_s,
        )
        flushed = trio.Event()
        nursery.start_soon(bus.run_publisher, flushed)
        nursery.start_soon(bus.run_subscriber)
        try:
            yield bus
        finally:
            bus.close_outgoing()
            with trio.CancelScope(shield=True), trio.move_on_after(timeout_s):
                await flushed.wait()
            nursery.cancel_scope.cancel()


@dataclass(frozen=True, slots=True)
class RedisBusStatistics:
    """`published` (sent to Redis), `dropped` (not sent: queue full or Redis down),
    `received` (from other nodes), `undecodable`, `connected` (the pub/sub connection
    is up), `queued`, and the local `topics` and `subscriptions`."""

    published: int
    dropped: int
    received: int
    undecodable: int
    connected: bool
    queued: int
    topics: int
    subscriptions: int


class RedisBus:
    """An `EventBus` whose messages also reach (and come from) other nodes through Redis.

    Built by `open_redis_bus`, which runs its two tasks.
    """

    def __init__(
        self,
        kv: KeyValue,
        node_id: str,
        *,
        timeout_s: float,
        buffer_size: int = 256,
        outgoing_messages: int = 10_000,
        ping_interval_s: float = 5.0,
    ) -> None:
        if outgoing_messages < 1:
            raise ValueError(f"outgoing_messages must be at least 1, got {outgoing_messages}")
        self._kv = kv
        self.node_id = node_id
        self._timeout_s = timeout_s
        self._ping_interval_s = ping_interval_s
        self._local = InProcessBus(buffer_size)
        self._outgoing, self._queued = trio.open_memory_channel[tuple[str, BusMessage]](
            outgoing_messages
        )
        self._channel_prefix = kv.key("bus", "")
        # What local subscribers want, what the pub/sub connection has, what Redis confirmed.
        self._wanted: dict[str, int] = {}
        self._subscribed: set[str] = set()
        self._confirmed: set[str] = set()
        self._changed = trio.Event()
        self._waiting: list[trio.Event] = []
        self._pings: dict[int, tuple[set[str], list[trio.Event]]] = {}
        self._ping_token = 0
        self._last_heard = 0.0
        self._connected = False
        self._up = trio.Event()  # set while `_connected`
        self._dropping = False
        self._counts = {"published": 0, "dropped": 0, "received": 0, "undecodable": 0}

    # -- the EventBus port ----------------------------------------------------

    def publish(self, topic: str, message: BusMessage) -> None:
        """Deliver `message` to this node's subscribers of `topic`, and queue it for the
        other nodes (dropped, counted, if the queue is full); never blocks."""
        self._local.publish(topic, message)
        try:
            self._outgoing.send_nowait((topic, message))
        except (trio.WouldBlock, trio.ClosedResourceError):
            self._drop(1, "the outgoing queue is full (bus_outgoing_messages)")

    @asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[trio.MemoryReceiveChannel[BusMessage]]:
        """Receive what any node publishes on `topic` from now on, while the context is open.

        Returns once Redis confirmed the subscription, or after `timeout_s`, or
        at once while Redis is down (then other nodes' messages reach it only
        once it is back). Cancellation: safe; the subscription ends with the context.
        """
        async with self._local.subscribe(topic) as receive:
            self._wanted[topic] = self._wanted.get(topic, 0) + 1
            try:
                if topic not in self._confirmed and self._connected:
                    ready = trio.Event()
                    self._waiting.append(ready)
                    self._changed.set()
                    with trio.move_on_after(self._timeout_s):
                        await ready.wait()
                yield receive
            finally:
                self._wanted[topic] -= 1
                if not self._wanted[topic]:
                    del self._wanted[topic]
                    self._changed.set()

    async def wait_connected(self) -> None:
        """Return once the pub/sub connection is up (Redis answered it)."""
        await self._up.wait()

    def statistics(self) -> RedisBusStatistics:
        """A frozen snapshot of the counters (see `RedisBusStatistics`)."""
        local = self._local.statistics()
        return RedisBusStatistics(
            **self._counts,
            connected=self._connected,
            queued=self._queued.statistics().current_buffer_used,
            topics=local.topics,
            subscriptions=local.subscriptions,
        )

    # -- publishing -------------------------------------------------------------

    def close_outgoing(self) -> None:
        """Queue nothing more (the publisher sends what is queued, then ends)."""
        self._outgoing.close()

    async def run_publisher(self, flushed: trio.Event) -> None:
        """Send queued messages to Redis in pipelines until the queue is closed and empty."""
        try:
            async for first in self._queued:
                batch = [first]
                while len(batch) < PUBLISH_BATCH:
                    try:
                        batch.append(self._queued.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                await self._publish(batch)
        finally:
            flushed.set()

    async def _publish(self, batch: Sequence[tuple[str, BusMessage]]) -> None:
        payload = []
        for topic, message in batch:
            try:
                payload.append((self._channel_prefix + topic, encode(self.node_id, message)))
            except orjson.JSONEncodeError as exc:  # a body that is not JSON: a bug upstream
                log.error("bus.unencodable", topic=topic, error=str(exc))
                self._counts["dropped"] += 1
        try:
            await self._kv.run(_publish_all, payload)
        except KeyValueError as exc:
            self._drop(len(payload), str(exc))
            await trio.sleep(BACKOFF_S[0])  # let a dead Redis be refused in bulk, not per batch
            return
        self._counts["published"] += len(payload)
        if self._dropping:
            self._dropping = False
            log.info("bus.redis_publish_resumed", dropped=self._counts["dropped"])

    def _drop(self, count: int, why: str) -> None:
        self._counts["dropped"] += count
        if not self._dropping:  # once per episode, not per message
            self._dropping = True
            log.warning("bus.redis_publish_dropping", reason=why, dropped=self._counts["dropped"])

    # -- receiving --------------------------------------------------------------

    async def run_subscriber(self) -> None:
        """Keep a pub/sub connection subscribed to the wanted topics; reconnect with backoff."""
        backoff = BACKOFF_S[0]
        while True:
            try:
                await self._session()
            except KeyValueError as exc:
                was_connected, self._connected = self._connected, False
                if was_connected:
                    self._up = trio.Event()
                self._release_waiters()
                if was_connected:
                    backoff = BACKOFF_S[0]
                    log.warning("bus.redis_subscriber_lost", error=str(exc))
                else:
                    log.debug("bus.redis_subscriber_retry", error=str(exc), backoff_s=backoff)
            await trio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_S[1])

    async def _session(self) -> None:
        pubsub = await self._kv.run(_new_pubsub)
        self._subscribed = set()
        self._confirmed = set()
        self._last_heard = trio.current_time()
        try:
            await self._sync(pubsub)  # connects, subscribes to every wanted topic, pings
            failure: list[KeyValueError] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._guard, failure, nursery, self._read, pubsub)
                nursery.start_soon(self._guard, failure, nursery, self._control, pubsub)
            if failure:
                raise failure[0]
        finally:
            with trio.move_on_after(self._timeout_s) as scope:
                scope.shield = True
                await run_asyncio(pubsub.aclose)

    @staticmethod
    async def _guard(
        failure: list[KeyValueError],
        nursery: trio.Nursery,
        fn: Callable[[PubSub], Awaitable[None]],
        pubsub: PubSub,
    ) -> None:
        try:
            await fn(pubsub)
        except KeyValueError as exc:
            failure.append(exc)
        nursery.cancel_scope.cancel()

    async def _read(self, pubsub: PubSub) -> None:
        await self._kv.run(_read_forever, pubsub, self._on_message)

    async def _control(self, pubsub: PubSub) -> None:
        while True:
            with trio.move_on_after(self._ping_interval_s):
                await self._changed.wait()
            silent_s = trio.current_time() - self._last_heard
            if silent_s > self._ping_interval_s + self._timeout_s:
                raise RedisUnavailable(
                    f"Redis at {self._kv.where} answered no PING for {silent_s:.1f} s"
                )
            await self._sync(pubsub)

    async def _sync(self, pubsub: PubSub) -> None:
        """Bring the connection's subscriptions to the wanted topics, then PING: its answer
        confirms them (Redis answers in order)."""
        self._changed = trio.Event()
        wanted = set(self._wanted)
        added, removed = wanted - self._subscribed, self._subscribed - wanted
        self._ping_token += 1
        self._pings[self._ping_token] = (added, self._waiting)
        self._waiting = []
        self._confirmed -= removed
        self._subscribed = wanted
        prefix = self._channel_prefix
        await self._kv.run(
            _change,
            pubsub,
            [prefix + topic for topic in added],
            [prefix + topic for topic in removed],
            str(self._ping_token),
        )

    def _on_message(self, message: dict[str, object]) -> None:
        # Runs in the asyncio reader, synchronously: only non-blocking trio calls here.
        self._last_heard = trio.current_time()
        kind, data = message.get("type"), message.get("data")
        if kind == "message" and isinstance(data, bytes):
            channel = message.get("channel")
            topic = channel.decode() if isinstance(channel, bytes) else ""
            if not topic.startswith(self._channel_prefix):
                return
            try:
                node_id, decoded = decode(data)
            except CodecError as exc:
                self._counts["undecodable"] += 1
                log.warning("bus.undecodable", channel=topic, error=str(exc), size=len(data))
                return
            if node_id != self.node_id:
                self._counts["received"] += 1
                self._local.publish(topic[len(self._channel_prefix) :], decoded)
        elif kind == "pong" and isinstance(data, bytes) and data.isdigit():
            self._on_pong(int(data))

    def _on_pong(self, token: int) -> None:
        if not self._connected:
            self._connected = True
            self._up.set()
            log.info("bus.redis_subscriber_connected", topics=len(self._subscribed))
        for earlier in [t for t in self._pings if t <= token]:
            added, waiters = self._pings.pop(earlier)
            self._confirmed |= added & self._subscribed
            for ready in waiters:
                ready.set()

    def _release_waiters(self) -> None:
        for _, waiters in self._pings.values():
            for ready in waiters:
                ready.set()
        self._pings.clear()
        for ready in self._waiting:
            ready.set()
        self._waiting = []


async def _new_pubsub(client: Redis) -> PubSub:
    return client.pubsub()


async def _change(
    client: Redis, pubsub: PubSub, added: list[str], removed: list[str], token: str
) -> None:
    try:
        if added:
            await pubsub.subscribe(*added)
        if removed:
            await pubsub.unsubscribe(*removed)
        await pubsub.ping(token)
    except AttributeError as exc:  # redis-py: the reader tore the connection down meanwhile
        raise RedisConnectionError("the pub/sub connection closed while in use") from exc


async def _read_forever(
    client: Redis, pubsub: PubSub, on_message: Callable[[dict[str, object]], None]
) -> None:
    while True:
        message = await pubsub.get_message(timeout=None)
        if message is not None:
            on_message(message)


async def _publish_all(client: Redis, payload: Sequence[tuple[str, bytes]]) -> None:
    if not payload:
        return
    async with client.pipeline(transaction=False) as pipe:
        for channel, data in payload:
            pipe.publish(channel, data)
        await pipe.execute()
