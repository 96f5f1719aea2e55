"""A simulated vehicle fleet speaking the vehicle link protocol to a hub.

Plain asyncio (grpclib is an asyncio library): run it on its own with
`python -m bench.simulator`, or inside trio through trio-asyncio's
`aio_as_trio`. Each `SimulatedVehicle` holds one grpclib `Channel` (one TCP
connection) and one `VehicleLink.Connect` stream; its answers come from the
sans-IO `bench.vehicle_model.VehicleModel`.

Exceptions::

    SimulatorError
    ├── LinkRefused        the hub ended the stream with an error status
    ├── LinkLost           the connection broke: network, hub gone, hub silent,
    │                      or break_link() (fault injection: `injected` is True)
    ├── ProtocolViolation  the hub did not answer Hello with Welcome
    └── FleetFileError     the fleet file is missing or invalid (CLI)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from grpclib.client import Channel, Stream
from grpclib.const import Status
from grpclib.encoding.proto import ProtoCodec
from grpclib.exceptions import GRPCError, StreamTerminatedError
from h2.exceptions import H2Error

from bench.vehicle_model import EventKind, EventSpec, VehicleModel
from proto import VehicleLinkStub
from proto import vehicle_link_pb2 as pb

log = logging.getLogger("bench.simulator")  # not __main__ under -m

DEFAULT_AGENT_VERSION = "sovd-sim/0.1.0"
CAPABILITIES = ("sovd.faults", "sovd.data", "sovd.operations")
_OUTBOX_SIZE = 64  # events queued for the writer; a full outbox slows the command tasks
_BACKOFF_FIRST_S = 0.5
_BACKOFF_MAX_S = 10.0
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


class SimulatorError(Exception):
    """Base of the simulator's errors."""


class LinkRefused(SimulatorError):
    """The hub ended the stream with a non-OK gRPC status."""

    def __init__(self, status: Status, message: str | None) -> None:
        super().__init__(f"hub ended the link with {status.name}: {message or '(no message)'}")
        self.status = status
        self.message = message


class LinkLost(SimulatorError):
    """The connection broke; `injected` is True when `break_link()` broke it."""

    def __init__(self, reason: str, *, injected: bool = False) -> None:
        super().__init__(reason)
        self.injected = injected


class ProtocolViolation(SimulatorError):
    """The hub sent something the protocol does not allow at that point."""


class FleetFileError(SimulatorError):
    """The fleet file cannot be read or does not describe a fleet."""


@dataclass(frozen=True, slots=True)
class VehicleSpec:
    """Identity of one simulated vehicle."""

    vin: str
    token: str


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How a simulated vehicle behaves; the defaults are a healthy, fast vehicle.

    `silent`: receive commands, never answer. `drop_after_events`: after
    sending that many events of one command, close the connection abruptly.
    `fault` (fault injection, see `FAULTS`): `malformed` sends a first event
    whose body is not JSON, `oversized` one whose body is `fault_size` bytes,
    `repeat_seq` sends every event twice, `skip_seq` skips a seq after the
    first event, `flood` sends `fault_size` heartbeats at once first, `stranger`
    first sends an event for a command it was never given,
    `crash_loop` drops the link right after every Welcome (an agent that keeps crashing),
    `corrupt` first sends a message whose bytes are not protobuf (`CORRUPT_BYTES`).
    `hub_silence_intervals`: the link is dead when the hub sends nothing for
    that many heartbeat intervals (None: never). `welcome_timeout_s`: how
    long to wait for Welcome after Hello.
    """

    event_latency_s: float = 0.0
    silent: bool = False
    drop_after_events: int | None = None
    hub_silence_intervals: int | None = 3
    welcome_timeout_s: float = 30.0
    fault: str | None = None
    fault_size: int = 100_000

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)}, got {self.fault!r}")
        if self.event_latency_s < 0:
            raise ValueError(f"event_latency_s must be >= 0, got {self.event_latency_s}")
        if self.drop_after_events is not None and self.drop_after_events < 0:
            raise ValueError(f"drop_after_events must be >= 0, got {self.drop_after_events}")
        if self.hub_silence_intervals is not None and self.hub_silence_intervals < 1:
            raise ValueError(
                f"hub_silence_intervals must be >= 1 or None, got {self.hub_silence_intervals}"
            )
        if self.welcome_timeout_s <= 0:
            raise ValueError(f"welcome_timeout_s must be > 0, got {self.welcome_timeout_s}")


FAULTS = (
    "malformed",
    "oversized",
    "repeat_seq",
    "skip_seq",
    "flood",
    "stranger",
    "crash_loop",
    "corrupt",
)
#: What the `corrupt` fault sends instead of its first event: a well-framed gRPC message
#: whose bytes are not protobuf (a field whose declared length runs past the end).
CORRUPT_BYTES = b"\x0a\xff\xff\xff\xff\x0f"


class _CorruptMessage:
    """Stands for `CORRUPT_BYTES` in the outbox; `_FaultCodec` sends it as it is."""


class _FaultCodec(ProtoCodec):
    """grpclib's protobuf codec, which also sends `_CorruptMessage` (fault injection)."""

    def encode(self, message: object, message_type: type[object]) -> bytes:
        if isinstance(message, _CorruptMessage):
            return CORRUPT_BYTES
        return super().encode(message, message_type)  # type: ignore[arg-type]


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
        behaviour: Behaviour = Behaviour(),
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
        channel = Channel(self.host, self.port, codec=_FaultCodec())
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
        if self.behaviour.fault == "crash_loop":
            self.break_link()
        log.info("%s connected, session %s", self.spec.vin, self.session_id)

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
                await outbox.put(_Outgoing(cast(pb.VehicleMessage, _CorruptMessage())))
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


async def run_fleet(
    specs: Sequence[VehicleSpec],
    host: str,
    port: int,
    behaviour: Behaviour = Behaviour(),
    alternates: Sequence[tuple[str, int]] = (),
) -> None:
    """Run every vehicle concurrently, each on its own connection, until cancelled.

    A vehicle whose link is refused, lost or ended reconnects after a backoff
    of 0.5 s doubling to 10 s (jittered, reset after a welcomed session); one
    refused with UNAUTHENTICATED or PERMISSION_DENIED gives up. One vehicle's
    failure never stops the others. Returns when every vehicle has given up.
    """
    async with asyncio.TaskGroup() as group:
        for spec in specs:
            vehicle = SimulatedVehicle(spec, host, port, behaviour, alternates=alternates)
            group.create_task(keep_connected(vehicle), name=f"vehicle {spec.vin}")


async def keep_connected(vehicle: SimulatedVehicle) -> None:
    """Run `vehicle` session after session, with jittered backoff, until refused for good."""
    vin = vehicle.spec.vin
    delay_s = _BACKOFF_FIRST_S
    failures = 0  # in a row; only the first is a warning, so an outage logs once per vehicle
    while True:
        try:
            await vehicle.run()
            log.info("%s: session ended by the hub; reconnecting", vin)
        except LinkRefused as exc:
            if exc.status in (Status.UNAUTHENTICATED, Status.PERMISSION_DENIED):
                log.error("%s: giving up: %s (check its token in the fleet file)", vin, exc)
                return
            failures += 1
            log.log(logging.WARNING if failures == 1 else logging.INFO, "%s: %s", vin, exc)
        except SimulatorError as exc:
            failures += 1
            log.log(logging.WARNING if failures == 1 else logging.INFO, "%s: %s", vin, exc)
        except Exception:
            log.exception("%s: unexpected error; reconnecting", vin)
        if vehicle.session_id is not None:
            failures = 0
            delay_s = _BACKOFF_FIRST_S
        # Jitter spreads a fleet's reconnects after a hub restart.
        await asyncio.sleep(random.uniform(delay_s / 2, delay_s))
        delay_s = min(delay_s * 2, _BACKOFF_MAX_S)


def load_fleet(path: Path) -> list[VehicleSpec]:
    """Read `{"vehicles": [{"vin": ..., "token": ...}, ...]}`; raises FleetFileError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FleetFileError(f"fleet file {path}: cannot read it: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FleetFileError(
            f"fleet file {path}: not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        ) from exc
    vehicles = data.get("vehicles") if isinstance(data, dict) else None
    if not isinstance(vehicles, list) or not vehicles:
        raise FleetFileError(
            f'fleet file {path}: expected an object with a non-empty "vehicles" list, '
            'e.g. {"vehicles": [{"vin": "...", "token": "..."}]}'
        )
    specs: list[VehicleSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(vehicles):
        where = f"fleet file {path}: vehicles[{index}]"
        if not isinstance(entry, dict):
            raise FleetFileError(f"{where}: expected an object, got {type(entry).__name__}")
        for key in ("vin", "token"):
            value = entry.get(key)
            if not isinstance(value, str) or not value:
                raise FleetFileError(f'{where}: "{key}" must be a non-empty string, got {value!r}')
        if entry["vin"] in seen:
            # Two links for one VIN would keep replacing each other at the hub.
            raise FleetFileError(f"{where}: duplicate vin {entry['vin']!r}")
        seen.add(entry["vin"])
        specs.append(VehicleSpec(vin=entry["vin"], token=entry["token"]))
    return specs


def _hub_addresses(text: str) -> list[tuple[str, int]]:
    addresses = []
    for item in text.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise argparse.ArgumentTypeError(
                f"expected HOST:PORT[,HOST:PORT...] such as 127.0.0.1:50051, got {text!r}"
            )
        addresses.append((host.strip("[]"), int(port)))
    return addresses


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.simulator", description="Run a simulated vehicle fleet against a hub."
    )
    parser.add_argument(
        "--hub",
        type=_hub_addresses,
        required=True,
        help="hub gRPC HOST:PORT; several, comma-separated, to fail over between them",
    )
    parser.add_argument("--fleet-file", type=Path, required=True, help="JSON fleet file")
    parser.add_argument(
        "--event-latency-ms", type=float, default=0.0, help="delay before each event (ms)"
    )
    parser.add_argument("--silent", action="store_true", help="receive commands, never answer")
    parser.add_argument(
        "--drop-after-events", type=int, default=None, help="drop the link after N events"
    )
    parser.add_argument(
        "--max-connecting",
        type=int,
        default=100,
        help="vehicles of this process between connect and Welcome at once (0: no limit)",
    )
    parser.add_argument("--verbose", action="store_true", help="log at INFO instead of WARNING")
    return parser.parse_args(argv)


async def _serve(
    specs: list[VehicleSpec],
    hubs: list[tuple[str, int]],
    behaviour: Behaviour,
    max_connecting: int,
) -> None:
    """Run the fleet until SIGINT/SIGTERM; SIGUSR1 breaks every link at once (an outage).

    The vehicles are built here, not by `run_fleet`, so that the signal can
    reach them; each is kept connected by the same `keep_connected` loop, so
    a broken vehicle reconnects after the usual jittered backoff.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    handshakes = asyncio.Semaphore(max_connecting) if max_connecting > 0 else None
    (host, port), *alternates = hubs
    vehicles = [
        SimulatedVehicle(spec, host, port, behaviour, handshakes=handshakes, alternates=alternates)
        for spec in specs
    ]

    def break_all() -> None:
        log.warning("SIGUSR1: breaking the links of %d vehicles", len(vehicles))
        for vehicle in vehicles:
            vehicle.break_link()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, break_all)
    fleet = asyncio.create_task(_keep_all_connected(vehicles))
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([fleet, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Cancelling resets every stream and closes every connection.
        for task in (fleet, stopper):
            task.cancel()
        await asyncio.gather(fleet, stopper, return_exceptions=True)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
            loop.remove_signal_handler(sig)


async def _keep_all_connected(vehicles: Sequence[SimulatedVehicle]) -> None:
    # run_fleet's body, over vehicles built by the caller.
    async with asyncio.TaskGroup() as group:
        for vehicle in vehicles:
            group.create_task(keep_connected(vehicle), name=f"vehicle {vehicle.spec.vin}")


def _not_injected(record: logging.LogRecord) -> bool:
    args = record.args if isinstance(record.args, tuple) else ()
    return not any(isinstance(arg, LinkLost) and arg.injected for arg in args)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code (2 for a bad fleet file or bad arguments)."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # A SIGUSR1 outage breaks every link on purpose: one line for it, not one per vehicle.
    log.addFilter(_not_injected)
    try:
        specs = load_fleet(args.fleet_file)
    except FleetFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        behaviour = Behaviour(
            event_latency_s=args.event_latency_ms / 1000,
            silent=args.silent,
            drop_after_events=args.drop_after_events,
        )
    except ValueError as exc:
        print(f"error: {exc} (from --event-latency-ms / --drop-after-events)", file=sys.stderr)
        return 2
    log.info("starting %d vehicles against %s", len(specs), args.hub)
    asyncio.run(_serve(specs, args.hub, behaviour, args.max_connecting))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
