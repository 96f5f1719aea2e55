"""An open-loop load generator: submit ReadDTC commands at a rate, follow each over one WebSocket.

    python -m bench.loadgen --url http://127.0.0.1:8080 --username U --password P \
        --vins-file vins.json --rate 150 --duration-s 20 [--ramp-to 300] [--timeout-s 10]

Submission i is scheduled at `start + t(i)` (start: --start-at, a Unix time,
so that several generators begin together; else once logged in), where t follows the rate (or a
linear ramp from --rate to --ramp-to over the duration), and never waits for
earlier submissions; a schedule met late counts as generator lag. Each command
is POSTed with one login's bearer token (`bench.raw_http`: httpx's own CPU
starved the hub it measured), then followed on the process's single
WebSocket (`subscribe` to `command:<id>` from seq 0 right after the 202) until
its `status` frame. Latency runs from just before the POST to that frame.

Prints ONE JSON line on stdout at the end:
  sent, completed, errors by kind: `http_<status>`, `timeout` (no status
    frame within --timeout-s of the submission, POST included),
    `ws_error_<code>`, `transport`
  latencies_ms, ids, offsets_s: per completed command (offset: when it was due)
  post_ms: POST round trips; unfinished_ids: accepted (202), never completed
  statuses: final status counts; lag_max_ms, lag_p99_ms: generator lag
  cpu_s: this process's CPU time (start-up included); cpu_load_s: from the
    first submission on; start_late_ms: how late it was for --start-at
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio
import trio_websocket

from bench.raw_http import HttpPool, HttpTransportError, request_bytes
from bench.stats import percentile

COMMAND = {"command": "ReadDTC", "params": {"ecuAddress": "0x10"}}


@dataclass
class _Pending:
    """One command waiting for its status frame."""

    done: trio.Event = field(default_factory=trio.Event)
    outcome: str = ""  # "" for a status frame, else an error kind
    status: str = ""
    at: float = 0.0


@dataclass
class _Tally:
    sent: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    lags_ms: list[float] = field(default_factory=list)
    offsets_s: list[float] = field(default_factory=list)
    post_ms: list[float] = field(default_factory=list)
    unfinished_ids: list[str] = field(default_factory=list)
    cpu_at_start: float = 0.0
    start_late_ms: float = 0.0


def schedule_offset(i: int, rate: float, ramp_to: float | None, duration_s: float) -> float:
    """Seconds after the start at which submission `i` is due (constant rate or linear ramp)."""
    if ramp_to is None or ramp_to == rate:
        return i / rate
    slope = (ramp_to - rate) / duration_s  # rate(t) = rate + slope * t; count(t) = its integral
    a = slope / 2
    return (-rate + math.sqrt(rate * rate + 4 * a * i)) / (2 * a)


def planned_count(rate: float, ramp_to: float | None, duration_s: float) -> int:
    """How many submissions the schedule holds."""
    end = rate if ramp_to is None else ramp_to
    return int(duration_s * (rate + end) / 2)


class LoadGenerator:
    """Submits and follows commands against one API endpoint."""

    def __init__(self, args: argparse.Namespace, vins: Sequence[str]) -> None:
        self.args = args
        self.vins = vins
        self.tally = _Tally()
        self.pending: dict[str, _Pending] = {}
        self.ws: trio_websocket.WebSocketConnection | None = None
        self.ws_broken = False

    async def run(self) -> _Tally:
        """Log in, open the WebSocket, run the schedule, wait for stragglers."""
        url = httpx.URL(self.args.url)
        size = self.args.connections or max(
            16, min(256, int(max(self.args.rate, self.args.ramp_to or 0) / 10))
        )
        async with httpx.AsyncClient(base_url=self.args.url, timeout=30) as http:
            login = await http.post(
                "/api/v1/auth/login",
                json={"username": self.args.username, "password": self.args.password},
            )
            login.raise_for_status()
        token = login.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        pool = HttpPool(url.host, url.port or 80, size)
        stream = await trio.open_tcp_stream(url.host, url.port or 80)
        async with stream, trio.open_nursery() as ws_nursery:
            self.ws = await trio_websocket.wrap_client_stream(
                ws_nursery, stream, url.host, "/api/v1/ws",
                message_queue_size=4096, receive_buffer_size=65536,
            )  # fmt: skip
            await self.ws.send_message(orjson.dumps({"type": "auth", "token": token}).decode())
            reply = orjson.loads(await self.ws.get_message())
            if reply.get("type") != "authenticated":
                raise RuntimeError(f"WebSocket authentication refused: {reply}")
            ws_nursery.start_soon(self._read_frames)
            if self.args.start_at is not None:
                self.tally.start_late_ms = max(0.0, 1000 * (time.time() - self.args.start_at))
                await trio.sleep(max(0.0, self.args.start_at - time.time()))
            async with trio.open_nursery() as commands:
                await self._schedule(commands, pool, f"{url.host}:{url.port}", headers)
            await pool.aclose()
            await self.ws.aclose()
            ws_nursery.cancel_scope.cancel()
        return self.tally

    async def _schedule(
        self, nursery: trio.Nursery, pool: HttpPool, host: str, headers: dict[str, str]
    ) -> None:
        args = self.args
        total = planned_count(args.rate, args.ramp_to, args.duration_s)
        self.tally.cpu_at_start = time.process_time()
        start = trio.current_time()
        lags = self.tally.lags_ms
        for i in range(total):
            due = start + schedule_offset(i, args.rate, args.ramp_to, args.duration_s)
            now = trio.current_time()
            if now < due:
                await trio.sleep_until(due)
                now = trio.current_time()
            lags.append((now - due) * 1000)
            body = orjson.dumps({"vin": self.vins[i % len(self.vins)], **COMMAND})
            raw = request_bytes("POST", host, "/api/v1/commands", headers, body)
            nursery.start_soon(self._one_command, pool, raw, due - start)

    async def _one_command(self, pool: HttpPool, raw: bytes, offset_s: float) -> None:
        tally = self.tally
        tally.sent += 1
        started = time.perf_counter()
        waiting = _Pending()
        command_id = ""
        with trio.move_on_after(self.args.timeout_s):  # the whole command, POST included
            try:
                status, content = await pool.request(raw)
            except HttpTransportError:
                tally.errors["transport"] += 1
                return
            tally.post_ms.append(round((time.perf_counter() - started) * 1000, 3))
            if status != 202:
                tally.errors[f"http_{status}"] += 1
                return
            command_id = orjson.loads(content)["id"]
            topic = f"command:{command_id}"
            self.pending[topic] = waiting
            try:
                if self.ws_broken:
                    raise trio_websocket.ConnectionClosed(None)
                await self.ws_send(
                    orjson.dumps({"type": "subscribe", "topic": topic, "from_seq": 0}).decode()
                )
                await waiting.done.wait()
            except trio_websocket.ConnectionClosed:
                waiting.outcome = "transport"
            finally:
                self.pending.pop(topic, None)
        if not waiting.done.is_set() or waiting.outcome:
            tally.errors[waiting.outcome or "timeout"] += 1
            if command_id:
                tally.unfinished_ids.append(command_id)
        else:
            tally.offsets_s.append(round(offset_s, 3))
            tally.latencies_ms.append((waiting.at - started) * 1000)
            tally.ids.append(command_id)
            tally.statuses[waiting.status] += 1

    async def ws_send(self, text: str) -> None:
        """Send one frame on the WebSocket."""
        assert self.ws is not None
        await self.ws.send_message(text)

    async def _read_frames(self) -> None:
        assert self.ws is not None
        pending = self.pending
        try:
            while True:
                frame: dict[str, Any] = orjson.loads(await self.ws.get_message())
                kind = frame.get("type")
                if kind == "status":
                    waiting = pending.get(frame["topic"])
                    if waiting is not None:
                        waiting.at = time.perf_counter()
                        waiting.status = str(frame.get("status"))
                        waiting.done.set()
                elif kind == "error":
                    waiting = pending.get(str(frame.get("topic")))
                    if waiting is not None:
                        waiting.outcome = f"ws_error_{frame.get('code')}"
                        waiting.done.set()
        except trio_websocket.ConnectionClosed:
            self.ws_broken = True
            for waiting in list(pending.values()):
                waiting.outcome = "transport"
                waiting.done.set()


def summary(tally: _Tally) -> dict[str, Any]:
    """The one JSON document the generator prints."""
    return {
        "sent": tally.sent,
        "completed": len(tally.latencies_ms),
        "errors": dict(tally.errors),
        "statuses": dict(tally.statuses),
        "latencies_ms": [round(v, 3) for v in tally.latencies_ms],
        "ids": tally.ids,
        "offsets_s": tally.offsets_s,
        "post_ms": tally.post_ms,
        "unfinished_ids": tally.unfinished_ids,
        "lag_max_ms": round(max(tally.lags_ms, default=0.0), 3),
        "lag_p99_ms": round(percentile(tally.lags_ms, 99), 3) if tally.lags_ms else 0.0,
        "cpu_s": round(time.process_time(), 3),
        "cpu_load_s": round(time.process_time() - tally.cpu_at_start, 3),
        "start_late_ms": round(tally.start_late_ms, 1),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The generator's command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("--url", required=True, help="base URL of the API")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--vins-file", type=Path, required=True, help="JSON list of VINs")
    parser.add_argument("--rate", type=float, required=True, help="submissions per second")
    parser.add_argument("--ramp-to", type=float, help="rate at the end of a linear ramp")
    parser.add_argument("--duration-s", type=float, required=True)
    parser.add_argument("--timeout-s", type=float, default=10.0, help="wait for a status frame")
    parser.add_argument(
        "--connections", type=int, help="HTTP connections at most (default: rate / 10, 16-256)"
    )
    parser.add_argument(
        "--start-at", type=float, help="Unix time of the first submission (after login and auth)"
    )
    args = parser.parse_args(argv)
    if args.rate <= 0 or (args.ramp_to is not None and args.ramp_to <= 0):
        parser.error("rates must be > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the generator; prints its summary as one JSON line."""
    args = parse_args(argv)
    vins = orjson.loads(args.vins_file.read_bytes())
    if not vins:
        raise SystemExit("the VINs file is empty")
    tally = trio.run(LoadGenerator(args, vins).run)
    sys.stdout.buffer.write(orjson.dumps(summary(tally)) + b"\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
