"""A raw gRPC vehicle client (`RawVehicle`) that says exactly what a test tells it, and its VINs."""

from __future__ import annotations

import grpclib.client
import trio
import trio.lowlevel
from grpclib.exceptions import GRPCError

from hub import run_asyncio
from proto import Hello, HubMessage, VehicleLinkStub, VehicleMessage

VIN = "WVWZZZ1JZXW000001"
OTHER = "WVWZZZ1JZXW000002"
TOKEN = "token-1"


class RawVehicle:
    """A vehicle driven step by step by the test (no automatic heartbeats or answers)."""

    def __init__(self, port: int, vin: str = VIN, token: str | None = TOKEN) -> None:
        self.port = port
        self.vin = vin
        self.token = token
        self.received: list[HubMessage] = []
        self.welcomed = trio.Event()
        self.ended: GRPCError | None = None
        self.finished = trio.Event()
        self._arrival = trio.Event()

    async def wait_received(self, count: int) -> None:
        """Return once `count` messages have arrived from the hub."""
        while len(self.received) < count:
            self._arrival = trio.Event()
            await self._arrival.wait()

    async def run(self, first: VehicleMessage | None = None, *, silent: bool = False) -> None:
        """Connect, send `first` (Hello by default; nothing if `silent`), read until the end."""
        hello = VehicleMessage(hello=Hello(vin=self.vin))
        try:
            await run_asyncio(self._run, None if silent else first or hello)
        finally:
            self.finished.set()

    async def _run(self, first: VehicleMessage | None) -> None:
        channel = grpclib.client.Channel("127.0.0.1", self.port)
        metadata = {"authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            async with VehicleLinkStub(channel).Connect.open(metadata=metadata) as stream:
                if first is None:
                    await stream.send_request()
                else:
                    await stream.send_message(first)
                while (message := await stream.recv_message()) is not None:
                    self.received.append(message)
                    self._arrival.set()
                    if message.WhichOneof("kind") == "welcome":
                        self.welcomed.set()
                await stream.end()
                await stream.recv_trailing_metadata()
        except GRPCError as exc:
            self.ended = exc
        finally:
            channel.close()
