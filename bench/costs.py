"""What a command costs beyond CPU: the work counted by the hub and by PostgreSQL.

`snapshot` reads the hub's `/metrics` counters (database transactions,
statements, pool checkouts, new connections, bridge crossings, WebSocket
frames) and, on PostgreSQL, the database's own `pg_stat_database` row
(rows inserted and updated, commits); `per_command` divides the difference
of two snapshots by the commands processed in between. Round trips are not
counted by either: each statement is at least one, and each transaction adds
its BEGIN and COMMIT. Asyncio callbacks are not counted (asyncio's loop has no
hook for it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from hub import run_asyncio

#: /metrics sample -> the name of the figure (per command).
_HUB_COUNTERS = {
    "sovd_hub_db_transactions_total": "transactions",
    "sovd_hub_db_statements_total": "statements",
    "sovd_hub_db_checkouts_total": "pool_checkouts",
    "sovd_hub_db_connections_opened_total": "new_connections",
    "sovd_hub_websocket_frames_sent_total": "websocket_frames",
}
_POSTGRES = "SELECT tup_inserted, tup_updated, xact_commit FROM pg_stat_database WHERE datname = $1"


async def snapshot(hubs: Sequence[httpx.AsyncClient], database_url: str) -> dict[str, float]:
    """The work counters of the `hubs` now, summed (and the database's, on PostgreSQL)."""
    counts: dict[str, float] = {}
    for http in hubs:
        text = (await http.get("/metrics")).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                name = _HUB_COUNTERS.get(sample.name)
                if sample.name == "sovd_hub_bridge_crossings_total":
                    name = f"bridge_crossings_to_{sample.labels['to']}"
                if name is not None:
                    counts[name] = counts.get(name, 0.0) + sample.value
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        counts.update(await run_asyncio(_postgres_counts, url))
    return counts


async def _postgres_counts(url: Any) -> dict[str, float]:
    # The statistics collector reports with a delay: ask for a fresh view.
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        row = await conn.fetchrow(_POSTGRES, url.database)
    finally:
        await conn.close()
    assert row is not None
    return {
        "rows_inserted": row["tup_inserted"],
        "rows_updated": row["tup_updated"],
        "postgres_commits": row["xact_commit"],
    }


def per_command(
    before: dict[str, float], after: dict[str, float], commands: int
) -> dict[str, float]:
    """Each counter's growth between the snapshots, per command (`cost_<name>_per_command`)."""
    if commands == 0:
        return {}
    return {
        f"cost_{name}_per_command": round((after[name] - before.get(name, 0.0)) / commands, 2)
        for name in after
    }
