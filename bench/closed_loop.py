"""A closed-loop submitter: N connections, each POSTing the next command as soon as its 202 came.

    python -m bench.closed_loop --url http://127.0.0.1:8080 --username U --password P \
        --vins-file vins.json --concurrency 16 --warmup-s 2 --duration-s 10 [--start-at T]

Logs in once, opens `--concurrency` keep-alive HTTP/1.1 connections (plain
h11 over trio: a lean client, so that the generator is not what is measured),
and from `--start-at` (a Unix time) on, each connection submits ReadDTC
commands back to back, connection i to VIN i (modulo the list). Only
responses that arrive in the window of `--duration-s` after `--warmup-s` are
counted. A refusal (not 202) is followed by a 5 ms pause so that a hub saying
503 is not spun on.

Prints ONE JSON line on stdout at the end:
  concurrency, window_s, accepted (202s in the window), statuses (all
  statuses in the window by code), latencies_ms (POST to 202, in the window),
  transport_errors (by error; the connection is replaced), cpu_window_s (this
  process's CPU in the window), cpu_s (all of it), start_late_ms.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h11
import httpx
import orjson
import trio

COMMAND = {"command": "ReadDTC", "params": {"ecuAddress": "0x10"}}
#: Pause after a refusal, so that a busy hub's 503s do not become a spin loop.
REFUSED_PAUSE_S = 0.005


@dataclass
class _Tally:
    accepted: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    transport_errors: Counter[str] = field(default_factory=Counter)
    cpu_window_s: float = 0.0
    start_late_ms: float = 0.0


class Submitter:
    """One keep-alive connection submitting commands back to back."""

    def __init__(self, stream: trio.SocketStream, host: str, token: str, vin: str) -> None:
        self.stream = stream
        self.address = host
        self.conn = h11.Connection(h11.CLIENT)
        body = orjson.dumps({"vin": vin, **COMMAND})
        self.request = h11.Request(
            method="POST",
            target="/api/v1/commands",
            headers=[
                ("Host", host),
                ("Authorization", f"Bearer {token}"),
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
            ],
        )
        self.body = h11.Data(data=body)

    async def reconnect(self) -> None:
        """A new connection in place of a broken one."""
        with contextlib.suppress(OSError, trio.BrokenResourceError):
            await self.stream.aclose()
        host, _, port = self.address.rpartition(":")
        self.stream = await trio.open_tcp_stream(host, int(port))
        self.conn = h11.Connection(h11.CLIENT)

    async def submit(self) -> int:
        """POST one command; its HTTP status."""
        if self.conn.our_state is h11.MUST_CLOSE:  # the server ends connections (hypercorn:
            await self.reconnect()  # after keep_alive_max_requests): open the next one
        conn = self.conn
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        data = b"".join(
            conn.send(event) or b"" for event in (self.request, self.body, h11.EndOfMessage())
        )
        await self.stream.send_all(data)
        status = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await self.stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.EndOfMessage):
                return status
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("the hub closed the connection")


async def run(args: argparse.Namespace, vins: Sequence[str]) -> _Tally:
    """Log in, connect, submit in a closed loop over the window, return the tally."""
    url = httpx.URL(args.url)
    host, port = url.host, url.port or 80
    async with httpx.AsyncClient(base_url=args.url, timeout=30) as http:
        login = await http.post(
            "/api/v1/auth/login", json={"username": args.username, "password": args.password}
        )
        login.raise_for_status()
        token = login.json()["access_token"]
    tally = _Tally()
    submitters = []
    for index in range(args.concurrency):
        stream = await trio.open_tcp_stream(host, port)
        submitters.append(Submitter(stream, f"{host}:{port}", token, vins[index % len(vins)]))
    start_at = time.time() if args.start_at is None else args.start_at
    tally.start_late_ms = max(0.0, 1000 * (time.time() - start_at))
    await trio.sleep(max(0.0, start_at - time.time()))
    begin = time.perf_counter() + args.warmup_s
    end = begin + args.duration_s
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_measure_cpu, tally, begin, end)
        for submitter in submitters:
            nursery.start_soon(_loop, submitter, tally, begin, end)
    for submitter in submitters:
        await submitter.stream.aclose()
    return tally


async def _loop(submitter: Submitter, tally: _Tally, begin: float, end: float) -> None:
    while True:
        started = time.perf_counter()
        if started >= end:
            return
        try:
            status = await submitter.submit()
        except (OSError, h11.ProtocolError, trio.BrokenResourceError) as exc:
            tally.transport_errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
            await submitter.reconnect()  # a failure here ends the run: the hub is gone
            continue
        now = time.perf_counter()
        if begin <= now < end:
            tally.statuses[status] += 1
            if status == 202:
                tally.accepted += 1
                tally.latencies_ms.append(round((now - started) * 1000, 3))
        if status != 202:
            await trio.sleep(REFUSED_PAUSE_S)


async def _measure_cpu(tally: _Tally, begin: float, end: float) -> None:
    await trio.sleep(max(0.0, begin - time.perf_counter()))
    at_begin = time.process_time()
    await trio.sleep(max(0.0, end - time.perf_counter()))
    tally.cpu_window_s = time.process_time() - at_begin


def summary(args: argparse.Namespace, tally: _Tally) -> dict[str, Any]:
    """The one JSON document the generator prints."""
    return {
        "concurrency": args.concurrency,
        "window_s": args.duration_s,
        "accepted": tally.accepted,
        "statuses": {str(code): n for code, n in sorted(tally.statuses.items())},
        "latencies_ms": tally.latencies_ms,
        "transport_errors": dict(tally.transport_errors),
        "cpu_window_s": round(tally.cpu_window_s, 3),
        "cpu_s": round(time.process_time(), 3),
        "start_late_ms": round(tally.start_late_ms, 1),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The generator's command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.closed_loop", description=__doc__)
    parser.add_argument("--url", required=True, help="base URL of the API")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--vins-file", type=Path, required=True, help="JSON list of VINs")
    parser.add_argument("--concurrency", type=int, required=True, help="connections (N)")
    parser.add_argument("--warmup-s", type=float, default=2.0, help="not counted")
    parser.add_argument("--duration-s", type=float, required=True, help="the counted window")
    parser.add_argument("--start-at", type=float, help="Unix time to begin (after connecting)")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.duration_s <= 0 or args.warmup_s < 0:
        parser.error("--concurrency must be >= 1, --duration-s > 0, --warmup-s >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the generator; prints its summary as one JSON line."""
    args = parse_args(argv)
    vins = orjson.loads(args.vins_file.read_bytes())
    if not vins:
        raise SystemExit("the VINs file is empty")
    tally = trio.run(run, args, vins)
    sys.stdout.buffer.write(orjson.dumps(summary(args, tally)) + b"\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
