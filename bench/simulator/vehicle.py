"""One simulated vehicle's link: connect, Hello, Welcome, then its read, write and heartbeat loops.

`SimulatedVehicle.run` holds one session (one grpclib `Channel`, one
`VehicleLink.Connect` stream) and answers commands from the sans-IO
`bench.vehicle_model.VehicleModel`, applying its `Behaviour`'s faults.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from grpclib.client import Channel, Stream
from grpclib.const import Status
from grpclib.exceptions import GRPCError, StreamTerminatedError
from h2.exceptions import H2Error

from bench.simulator.behaviour import (
    DEFAULT_BEHAVIOUR,
    Behaviour,
    CorruptMessage,
    FaultCodec,
    VehicleSpec,
)
from bench.simulator.errors import LinkLost, LinkRefused, ProtocolViolation
from bench.vehicle_model import EventKind, EventSpec, VehicleModel
from proto import VehicleLinkStub
from proto import vehicle_link_pb2 as pb

log = logging.getLogger("bench.simulator")  # one logger for the whole simulator


DEFAULT_AGENT_VERSION = "sovd-sim/0.1.0"
CAPABILITIES = ("sovd.faults", "sovd.data", "sovd.operations")
_OUTBOX_SIZE = 64  # events queued for the writer; a full outbox slows the command tasks
_WRITE_FAILURE_GRACE_S = 1.0  # after a failed send, time for the reader to see the hub's status
# What a broken connection raises from grpclib (TimeoutError is an OSError too,
# but the only timeouts under run() are caught where they happen).
_LINK_ERRORS = (StreamTerminatedError, OSError, H2Error, asyncio.IncompleteReadError)
_KIND_TO_PB = {
    EventKind.ACCEPTED: pb.CommandEvent.ACCEPTED,
    EventKind.PROGRESS: pb.CommandEvent.PROGRESS,
    EventKind.RESULT: pb.CommandEvent.RESULT,
    EventKind.ERROR: pb.CommandEvent.ERROR,
}
_CANCELLED = EventSpec(
    EventKind.ERROR,
    499,
    {"error_code": "cancelled", "message": "command cancelled by the hub"},
    final=True,
)


@dataclass(slots=True)
class _CommandRun:
    command_id: str
    task: asyncio.Task[None] | None = None
    next_seq: int = 0


@dataclass(frozen=True, slots=True)
class _Outgoing:
    message: pb.VehicleMessage
    command_id: str | None = None  # set on command events, to count them per command
    final: bool = False


class SimulatedVehicle:
    """One vehicle: connects, says Hello, answers commands until the link ends.

    `run()` may be called again after it ends (a reconnect); the model, and so
    any cleared faults, and the counters carry over.
    """

    def __init__(
        self,
        spec: VehicleSpec,
        host: str,
        port: int,
        behaviour: Behaviour = DEFAULT_BEHAVIOUR,
        agent_version: str = DEFAULT_AGENT_VERSION,
        handshakes: asyncio.Semaphore | None = None,
        alternates: Sequence[tuple[str, int]] = (),
    ) -> None:
        self.spec = spec
        # Where to go after a failed attempt: the next hub endpoint, round-robin.
        self._endpoints = [(host, port), *alternates]
        self._endpoint = 0
        # Shared by a fleet: how many vehicles may be between connecting and Welcome at once
        # (a real fleet's jittered start; an unbounded herd measures the herd, not the hub).
        self._handshakes = handshakes
        self._in_handshake = False
        self.host = host
        self.port = port
        self.behaviour = behaviour
        self.agent_version = agent_version
        self.model = VehicleModel(spec.vin)
        self.session_id: str | None = None
        self.connected = asyncio.Event()
        self.commands_received = 0
        self.events_sent = 0
        self.sessions = 0
        self._channel: Channel | None = None
        self._broken = asyncio.Event()
        self._commands: dict[str, _CommandRun] = {}

    def _next_endpoint(self) -> None:
        """Fail over: the next attempt goes to the next hub endpoint."""
        self._endpoint = (self._endpoint + 1) % len(self._endpoints)
        self.host, self.port = self._endpoints[self._endpoint]

    def _end_handshake(self) -> None:
        if self._in_handshake and self._handshakes is not None:
            self._in_handshake = False
            self._handshakes.release()

    def break_link(self) -> None:
        """Close the connection abruptly, as a lost cellular link would; `run()` raises LinkLost."""
        self._broken.set()
        if self._channel is not None:
            self._channel.close()

    async def run(self) -> None:
        """Hold one session with the hub until it ends.

        Returns when the hub ends the stream with OK. Raises `LinkRefused`
        (error status), `LinkLost` (connection broken), `ProtocolViolation`.
        Cancellation resets the stream and closes the connection.
        """
        self.session_id = None
        self._broken = asyncio.Event()
        if self._handshakes is not None:
            await self._handshakes.acquire()
            self._in_handshake = True
        channel = Channel(self.host, self.port, codec=FaultCodec())
        self._channel = channel
        metadata = {"authorization": f"Bearer {self.spec.token}"}
        try:
            # Errors are translated outside the stream's `async with`: its exit
            # turns a reset that came with the hub's trailers into their GRPCError.
            async with VehicleLinkStub(channel).Connect.open(metadata=metadata) as stream:
                await self._session(stream)
        except GRPCError as exc:
            if exc.status is Status.UNAVAILABLE:
                self._next_endpoint()
            raise LinkRefused(exc.status, exc.message) from exc
        except _LINK_ERRORS as exc:
            if self._broken.is_set():
                raise LinkLost("link broken by break_link()", injected=True) from exc
            self._next_endpoint()
            if self.session_id is None:
                raise LinkLost(f"cannot reach hub {self.host}:{self.port}: {exc!r}") from exc
            raise LinkLost(f"link to {self.host}:{self.port} lost: {exc!r}") from exc
        finally:
            self._end_handshake()
            self.connected.clear()
            self._channel = None
            channel.close()
            await self._cancel_commands()

    async def _session(self, stream: Stream[pb.VehicleMessage, pb.HubMessage]) -> None:
        """Say Hello, wait for Welcome, then run the link's loops until one ends."""
        interval_s = await self._handshake(stream)
        if self.behaviour.fault == "crash_loop":
            self.break_link()
        log.info("%s connected, session %s", self.spec.vin, self.session_id)
        await self._run_loops(stream, interval_s)

    async def _handshake(self, stream: Stream[pb.VehicleMessage, pb.HubMessage]) -> float:
        """Hello, then Welcome; returns the heartbeat interval (s) the hub asked for."""
        await stream.send_request()
        hello = pb.Hello(
            vin=self.spec.vin, agent_version=self.agent_version, capabilities=CAPABILITIES
        )
        await stream.send_message(pb.VehicleMessage(hello=hello))
        try:
            async with asyncio.timeout(self.behaviour.welcome_timeout_s):
                first = await stream.recv_message()
        except TimeoutError:
            raise ProtocolViolation(
                f"no Welcome within {self.behaviour.welcome_timeout_s} s of Hello"
            ) from None
        if first is None:
            await _finish(stream)  # raises GRPCError when the hub refused us
            raise ProtocolViolation("hub ended the stream without a Welcome")
        if first.WhichOneof("kind") != "welcome":
            raise ProtocolViolation(f"expected Welcome, got {first.WhichOneof('kind')}")
        self.session_id = first.welcome.session_id
        interval_s = first.welcome.heartbeat_interval_ms / 1000
        self._end_handshake()
        self.connected.set()
        self.sessions += 1
        return interval_s

    async def _run_loops(
        self, stream: Stream[pb.VehicleMessage, pb.HubMessage], interval_s: float
    ) -> None:
        """Read, write and heartbeat until the first of them (or `break_link`) ends the session."""
        outbox: asyncio.Queue[_Outgoing] = asyncio.Queue(_OUTBOX_SIZE)
        reader = asyncio.create_task(self._read_loop(stream, outbox, interval_s))
        tasks = [
            reader,
            asyncio.create_task(self._write_loop(stream, outbox)),
            asyncio.create_task(self._heartbeat_loop(outbox, interval_s)),
            asyncio.create_task(self._broken.wait()),
        ]
        try:
            # The first task to finish ends the session. The reader finishing
            # means the hub ended the stream (or went silent).
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if reader not in done and not self._broken.is_set():
                # A send fails when the hub has just ended the stream; its status,
                # which the reader is about to see, is the better explanation.
                await asyncio.wait([reader], timeout=_WRITE_FAILURE_GRACE_S)
        finally:
            for task in tasks:
                if task is not reader or not task.done():
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._broken.is_set():
            raise LinkLost("link broken by break_link()", injected=True)
        (reader if reader.done() and not reader.cancelled() else done.pop()).result()

    async def _read_loop(
        self,
        stream: Stream[pb.VehicleMessage, pb.HubMessage],
        outbox: asyncio.Queue[_Outgoing],
        interval_s: float,
    ) -> None:
        silence = self.behaviour.hub_silence_intervals
        limit_s = silence * interval_s if silence is not None and interval_s > 0 else None
        while True:
            try:
                async with asyncio.timeout(limit_s):
                    message = await stream.recv_message()
            except TimeoutError:
                raise LinkLost(
                    f"hub silent for {limit_s:.1f} s ({silence} heartbeat intervals)"
                ) from None
            if message is None:
                await _finish(stream)
                log.info("%s: hub ended the stream", self.spec.vin)
                return
            match message.WhichOneof("kind"):
                case "command":
                    await self._on_command(message.command, outbox)
                case "cancel":
                    await self._on_cancel(message.cancel.command_id, outbox)
                case "heartbeat" | "welcome":
                    pass  # any message proves the hub alive; a repeated Welcome is harmless
                case other:
                    log.warning("%s: ignoring hub message of kind %s", self.spec.vin, other)

    async def _on_command(
        self, request: pb.CommandRequest, outbox: asyncio.Queue[_Outgoing]
    ) -> None:
        self.commands_received += 1
        if self.behaviour.drop_after_events == 0:
            self.break_link()
            return
        if self.behaviour.silent or request.command_id in self._commands:
            return  # a duplicate of a running command is answered once
        run = _CommandRun(request.command_id)
        sovd = request.sovd
        answer = self.model.answer(
            sovd, query=dict(sovd.query), body=sovd.body, command_id=request.command_id
        )
        for stopped in answer.stopped:  # a stopped execution's command ends before the stop's
            await self._on_cancel(stopped.command_id, outbox, stopped.final)
        self._commands[run.command_id] = run
        run.task = asyncio.create_task(self._answer(run, answer.events, outbox))

    async def _answer(
        self, run: _CommandRun, events: list[EventSpec], outbox: asyncio.Queue[_Outgoing]
    ) -> None:
        fault = self.behaviour.fault
        completed = False
        try:
            if fault == "stranger":
                await outbox.put(_event(str(uuid.uuid4()), 0, events[0]))
            if fault == "corrupt":
                await outbox.put(_Outgoing(cast(pb.VehicleMessage, CorruptMessage())))
            if fault == "flood":
                beat = pb.VehicleMessage(heartbeat=pb.Heartbeat(sent_at_ms=0))
                for _ in range(self.behaviour.fault_size):
                    await outbox.put(_Outgoing(beat))
            for index, spec in enumerate(events):
                # Latency before every event, the first too: an ECU takes time to answer.
                if (delay_s := self.behaviour.event_latency_s + spec.delay_s) > 0:
                    await asyncio.sleep(delay_s)
                # put() only suspends while the outbox is full, and a cancelled put()
                # enqueues nothing, so next_seq always names the next event to send.
                await outbox.put(_event(run.command_id, run.next_seq, spec, self._body(index)))
                if fault == "repeat_seq":
                    await outbox.put(_event(run.command_id, run.next_seq, spec))
                run.next_seq += 2 if fault == "skip_seq" and index == 0 else 1
            completed = True
        finally:
            self.model.command_ended(run.command_id, completed=completed)
            if self._commands.get(run.command_id) is run:
                del self._commands[run.command_id]

    def _body(self, index: int) -> bytes | None:
        """A faulty body for the first event, when the behaviour asks for one."""
        if index > 0:
            return None
        if self.behaviour.fault == "malformed":
            return b"{this is not json"
        if self.behaviour.fault == "oversized":
            return json.dumps({"pad": "x" * self.behaviour.fault_size}).encode()
        return None

    async def _on_cancel(
        self, command_id: str, outbox: asyncio.Queue[_Outgoing], final: EventSpec = _CANCELLED
    ) -> None:
        """End a running command now with `final` (cancelled by the hub, or stopped)."""
        run = self._commands.pop(command_id, None)
        if run is None:
            log.info("%s: cancel for %s, which is not running", self.spec.vin, command_id)
            return
        if run.task is not None:
            run.task.cancel()
        await outbox.put(_event(command_id, run.next_seq, final))

    async def _write_loop(
        self, stream: Stream[pb.VehicleMessage, pb.HubMessage], outbox: asyncio.Queue[_Outgoing]
    ) -> None:
        # One writer: concurrent send_message calls could interleave a message's frames.
        sent_per_command: dict[str, int] = {}
        drop_after = self.behaviour.drop_after_events
        while True:
            item = await outbox.get()
            await stream.send_message(item.message)
            if item.command_id is None:
                continue
            self.events_sent += 1
            count = sent_per_command.get(item.command_id, 0) + 1
            sent_per_command[item.command_id] = count
            if item.final:
                del sent_per_command[item.command_id]
            if drop_after is not None and count >= drop_after:
                log.info("%s: dropping the link after %d events", self.spec.vin, count)
                self.break_link()
                return

    async def _heartbeat_loop(self, outbox: asyncio.Queue[_Outgoing], interval_s: float) -> None:
        if interval_s <= 0:
            await asyncio.Event().wait()  # the hub asked for no heartbeats
            return
        while True:
            await asyncio.sleep(interval_s)
            beat = pb.Heartbeat(sent_at_ms=time.monotonic_ns() // 1_000_000)
            await outbox.put(_Outgoing(pb.VehicleMessage(heartbeat=beat)))

    async def _cancel_commands(self) -> None:
        tasks = [run.task for run in self._commands.values() if run.task is not None]
        self._commands.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _event(command_id: str, seq: int, spec: EventSpec, body: bytes | None = None) -> _Outgoing:
    event = pb.CommandEvent(
        command_id=command_id,
        seq=seq,
        kind=_KIND_TO_PB[spec.kind],
        status=spec.status,
        body=json.dumps(spec.body, separators=(",", ":")).encode() if body is None else body,
        final=spec.final,
    )
    return _Outgoing(pb.VehicleMessage(event=event), command_id, spec.final)


async def _finish(stream: Stream[pb.VehicleMessage, pb.HubMessage]) -> None:
    """Read the hub's trailers after its last message; raises GRPCError on an error status."""
    # grpclib reads trailers only once our side of the stream has ended.
    await stream.end()
    await stream.recv_trailing_metadata()
