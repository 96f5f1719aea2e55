"""The gateway's bounded input: messages refused on their declared length, HTTP/2 limits.

grpclib 0.4.9 has no receive-size limit: `Stream.recv_message` reads a
message's 5-byte prefix, then as many bytes as the prefix declares (up to
4 GiB), acknowledging each chunk as it buffers it, so that the peer may send
the next. `receive` reads the same prefix itself and refuses a message over
its limit before reading a byte of its body (the one place that reaches into
grpclib's stream, `Stream._stream`; `tests/api/test_hostile_grpc.py` holds
it to grpclib's behaviour).

`LimitedServer` is grpclib's `Server` whose connections start with small
HTTP/2 settings, effective from the first frame (they are h2's initial
values, not a later update a hostile peer could leave unacknowledged):

- flow-control windows of `grpc_flow_window_bytes`, for the connection and
  for each stream: what a peer can push before the hub reads it;
- at most `grpc_max_streams_per_connection` concurrent streams (grpclib's
  default is 100; a vehicle needs one);
- request headers (metadata) of at most `grpc_max_header_list_bytes`
  decoded. h2 itself refuses frames over 16 KiB (HTTP/2's smallest maximum
  frame size, which the hub keeps) and a header block of more than 64
  CONTINUATION frames.

Both sides' settings are `CompactSettings`: h2 keeps each setting's values
in a `collections.deque`, 0.74 KiB apiece (its first block holds 64
pointers), about 10 KiB of every connection's 58 KiB traced (`hold
--tracemalloc`, 2026-12-04); a list of one or two values behaves the same
for what h2 does with it and costs under 0.1 KiB.
"""

from __future__ import annotations

from asyncio import BaseTransport, Transport
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from google.protobuf.message import DecodeError
from grpclib.config import Configuration
from grpclib.protocol import (
    AbstractHandler,
    Connection,
    EventsProcessor,
    H2Protocol,
    _set_nodelay,  # grpclib's own rule for TCP_NODELAY, kept as it is
)
from grpclib.server import Server, Stream
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.settings import SettingCodes, Settings

from hub.errors import LinkVerdict, VehicleRefused
from proto import HubMessage, VehicleMessage

if TYPE_CHECKING:
    from grpclib._typing import IServable

__all__ = [
    "PREFIX_BYTES",
    "CompactSettings",
    "Http2Limits",
    "LimitedServer",
    "VehicleStream",
    "receive",
]

VehicleStream = Stream[VehicleMessage, HubMessage]

#: A gRPC message's prefix: one byte "compressed" flag, four bytes of length (big-endian).
PREFIX_BYTES = 5
#: HTTP/2's initial window size, which h2 starts the connection's window at.
_DEFAULT_WINDOW_BYTES = 65535


async def receive(stream: VehicleStream, max_bytes: int, limit: str) -> VehicleMessage | None:
    """The next message from the vehicle, or None when it ended its stream.

    Raises `VehicleRefused` (`TOO_LARGE`) for a message declared longer than
    `max_bytes` (`limit` names the setting behind it), before its body is
    read; `PROTOCOL_ERROR` for a compressed message, one cut short by the end
    of the stream, or bytes that are not a `VehicleMessage`.
    """
    raw = stream._stream  # grpclib has no size limit of its own: see the module doc
    try:
        prefix = await raw.recv_data(PREFIX_BYTES)
        if not prefix:
            return None
        length = int.from_bytes(prefix[1:], "big")
        if prefix[0]:
            raise VehicleRefused(
                LinkVerdict.PROTOCOL_ERROR,
                "a compressed message: the hub takes uncompressed messages only "
                "(send them without grpc-encoding)",
            )
        if length > max_bytes:
            raise VehicleRefused(
                LinkVerdict.TOO_LARGE,
                f"a message of {length} bytes, more than {limit}; refused unread",
            )
        body = await raw.recv_data(length)
    except AssertionError:  # grpclib's buffer: the stream ended before the bytes it declared
        raise VehicleRefused(
            LinkVerdict.PROTOCOL_ERROR, "the stream ended in the middle of a message"
        ) from None
    try:
        return VehicleMessage.FromString(body)
    except DecodeError:
        raise VehicleRefused(
            LinkVerdict.PROTOCOL_ERROR,
            f"a message of {length} bytes that is not a protobuf VehicleMessage "
            "(it does not decode); check the agent's proto/vehicle_link.proto",
        ) from None


@dataclass(frozen=True, slots=True)
class Http2Limits:
    """The HTTP/2 settings every vehicle connection starts with (see the module doc)."""

    window_bytes: int
    max_streams: int
    max_header_list_bytes: int


class LimitedServer(Server):
    """grpclib's `Server`, its connections held to `limits` from their first frame."""

    def __init__(self, handlers: Collection[IServable], limits: Http2Limits) -> None:
        window = limits.window_bytes
        config = Configuration(http2_connection_window_size=window, http2_stream_window_size=window)
        super().__init__(handlers, config=config)
        self._limits = limits
        self._new_since_sweep = self._left_by_sweep = 0

    def __gc_step__(self) -> None:
        """Sweep grpclib's set of connection handlers once it could have doubled.

        grpclib sweeps the whole set every 10 new connections: 0.87 ms at 20,000
        vehicles, 87 us per connect. Sweeping after as many new connections as
        the set holds is O(1) per connect; the set stays under twice the links.
        """
        self._new_since_sweep += 1
        if self._new_since_sweep >= max(10, self._left_by_sweep):
            self.__gc_collect__()
            self._new_since_sweep, self._left_by_sweep = 0, len(self._handlers)

    def _protocol_factory(self) -> H2Protocol:
        plain = super()._protocol_factory()  # grpclib's handler bookkeeping, unchanged
        return _LimitedProtocol(plain.handler, plain.config, plain.h2_config, self._limits)


class _Values(list[Any]):
    """One setting's values, oldest first: h2's deque of them, as a small list."""

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)


class CompactSettings(Settings):
    """h2's `Settings`, each setting's values in a `_Values` list instead of a deque."""

    def __init__(
        self, client: bool = True, initial_values: dict[SettingCodes, int] | None = None
    ) -> None:
        super().__init__(client, initial_values)
        self._compact()

    def __setitem__(self, key: SettingCodes | int, value: int) -> None:
        super().__setitem__(key, value)  # a setting new to this side gets a deque: replace it
        self._compact()

    def _compact(self) -> None:
        values: dict[Any, Any] = self._settings
        for key, held in values.items():
            if not isinstance(held, _Values):
                values[key] = _Values(held)


class _LimitedProtocol(H2Protocol):
    """grpclib's `H2Protocol` (0.4.9), with h2 settings set before the connection starts."""

    def __init__(
        self,
        handler: AbstractHandler,
        config: Configuration,
        h2_config: H2Configuration,
        limits: Http2Limits,
    ) -> None:
        super().__init__(handler, config, h2_config)
        self._limits = limits

    def connection_made(self, transport: BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            _set_nodelay(sock)
        limits = self._limits
        h2_conn = H2Connection(config=self.h2_config)
        # Initial values apply at once; an update would wait for the peer's acknowledgement.
        h2_conn.local_settings = CompactSettings(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: limits.max_streams,
                SettingCodes.MAX_HEADER_LIST_SIZE: limits.max_header_list_bytes,
                SettingCodes.INITIAL_WINDOW_SIZE: limits.window_bytes,
            },
        )
        h2_conn.remote_settings = CompactSettings(client=True)  # the defaults h2 starts with
        h2_conn.decoder.max_header_list_size = limits.max_header_list_bytes
        h2_conn.initiate_connection()
        if limits.window_bytes != _DEFAULT_WINDOW_BYTES:
            h2_conn.increment_flow_control_window(limits.window_bytes - _DEFAULT_WINDOW_BYTES)
        self.connection = Connection(h2_conn, cast(Transport, transport), config=self.config)
        self.connection.flush()
        self.connection.initialize()
        self.processor = EventsProcessor(self.handler, self.connection)
