"""A TCP proxy that tests control: put it between the hub and Postgres, then cut it.

```
async with open_tcp_proxy("127.0.0.1", 5432) as proxy:   # listens on 127.0.0.1:proxy.port
    ...                      # the hub's database URL points at proxy.port
    proxy.cut(Cut.REFUSE)    # the server is gone: connections reset, new ones reset at once
    proxy.cut(Cut.BLACKHOLE) # a network partition: nothing gets through, nothing is closed
    proxy.restore()          # traffic flows again
```

- `Cut.REFUSE` resets every open connection (RST, as a crashed server's
  host answers) and resets each new one as soon as it is accepted, so a
  client sees `ConnectionResetError` at once.
- `Cut.BLACKHOLE` stops forwarding in both directions and accepts new
  connections without ever answering, so every query in flight, pool
  pre-ping and connection attempt hangs until the client's own timeout: what
  a partition looks like. Bytes sent meanwhile are held, not dropped (TCP
  would retransmit them), and delivered after `restore()`, as when a
  partition heals; connections the client gave up on are its to close.

Runs on trio; `statistics()` says how many connections it has seen.
"""

from __future__ import annotations

import enum
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

import trio

_CHUNK = 65536


class Cut(enum.Enum):
    """How the proxy breaks the path."""

    REFUSE = "refuse"
    BLACKHOLE = "blackhole"


@dataclass
class ProxyStatistics:
    """Counters of a proxy since it started."""

    accepted: int
    reset: int
    open: int


class TcpProxy:
    """Forwards each accepted connection to `target`; see the module docstring."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self.port = 0
        self._cut: Cut | None = None
        self._changed = trio.Event()
        self._connections: set[_Connection] = set()
        self._accepted = 0
        self._reset = 0

    @property
    def state(self) -> Cut | None:
        """How it is cut now, or None when traffic flows."""
        return self._cut

    def cut(self, how: Cut = Cut.REFUSE) -> None:
        """Break the path (see `Cut`); takes effect at once."""
        self._cut = how
        self._wake()
        if how is Cut.REFUSE:
            for connection in list(self._connections):
                self._abort(connection)

    def restore(self) -> None:
        """Let traffic flow again (held bytes are delivered)."""
        self._cut = None
        self._wake()

    def statistics(self) -> ProxyStatistics:
        """Connections accepted, reset by a cut, and open now."""
        return ProxyStatistics(self._accepted, self._reset, len(self._connections))

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on 127.0.0.1 (a free port) and forward until cancelled."""
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            for listener in listeners:
                nursery.start_soon(self._accept, listener, nursery)
            task_status.started(self.port)

    async def _accept(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        async with listener:
            while True:
                client = await listener.accept()
                self._accepted += 1
                if self._cut is Cut.REFUSE:
                    self._reset += 1
                    _reset(client)
                    continue
                nursery.start_soon(self._forward, client)

    async def _forward(self, client: trio.SocketStream) -> None:
        connection = _Connection(client)
        self._connections.add(connection)
        try:
            with connection.scope:
                await self._flowing()  # a blackholed connect waits here, unanswered
                upstream = await trio.open_tcp_stream(*self._target)
                connection.upstream = upstream
                async with trio.open_nursery() as pumps:
                    pumps.start_soon(self._pump, client, upstream, pumps.cancel_scope)
                    pumps.start_soon(self._pump, upstream, client, pumps.cancel_scope)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            self._connections.discard(connection)
            if not connection.aborted:
                with trio.CancelScope(shield=True):
                    for stream in connection.streams():
                        await stream.aclose()

    async def _pump(
        self, source: trio.SocketStream, sink: trio.SocketStream, done: trio.CancelScope
    ) -> None:
        try:
            while True:
                data = await source.receive_some(_CHUNK)
                if not data:
                    break
                await self._flowing()  # held while blackholed
                await sink.send_all(data)
            await self._flowing()
            await sink.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            done.cancel()

    async def _flowing(self) -> None:
        while self._cut is Cut.BLACKHOLE:
            await self._changed.wait()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _abort(self, connection: _Connection) -> None:
        self._reset += 1
        connection.aborted = True
        for stream in connection.streams():
            _reset(stream)
        connection.scope.cancel()
        self._connections.discard(connection)


class _Connection:
    def __init__(self, client: trio.SocketStream) -> None:
        self.client = client
        self.upstream: trio.SocketStream | None = None
        self.scope = trio.CancelScope()
        self.aborted = False

    def streams(self) -> list[trio.SocketStream]:
        return [self.client] + ([self.upstream] if self.upstream is not None else [])


def _reset(stream: trio.SocketStream) -> None:
    """Close `stream` with a TCP RST (SO_LINGER 0) rather than a polite FIN."""
    with suppress(OSError):
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    stream.socket.close()


@asynccontextmanager
async def open_tcp_proxy(target_host: str, target_port: int) -> AsyncIterator[TcpProxy]:
    """A running `TcpProxy` to `target_host:target_port`; stopped (connections closed) on exit."""
    proxy = TcpProxy(target_host, target_port)
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.serve)
        try:
            yield proxy
        finally:
            proxy.restore()
            nursery.cancel_scope.cancel()
