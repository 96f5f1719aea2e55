"""The vehicle gateway: the grpclib service that admits vehicles and pumps their streams.

The handler runs as an asyncio task and drives the sans-IO protocol of
`hub.link_protocol`. It authenticates the connection on its request headers,
before reading any message (`Admission.authenticate`: the token's hash names the
vehicle), then reads a `Hello` of at most `max_hello_bytes` and admits the
vehicle it names (`Admission.attach`); two bridge crossings per connection. Then it
runs two small asyncio pumps: the reader passes each message through the
link (`Link.received`: rate limit, heartbeats) and hands the rest to the
actor's trio mailbox with `send_nowait` (awaiting across the bridge only when
the mailbox is full), the writer drains the link's outbox. Neither crosses
the bridge per message. Every message is refused on its declared length
before it is buffered (`hub.gateway_io`).

This is the one place where the hub's `LinkVerdict`s become gRPC statuses
(`STATUS_OF`): the rest of the hub does not know gRPC.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import Protocol

import structlog
import trio
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from hub.admission import Admission
from hub.bridge import run_asyncio, run_trio
from hub.config import HubConfig
from hub.errors import VehicleRefused
from hub.gateway_io import Http2Limits, LimitedServer, VehicleStream, receive
from hub.link import Link, LinkEnd, new_link
from hub.link_protocol import (
    LinkVerdict,
    bad_first_message,
    bearer_token,
    check_identity,
    first_message,
    hello_timeout,
)
from hub.listener import ConnectionStatistics, Listener
from hub.mailbox import ActorMessage, FromVehicle, LinkClosed
from hub.model import DisconnectReason
from hub.tls import certificate_identity, server_context
from hub.untrusted import echo_vin
from proto import Hello, VehicleLinkBase

log = structlog.get_logger("hub.gateway")

#: Pending connections the kernel queues for us (capped by net.core.somaxconn): a fleet
#: reconnecting after an outage arrives all at once, and grpclib's default of 100 drops most.
LISTEN_BACKLOG = 4096
#: How long the handler waits for the actor to end a link the vehicle closed.
LINK_END_TIMEOUT_S = 5.0
#: What an event message may hold beyond its body (command id, seq, kind, status, framing).
EVENT_ENVELOPE_BYTES = 1024
#: The gRPC status a vehicle is told for each of the hub's verdicts (README, "What a vehicle
#: is told").
STATUS_OF: Mapping[LinkVerdict, Status] = MappingProxyType(
    {
        LinkVerdict.UNAUTHENTICATED: Status.UNAUTHENTICATED,
        LinkVerdict.PERMISSION_DENIED: Status.PERMISSION_DENIED,
        LinkVerdict.PROTOCOL_ERROR: Status.INVALID_ARGUMENT,
        LinkVerdict.TOO_LARGE: Status.RESOURCE_EXHAUSTED,
        LinkVerdict.RATE_LIMITED: Status.RESOURCE_EXHAUSTED,
        LinkVerdict.UNAVAILABLE: Status.UNAVAILABLE,
        LinkVerdict.TIMED_OUT: Status.DEADLINE_EXCEEDED,
        LinkVerdict.REPLACED: Status.ABORTED,
        LinkVerdict.INTERNAL: Status.INTERNAL,
    }
)


class GatewayHost(Protocol):
    """What the gateway uses of the hub it admits vehicles to (`hub.node.Hub`)."""

    config: HubConfig
    admission: Admission
    connections: ConnectionStatistics

    def deliver(
        self, inbox: trio.MemorySendChannel[ActorMessage], message: ActorMessage
    ) -> None: ...

    async def shutdown(self) -> None: ...


class VehicleGateway(VehicleLinkBase):
    """`VehicleLink.Connect`: one call per connected vehicle, for as long as it stays."""

    def __init__(self, hub: GatewayHost) -> None:
        self._hub = hub
        self._handlers: set[asyncio.Task[object]] = set()
        #: Called with `stream.peer.addr()` once a vehicle is admitted on that connection
        #: (the listener then lifts its `handshake_timeout_s` deadline).
        self.on_admitted: Callable[[object], None] = lambda peer: None

    async def wait_handlers(self) -> None:
        """(asyncio) Return once every `Connect` call has ended."""
        if self._handlers:
            await asyncio.wait(set(self._handlers))

    async def Connect(self, stream: VehicleStream) -> None:  # noqa: N802 (the gRPC name)
        """Admit one vehicle and pump its stream until the link ends."""
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._connect(stream)
        finally:
            self._handlers.discard(task)

    async def _connect(self, stream: VehicleStream) -> None:
        config = self._hub.config
        address = _address(stream)
        try:
            token = bearer_token(_authorization(stream.metadata))
        except VehicleRefused as exc:
            raise _told(exc) from None
        try:
            candidates = await run_trio(self._hub.admission.authenticate, token)
        except VehicleRefused as exc:
            raise self._refuse(address, None, exc) from None
        hello = await self._hello(stream)
        link = new_link(hello.vin, config)
        try:
            if config.tls_client_ca_file is not None:
                check_identity(certificate_identity(stream.peer.cert()), hello.vin)
            inbox = await run_trio(self._hub.admission.attach, hello, candidates, link)
        except VehicleRefused as exc:
            raise self._refuse(address, hello.vin, exc) from None
        self.on_admitted(stream.peer.addr())
        end = await self._pump(stream, link, inbox)
        if end.verdict is not None:
            raise GRPCError(STATUS_OF[end.verdict], end.message)

    async def _hello(self, stream: VehicleStream) -> Hello:
        """The connection's first message, which must be a `Hello` of at most `max_hello_bytes`."""
        config = self._hub.config
        try:
            async with asyncio.timeout(config.hello_timeout_s):
                first = await receive(
                    stream, config.max_hello_bytes, f"max_hello_bytes ({config.max_hello_bytes})"
                )
        except TimeoutError:
            raise _told(hello_timeout(config.hello_timeout_s)) from None
        except VehicleRefused as exc:
            log.info("vehicle.bad_hello", peer=_address(stream), reason=exc.message)
            raise _told(bad_first_message(exc)) from None
        try:
            return first_message(first)
        except VehicleRefused as exc:
            raise _told(exc) from None

    def _refuse(self, address: str, vin: str | None, exc: VehicleRefused) -> GRPCError:
        """Log and audit (aggregated) a refused connection; the error that ends its stream."""
        claimed = None if vin is None else echo_vin(vin)
        log.info("vehicle.refused", vin=claimed, peer=address, reason=exc.message)
        error = _told(exc)
        self._hub.admission.audit_refusal(address, vin, error.status.name, exc.message)
        return error

    async def _pump(
        self, stream: VehicleStream, link: Link, inbox: trio.MemorySendChannel[ActorMessage]
    ) -> LinkEnd:
        """Run both pumps until the link ends; the actor always learns that it ended."""
        config = self._hub.config
        reader = asyncio.ensure_future(_read(stream, link, inbox, config.max_event_bytes))
        writer = asyncio.ensure_future(_write(stream, link))
        closed: LinkClosed | None = LinkClosed(
            link.id, DisconnectReason.CONNECTION_LOST, "the connection was lost"
        )
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            if writer.done():  # the hub ended the link: the actor knows why
                return writer.result()
            self._hub.deliver(inbox, _read_end(link, reader))
            closed = None
            async with asyncio.timeout(LINK_END_TIMEOUT_S):
                return await writer  # the actor ends the link in reply
        finally:
            reader.cancel()
            writer.cancel()
            if closed is not None:
                if link.ended is not None:
                    closed = LinkClosed(link.id, link.ended.reason, link.ended.message)
                self._hub.deliver(inbox, closed)
            inbox.close()


async def _read(
    stream: VehicleStream,
    link: Link,
    inbox: trio.MemorySendChannel[ActorMessage],
    max_event_bytes: int,
) -> None:
    max_bytes = max_event_bytes + EVENT_ENVELOPE_BYTES
    limit = (
        f"max_event_bytes ({max_event_bytes}) plus {EVENT_ENVELOPE_BYTES} bytes for the "
        "event's other fields"
    )
    while True:
        try:
            message = await receive(stream, max_bytes, limit)
        except VehicleRefused as exc:  # a protocol error: the actor ends the link and says why
            link.close(exc.verdict, exc.message, DisconnectReason.PROTOCOL_ERROR)
            return
        if message is None:
            return
        # A heartbeat is answered by the link: liveness needs no trip through the actor.
        if link.received(message, trio.current_time()) is None:
            if link.ended is not None:  # a flood
                return
            continue
        item = FromVehicle(link.id, message)
        try:
            inbox.send_nowait(item)
        except trio.WouldBlock:
            await run_trio(inbox.send, item)  # the actor is behind: backpressure


async def _write(stream: VehicleStream, link: Link) -> LinkEnd:
    while True:
        item = await link.next_outgoing()
        if isinstance(item, LinkEnd):
            return item
        await stream.send_message(item)


def _read_end(link: Link, reader: asyncio.Future[None]) -> LinkClosed:
    exc = reader.exception()
    if link.ended is not None:  # the reader itself ended the link (a flood)
        return LinkClosed(link.id, link.ended.reason, link.ended.message)
    if exc is None:
        detail = "the vehicle closed the stream"
        return LinkClosed(link.id, DisconnectReason.CLOSED_BY_VEHICLE, detail)
    if isinstance(exc, trio.BrokenResourceError | trio.ClosedResourceError):
        return LinkClosed(link.id, DisconnectReason.HUB_SHUTDOWN, "the vehicle's actor stopped")
    return LinkClosed(link.id, DisconnectReason.CONNECTION_LOST, f"the stream failed: {exc!r}")


def _authorization(metadata: object) -> object:
    return metadata.get("authorization") if hasattr(metadata, "get") else None


def _told(exc: VehicleRefused) -> GRPCError:
    """The gRPC error that tells a vehicle it is refused (`STATUS_OF`)."""
    return GRPCError(STATUS_OF[exc.verdict], exc.message)


@asynccontextmanager
async def serve_gateway(hub: GatewayHost, host: str, port: int) -> AsyncIterator[int]:
    """Serve `VehicleLink` on `host:port` (0: any free port); yields the bound port.

    Connections are accepted by `hub.listener.Listener` (caps, handshake
    deadline, pauses when out of files) and handed to grpclib. On exit the
    hub ends every vehicle stream with `UNAVAILABLE` (bounded by
    `shutdown_grace_s`) before the connections close, since grpclib's own
    close tells clients nothing. Must run in trio hosted on asyncio
    (`hub.run_with_asyncio`).
    """
    sock = socket.create_server((host, port), family=_family(host), backlog=LISTEN_BACKLOG)
    gateway = VehicleGateway(hub)
    config = hub.config
    limits = Http2Limits(
        window_bytes=config.grpc_flow_window_bytes,
        max_streams=config.grpc_max_streams_per_connection,
        max_header_list_bytes=config.grpc_max_header_list_bytes,
    )
    server = LimitedServer([gateway], limits)
    listener = Listener(
        sock,
        config,
        hub.connections,
        server._protocol_factory,
        asyncio.get_event_loop(),
        server_context(config),
    )
    gateway.on_admitted = listener.admitted
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(listener.serve)
            try:
                yield sock.getsockname()[1]
            finally:
                with trio.CancelScope(shield=True):
                    await hub.shutdown()
                    with trio.move_on_after(hub.config.shutdown_grace_s):
                        await run_asyncio(gateway.wait_handlers)  # their UNAVAILABLE arrives
                nursery.cancel_scope.cancel()  # stop accepting
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(hub.config.shutdown_grace_s):
            await listener.close_all()


def _address(stream: VehicleStream) -> str:
    """The peer's IP address (its port left out: a source reconnects from many ports)."""
    peer = stream.peer.addr()
    return "unknown" if peer is None else str(peer[0])


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
