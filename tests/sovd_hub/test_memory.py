"""The hub's allocation summary names the line of ours that allocated, and bench turns two
summaries into KiB per vehicle."""

from __future__ import annotations

import tracemalloc

from bench.diagnosis import per_vehicle_owners
from sovd_hub.memory import summarise


def test_a_summary_counts_what_is_allocated_by_owner() -> None:
    tracemalloc.start(16)
    try:
        kept = [bytearray(1000) for _ in range(100)]  # allocated here: this test's own line
        summary = summarise(tracemalloc.take_snapshot())
    finally:
        tracemalloc.stop()
    assert len(kept) == 100
    owners = {o["where"]: o for o in summary["owners"]}
    mine = [o for where, o in owners.items() if where.startswith("sovd_hub/test_memory.py:")]
    assert mine and mine[0]["bytes"] >= 100 * 1000
    assert summary["bytes"] >= mine[0]["bytes"]


def test_per_vehicle_growth_is_by_owner_biggest_first() -> None:
    empty = {"bytes": 1000, "owners": [{"where": "hub/a.py:1", "bytes": 1000}]}
    full = {
        "bytes": 1000 + 2048 * 10 + 1024 * 10,
        "owners": [
            {"where": "hub/a.py:1", "bytes": 1000 + 1024 * 10},
            {"where": "hub/b.py:2", "bytes": 2048 * 10},
        ],
    }
    figures = per_vehicle_owners(empty, full, vehicles=10)
    assert figures["traced_kib_per_vehicle"] == 3.0
    assert list(figures["traced_kib_per_vehicle_by_owner"].items()) == [
        ("hub/b.py:2", 2.0),
        ("hub/a.py:1", 1.0),
    ]
