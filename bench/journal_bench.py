"""The journal alone: N trio tasks recording new commands through `CommandStore.record`.

Three ways to commit, measured one after the other on the same database:

    group                 `GroupCommitJournal` as the hub configures it by default
    per_call              `GroupCommitJournal(max_batch_records=1)`: one transaction per
                          call, one at a time (what `journal_max_batch_records = 1` does)
    per_call_concurrent   each task calls `CommandStore.record` itself: one transaction per
                          call, up to the pool's size at once (a hub without a writer task)

No HTTP, no actors: this isolates what batching saves in the database and its
driver. Runs in the bench process (it needs the asyncio loop hosting
trio in `bench.__main__`).
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import trio

from bench.procstat import CpuMeter
from bench.stack import BENCH_USER, bench_vin
from bench.stats import percentile
from hub import Command, GroupCommitJournal, HubConfig, SovdRequest
from storage import open_database

VARIANTS = ("group", "per_call", "per_call_concurrent")
POOL_SIZE = 10

_Record = Callable[[list[Command]], Awaitable[object]]


def _command() -> Command:
    now = datetime.now(UTC)
    return Command(
        id=uuid.uuid4(),
        vin=bench_vin(1),
        name="ReadDTC",
        params={"ecuAddress": "0x10"},
        sovd=SovdRequest("GET", "/components/ecu-0x10/faults"),
        timeout_s=30.0,
        submitted_by=BENCH_USER,
        submitted_at=now,
    )


async def measure_journal(url: str, tasks: int, duration_s: float) -> dict[str, Any]:
    """Records per second, latency and CPU of each variant; `url` has the bench user and VIN 1."""
    defaults = HubConfig()
    figures: dict[str, Any] = {}
    async with open_database(url, pool_size=POOL_SIZE) as db:
        for variant in VARIANTS:
            async with trio.open_nursery() as nursery:
                if variant == "per_call_concurrent":
                    record: _Record = functools.partial(db.commands.record, (), ())
                else:
                    journal = GroupCommitJournal(
                        db.commands,
                        max_batch_records=1
                        if variant == "per_call"
                        else defaults.journal_max_batch_records,
                        max_wait_s=defaults.journal_max_wait_ms / 1000,
                    )
                    await nursery.start(journal.run)
                    record = functools.partial(journal.record, (), ())
                figures[f"storage_{variant}"] = await _drive(record, tasks, duration_s)
                nursery.cancel_scope.cancel()
    group, single = (figures[f"storage_{v}"]["records_per_s"] for v in ("group", "per_call"))
    concurrent = figures["storage_per_call_concurrent"]["records_per_s"]
    figures["storage_group_vs_per_call"] = round(group / single, 2) if single else None
    figures["storage_group_vs_per_call_concurrent"] = (
        round(group / concurrent, 2) if concurrent else None
    )
    return figures


async def _drive(record: _Record, tasks: int, duration_s: float) -> dict[str, Any]:
    latencies: list[float] = []
    postgres = CpuMeter("postgres", by_name="postgres")
    deadline = trio.current_time() + duration_s

    async def loop() -> None:
        while trio.current_time() < deadline:
            started = time.perf_counter()
            await record([_command()])
            latencies.append((time.perf_counter() - started) * 1000)

    postgres.start()
    cpu, started = time.process_time(), time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(tasks):
            nursery.start_soon(loop)
    wall_s = time.perf_counter() - started
    return {
        "records": len(latencies),
        "records_per_s": round(len(latencies) / wall_s, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "bench_process_cpu_pct": round(100 * (time.process_time() - cpu) / wall_s, 1),
        "postgres_cpu_pct": round(100 * postgres.stop() / wall_s, 1),
    }
