"""The gateway's accept loop: a TCP connection is ours until its vehicle is admitted.

grpclib would accept connections itself (asyncio's `create_server`), and then
nothing bounds them: a connection that never sends the HTTP/2 preface, or
dribbles it, holds a file forever, and asyncio's accept loop, out of files
(EMFILE), logs once per attempt: it keeps looping up to `backlog` (4096)
times per wake-up after the error and schedules a retry for each (under
trio-asyncio, our loop then, ~7,000 lines a second). So the gateway owns the
loop (a trio task) and hands each socket it keeps to grpclib:

- past `grpc_max_connections` open connections, or
  `grpc_max_connections_per_address` from one address, a new connection is
  closed at once, before any HTTP/2 or TLS work;
- a connection whose vehicle is not admitted (`Listener.admitted`, called by
  the gateway once `Hub.attach` accepted the Hello) within
  `handshake_timeout_s` of its accept is closed;
- out of files or memory, accepting pauses for `grpc_accept_pause_s` and
  resumes by itself.

Each of these is counted (`ConnectionStatistics`) and logged at most once per
`grpc_log_interval_s`, with the count since the previous line.

grpclib internals relied on: `Server._protocol_factory()` (a private method,
stable since grpclib 0.3) builds the `H2Protocol` for one connection; the
server is never `start()`ed, so the listener closes the connections itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import resource
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import structlog
import trio

from hub.config import HubConfig
from hub.errors import ConfigError

log = structlog.get_logger("hub.listener")

#: accept() errors that mean "out of resources": pause, do not crash or spin.
RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

Peer = tuple[object, ...]


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft open-file limit (`ulimit -n`) to the hard one; returns (before, after).

    Each connected vehicle is one open file; many servers do this at start,
    since raising the soft limit needs no privilege.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return soft, hard
    return soft, soft


def max_gateway_connections(config: HubConfig) -> int:
    """The total cap: `grpc_max_connections`, or derived from the soft open-file limit."""
    if config.grpc_max_connections:
        return config.grpc_max_connections
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    derived = soft - config.grpc_reserved_files
    if derived < 1:
        raise ConfigError(
            f"the open-file limit (ulimit -n) is {soft} and grpc_reserved_files is "
            f"{config.grpc_reserved_files}, which leaves no file for vehicles: raise the limit, "
            "lower SOVD_HUB_GRPC_RESERVED_FILES or set SOVD_HUB_GRPC_MAX_CONNECTIONS"
        )
    return derived


@dataclass(slots=True)
class ConnectionStatistics:
    """Counters of the gateway's TCP connections (see `Hub.statistics()`)."""

    #: Connections open now (accepted, not yet closed).
    open: int = 0
    #: Closed at once: the total cap (`grpc_max_connections`) was reached.
    refused_total_cap: int = 0
    #: Closed at once: their address had `grpc_max_connections_per_address` open.
    refused_address_cap: int = 0
    #: Closed because no vehicle was admitted on them within `handshake_timeout_s`.
    handshake_timeouts: int = 0
    #: accept() failed for lack of files or memory (each is followed by a pause).
    accept_pauses: int = 0


class _Throttle:
    """Says when a repeated event may be logged: the first at once, then once per interval."""

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._last = -math.inf
        self._pending = 0

    def note(self) -> int:
        """Count one event; the number to report now (0: stay quiet this time)."""
        self._pending += 1
        now = trio.current_time()
        if now - self._last < self._interval_s:
            return 0
        self._last, count, self._pending = now, self._pending, 0
        return count


class _Connection:
    """One accepted TCP connection, until it is closed."""

    __slots__ = ("address", "peer", "settled", "sock", "transport")

    def __init__(self, address: str, peer: Peer, sock: socket.socket) -> None:
        self.address = address
        self.peer = peer
        self.sock = sock
        self.transport: asyncio.Transport | None = None
        #: Set when the vehicle is admitted or the connection is closed: the deadline is off.
        self.settled = trio.Event()

    def close(self, *, flush: bool = False) -> None:
        """Close it from the hub's side (its `connection_lost` follows).

        `flush`: send what is queued first (a stream's final status), else drop it.
        """
        if self.transport is not None:
            if flush:
                self.transport.close()
            else:
                self.transport.abort()
            return
        with contextlib.suppress(OSError):  # not handed over yet: its transport reads EOF, closes
            self.sock.shutdown(socket.SHUT_RDWR)


class _Tracked(asyncio.Protocol):
    """grpclib's protocol for one connection, telling the listener when it ends."""

    def __init__(
        self, inner: asyncio.Protocol, conn: _Connection, lost: Callable[[_Connection], None]
    ) -> None:
        self._inner = inner
        self._conn = conn
        self._lost = lost
        self._made = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._made = True
        assert isinstance(transport, asyncio.Transport)
        self._conn.transport = transport
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            if self._made:
                self._inner.connection_lost(exc)
        finally:
            self._lost(self._conn)


class Listener:
    """Accepts gateway connections, enforces the caps and the handshake deadline.

    `protocol_factory` builds grpclib's protocol for one connection; the
    sockets kept are handed to `loop` (the asyncio loop hosting trio) with `tls`.
    """

    def __init__(
        self,
        sock: socket.socket,
        config: HubConfig,
        statistics: ConnectionStatistics,
        protocol_factory: Callable[[], asyncio.Protocol],
        loop: asyncio.AbstractEventLoop,
        tls: ssl.SSLContext | None,
    ) -> None:
        self._sock = sock
        self._config = config
        self._max_total = max_gateway_connections(config)
        self._max_per_address = config.grpc_max_connections_per_address
        self._statistics = statistics
        self._protocol_factory = protocol_factory
        self._loop = loop
        self._tls = tls
        self._connections: dict[Peer, _Connection] = {}
        self._per_address: dict[str, int] = {}
        self._empty = trio.Event()
        self._empty.set()
        interval = config.grpc_log_interval_s
        self._throttles = {
            "total": _Throttle(interval),
            "address": _Throttle(interval),
            "timeout": _Throttle(interval),
            "pause": _Throttle(interval),
        }

    @property
    def max_connections(self) -> int:
        """The total cap in force (given, or derived from the open-file limit)."""
        return self._max_total

    def admitted(self, peer: object) -> None:
        """The gateway's hook: a vehicle was admitted on the connection from `peer`.

        `peer` is `stream.peer.addr()` (the transport's `peername`); its
        connection's handshake deadline no longer applies.
        """
        if isinstance(peer, tuple) and (conn := self._connections.get(peer)) is not None:
            conn.settled.set()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Accept until cancelled; each connection kept is closed by its deadline or its peer.

        Cancelling it stops accepting; `close_all` then closes what is open.
        """
        listener = trio.socket.from_stdlib_socket(self._sock)
        with listener:
            await self._accept(listener, task_status)

    async def _accept(
        self, listener: trio.socket.SocketType, task_status: trio.TaskStatus[None]
    ) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                try:
                    accepted, peer = await listener.accept()
                except OSError as exc:
                    if exc.errno not in RESOURCE_ERRNOS:
                        raise
                    self._statistics.accept_pauses += 1
                    if count := self._throttles["pause"].note():
                        log.error(
                            "gateway.accept_paused",
                            error=errno.errorcode.get(exc.errno or 0, str(exc.errno)),
                            pause_s=self._config.grpc_accept_pause_s,
                            count=count,
                            detail="out of open files or memory: raise ulimit -n or lower "
                            "grpc_max_connections",
                        )
                    await trio.sleep(self._config.grpc_accept_pause_s)
                    continue
                conn = self._admit(accepted, tuple(peer))
                if conn is not None:
                    nursery.start_soon(self._deadline, conn)

    def _admit(self, accepted: trio.socket.SocketType, peer: Peer) -> _Connection | None:
        address = str(peer[0])
        if len(self._connections) >= self._max_total:
            self._refuse(accepted, "total", address, self._statistics)
            return None
        if self._max_per_address and self._per_address.get(address, 0) >= self._max_per_address:
            self._refuse(accepted, "address", address, self._statistics)
            return None
        # Proto 0, as `socket.accept()` gives it from our listener and as grpclib's own
        # `Server.start` got it: asyncio and grpclib then leave TCP_NODELAY off (they set it only
        # when proto is IPPROTO_TCP, which `fileno=` alone would read from the socket). With
        # Nagle on, the RST_STREAM grpclib sends after an error status waits for the ACK of the
        # status: a grpclib vehicle reads the status alone, `recv_message` returns None and
        # `recv_trailing_metadata` raises the status. With TCP_NODELAY both arrive in one read
        # and `recv_message` raises `StreamTerminatedError` instead (tests/hub/test_gateway.py).
        sock = socket.socket(accepted.family, accepted.type, 0, fileno=accepted.detach())
        conn = _Connection(address, peer, sock)
        self._connections[peer] = conn
        self._per_address[address] = self._per_address.get(address, 0) + 1
        self._statistics.open = len(self._connections)
        self._empty = trio.Event() if self._empty.is_set() else self._empty
        self._loop.call_soon(self._hand_over, conn)
        return conn

    def _refuse(
        self,
        accepted: trio.socket.SocketType,
        cap: str,
        address: str,
        statistics: ConnectionStatistics,
    ) -> None:
        accepted.close()
        if cap == "total":
            statistics.refused_total_cap += 1
            setting, limit = "grpc_max_connections", self._max_total
        else:
            statistics.refused_address_cap += 1
            setting, limit = "grpc_max_connections_per_address", self._max_per_address
        if count := self._throttles[cap].note():
            log.warning(
                "gateway.connection_refused",
                address=address,
                count=count,
                detail=f"{limit} connections open already ({setting})",
            )

    def _hand_over(self, conn: _Connection) -> None:
        """(asyncio callback) Give the socket to grpclib's protocol."""
        if conn.peer not in self._connections:
            conn.sock.close()  # closed before it was handed over
            return
        task = self._loop.create_task(
            self._loop.connect_accepted_socket(
                lambda: _Tracked(self._protocol_factory(), conn, self._lost),
                conn.sock,
                ssl=self._tls,
                ssl_handshake_timeout=self._config.handshake_timeout_s if self._tls else None,
            )
        )
        task.add_done_callback(lambda done: self._handed_over(conn, done))

    def _handed_over(self, conn: _Connection, done: asyncio.Task[object]) -> None:
        if done.cancelled() or done.exception() is not None:  # e.g. a failed TLS handshake
            log.debug("gateway.connection_failed", address=conn.address, error=repr(done))
            conn.sock.close()
            self._lost(conn)

    def _lost(self, conn: _Connection) -> None:
        if self._connections.get(conn.peer) is not conn:
            return  # counted out already
        del self._connections[conn.peer]
        left = self._per_address[conn.address] - 1
        if left:
            self._per_address[conn.address] = left
        else:
            del self._per_address[conn.address]
        self._statistics.open = len(self._connections)
        conn.settled.set()
        if not self._connections:
            self._empty.set()

    async def _deadline(self, conn: _Connection) -> None:
        with trio.move_on_after(self._config.handshake_timeout_s):
            await conn.settled.wait()
            return
        self._statistics.handshake_timeouts += 1
        if count := self._throttles["timeout"].note():
            log.info(
                "gateway.handshake_timeout",
                address=conn.address,
                count=count,
                detail=f"no vehicle admitted within {self._config.handshake_timeout_s:g} s "
                "(handshake_timeout_s)",
            )
        conn.close()

    async def close_all(self) -> None:
        """Close every open connection and wait until they are gone (bound it by a cancel scope).

        Cancellation: leaves the rest closing in the background.
        """
        for conn in list(self._connections.values()):
            conn.close(flush=True)
        await self._empty.wait()
