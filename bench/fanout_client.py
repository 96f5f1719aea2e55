"""One subscriber process of the `fanout` scenario: K WebSockets following the same commands.

    SOVD_BENCH_TOKEN=<access token> python -m bench.fanout_client \\
        --ws-url ws://127.0.0.1:8080/api/v1/ws --sockets 250

Every socket authenticates with the same access token (one login, done by
the scenario). Then, line by line on stdin, the scenario announces commands:

    {"id": "<command id>", "t0_ns": <time.monotonic_ns() when the scenario saw the 202>}

Every socket subscribes to `command:<id>` (from seq 0) and the process
answers on stdout, once every socket saw the command's `status` frame (or
after `--timeout-s`), with one line:

    {"type": "done", "id": ..., "final_event_ms": [...], "subscribed_ms": [...], "errors": {...}}

`final_event_ms` holds, per socket that got it, the time from `t0_ns` to the
receipt of the event marked `final`; `subscribed_ms` the time to the
`subscribed` acknowledgement. Both use CLOCK_MONOTONIC, which Linux shares
between the processes of one machine. The first stdout line is
`{"type": "ready", "sockets": K}` once every socket is authenticated; EOF on
stdin closes the sockets (each TCP stream is ours to close, see
`tests/support/websocket.py`) and ends the process.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import trio
import trio_websocket

TOKEN_ENV = "SOVD_BENCH_TOKEN"


@dataclass
class _Command:
    """One announced command being followed by every socket."""

    topic: str
    t0_ns: int
    remaining: int
    finished: trio.Event = field(default_factory=trio.Event)
    final_event_ms: list[float] = field(default_factory=list)
    subscribed_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def elapsed_ms(self, now_ns: int) -> float:
        """Milliseconds from the announcement's `t0_ns` to `now_ns`."""
        return round((now_ns - self.t0_ns) / 1e6, 3)

    def socket_done(self) -> None:
        """One socket has seen the end of the command."""
        self.remaining -= 1
        if self.remaining <= 0:
            self.finished.set()


@dataclass
class _Socket:
    ws: trio_websocket.WebSocketConnection
    following: dict[str, _Command] = field(default_factory=dict)


async def _read_frames(sock: _Socket) -> None:
    """Route every frame of one socket to the command it is about."""
    try:
        while True:
            raw = await sock.ws.get_message()
            now_ns = time.monotonic_ns()
            frame: dict[str, Any] = orjson.loads(raw)
            command = sock.following.get(frame.get("topic", ""))
            if command is None:
                continue  # a late frame of a command that timed out
            match frame.get("type"):
                case "subscribed":
                    command.subscribed_ms.append(command.elapsed_ms(now_ns))
                case "event" if frame.get("final"):
                    command.final_event_ms.append(command.elapsed_ms(now_ns))
                case "status":
                    del sock.following[command.topic]
                    command.socket_done()
                case "error":
                    command.errors[str(frame.get("code"))] += 1
                    del sock.following[command.topic]
                    command.socket_done()
    except trio_websocket.ConnectionClosed:
        return


async def _hold_socket(
    url: httpx.URL,
    token: str,
    sockets: list[_Socket],
    all_open: _Countdown,
    closing: trio.Event,
    limiter: trio.CapacityLimiter,
) -> None:
    """Open, authenticate and keep one WebSocket until `closing`; then close it and its stream."""
    async with limiter:  # a burst of connects would overflow the hub's listen backlog
        stream = await trio.open_tcp_stream(url.host, url.port or 80)
    async with stream, trio.open_nursery() as nursery:
        ws = await trio_websocket.wrap_client_stream(
            nursery, stream, url.host, url.raw_path.decode()
        )
        try:
            await ws.send_message(orjson.dumps({"type": "auth", "token": token}).decode())
            reply = orjson.loads(await ws.get_message())
            if reply.get("type") != "authenticated":
                raise RuntimeError(f"authentication refused: {reply}")
            sock = _Socket(ws)
            sockets.append(sock)
            nursery.start_soon(_read_frames, sock)
            all_open.done()
            await closing.wait()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await ws.aclose()
            nursery.cancel_scope.cancel()


class _Countdown:
    """An event set once `done()` was called `count` times."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.event = trio.Event()
        if count <= 0:
            self.event.set()

    def done(self) -> None:
        """One more finished."""
        self.count -= 1
        if self.count <= 0:
            self.event.set()


async def _follow(sockets: list[_Socket], command_id: str, t0_ns: int, timeout_s: float) -> None:
    """Subscribe every socket to one command and report when all saw its end."""
    command = _Command(f"command:{command_id}", t0_ns, len(sockets))
    subscribe = orjson.dumps({"type": "subscribe", "topic": command.topic, "from_seq": 0}).decode()
    for sock in sockets:
        sock.following[command.topic] = command
    for sock in sockets:
        await sock.ws.send_message(subscribe)
    with trio.move_on_after(timeout_s):
        await command.finished.wait()
    for sock in sockets:
        sock.following.pop(command.topic, None)  # frames after the timeout are not counted
    if command.remaining > 0:
        command.errors["timeout"] += command.remaining
    _emit(
        {
            "type": "done",
            "id": command_id,
            "final_event_ms": command.final_event_ms,
            "subscribed_ms": command.subscribed_ms,
            "errors": dict(command.errors),
        }
    )


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(message) + b"\n")
    sys.stdout.flush()


async def _lines(stream: trio.abc.ReceiveStream) -> AsyncIterator[bytes]:
    """Yield the lines of `stream` (without the newline) until EOF."""
    buffer = b""
    async for chunk in stream:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield line


async def serve(url: str, token: str, count: int, timeout_s: float, concurrency: int) -> None:
    """Open `count` sockets, follow the commands announced on stdin, close them at EOF."""
    ws_url = httpx.URL(url)
    sockets: list[_Socket] = []
    all_open = _Countdown(count)
    closing = trio.Event()
    limiter = trio.CapacityLimiter(concurrency)
    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(_hold_socket, ws_url, token, sockets, all_open, closing, limiter)
        await all_open.event.wait()
        _emit({"type": "ready", "sockets": len(sockets)})
        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        async with stdin:
            async for line in _lines(stdin):
                announcement = orjson.loads(line)
                await _follow(sockets, announcement["id"], announcement["t0_ns"], timeout_s)
        closing.set()


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; the access token comes from the environment, not the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.fanout_client", description=__doc__)
    parser.add_argument("--ws-url", required=True, help="ws://HOST:PORT/api/v1/ws")
    parser.add_argument("--sockets", type=int, required=True, help="WebSockets to open")
    parser.add_argument("--timeout-s", type=float, default=30.0, help="per command")
    parser.add_argument("--connect-concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    token = os.environ.get(TOKEN_ENV)
    if not token:
        print(f"error: set {TOKEN_ENV} to an access token", file=sys.stderr)
        return 2
    trio.run(serve, args.ws_url, token, args.sockets, args.timeout_s, args.connect_concurrency)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
