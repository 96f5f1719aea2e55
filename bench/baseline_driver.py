"""Pump heartbeats through V vehicle streams as fast as a hub echoes them (closed loop).

    python -m bench.baseline_driver --hub H:P --fleet-file F --window W --duration-s D

Each vehicle of the fleet file (`{"vehicles": [{"vin", "token"}]}`, as the
simulator's) opens its own connection and `VehicleLink.Connect` stream,
passes admission (bearer token, `Hello` -> `Welcome`), then keeps W
heartbeats outstanding: every heartbeat the hub sends back is answered with
the next one. Plain asyncio + grpclib, like a vehicle.

On stdout, one line each: `ready` (every stream admitted), `start` (after
the warm-up: the measuring window opens), `stop` (it closes), then one JSON
object `{"round_trips", "window_s", "streams", "window"}`: the round trips
completed inside the window. The caller meters the hub's CPU between `start`
and `stop`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from grpclib.client import Channel, Stream

from proto import Heartbeat, Hello, HubMessage, VehicleLinkStub, VehicleMessage


@dataclass
class _Window:
    """Shared state of the pumps: whether to count, whether to keep sending."""

    counting: bool = False
    sending: bool = True
    round_trips: int = 0


async def _admit(channel: Channel, vin: str, token: str) -> Stream[VehicleMessage, HubMessage]:
    """Open the stream and pass the hub's admission."""
    stream = VehicleLinkStub(channel).Connect.open(metadata={"authorization": f"Bearer {token}"})
    await stream.__aenter__()
    await stream.send_request()
    await stream.send_message(VehicleMessage(hello=Hello(vin=vin, agent_version="bench-driver")))
    first = await stream.recv_message()
    if first is None or first.WhichOneof("kind") != "welcome":
        await stream.__aexit__(None, None, None)  # raises the hub's refusal, if any
        raise RuntimeError(f"{vin}: the hub did not answer Hello with Welcome")
    return stream


async def _pump(stream: Stream[VehicleMessage, HubMessage], window: int, state: _Window) -> None:
    """Keep `window` heartbeats outstanding until sending stops, then drain."""
    heartbeat = VehicleMessage(heartbeat=Heartbeat(sent_at_ms=1))
    for _ in range(window):
        await stream.send_message(heartbeat)
    outstanding = window
    while outstanding:
        reply = await stream.recv_message()
        if reply is None:
            raise RuntimeError("the hub ended the stream during the run")
        if reply.WhichOneof("kind") != "heartbeat":
            continue
        if state.counting:
            state.round_trips += 1
        if state.sending:
            await stream.send_message(heartbeat)
        else:
            outstanding -= 1


async def drive(
    host: str,
    port: int,
    vehicles: Sequence[tuple[str, str]],
    window: int,
    duration_s: float,
    warmup_s: float,
) -> dict[str, float | int]:
    """Admit every vehicle, pump for warm-up + duration, end the streams; returns the counts."""
    channels = [Channel(host, port) for _ in vehicles]
    state = _Window()
    try:
        admitted = await asyncio.gather(
            *(_admit(ch, vin, token) for ch, (vin, token) in zip(channels, vehicles, strict=True))
        )
        print("ready", flush=True)
        pumps = [asyncio.create_task(_pump(stream, window, state)) for stream in admitted]
        await asyncio.sleep(warmup_s)
        print("start", flush=True)
        started = time.perf_counter()
        state.counting = True
        await asyncio.sleep(duration_s)
        state.counting = False
        elapsed = time.perf_counter() - started
        print("stop", flush=True)
        state.sending = False
        await asyncio.gather(*pumps)
        for stream in admitted:
            await stream.end()
            await stream.__aexit__(None, None, None)
    finally:
        for channel in channels:
            channel.close()
    return {
        "round_trips": state.round_trips,
        "window_s": round(elapsed, 4),
        "streams": len(vehicles),
        "window": window,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bench.baseline_driver", description=__doc__)
    parser.add_argument("--hub", required=True, help="HOST:PORT of the vehicle gateway")
    parser.add_argument("--fleet-file", type=Path, required=True)
    parser.add_argument("--window", type=int, default=4, help="heartbeats outstanding per stream")
    parser.add_argument("--duration-s", type=float, default=10.0, help="measuring window")
    parser.add_argument("--warmup-s", type=float, default=1.0, help="pumping before the window")
    args = parser.parse_args(argv)
    host, _, port = args.hub.rpartition(":")
    fleet = json.loads(args.fleet_file.read_text())["vehicles"]
    vehicles = [(v["vin"], v["token"]) for v in fleet]
    result = asyncio.run(
        drive(host, int(port), vehicles, args.window, args.duration_s, args.warmup_s)
    )
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
