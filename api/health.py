"""Health: `/health/live` (the process answers) and `/health/ready` (it can take commands).

`/health/ready` runs every check of `READY_CHECKS` at once, each bounded by
`READY_CHECK_TIMEOUT_S`, and answers 200 when all pass, else 503 naming the
failing part: `{"status": "unavailable", "checks": {"database": "...",
"gateway": "ok"}}`. A check returns None when it does not apply (Redis
not configured) and is then left out. Adding a check is one entry there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict

import trio
from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint
from quart_schema import validate_response

from api.errors import EdgeError
from api.state import AppState, state
from storage import DatabaseUnavailable, KeyValueError

health = Blueprint("health", __name__)

#: The longest one readiness check may take before it counts as failed.
READY_CHECK_TIMEOUT_S = 2.0

#: A readiness check: "ok", None when it does not apply, or raises `NotReady`.
ReadyCheck = Callable[[AppState], Awaitable[str | None]]


class NotReady(EdgeError):
    """A part the node needs does not answer; the message says which and why."""


class Live(BaseModel):
    """The process answers; the hub's counters (no database query)."""

    model_config = ConfigDict(extra="allow")  # whatever else `Hub.statistics()` reports

    status: str = Field(description="always ok")
    connected_vehicles: int
    journal_records: int
    journal_batches: int


class Ready(BaseModel):
    """Whether the node can take commands, and each part it needs."""

    model_config = ConfigDict(extra="allow")  # whatever else `Hub.statistics()` reports

    status: str = Field(description="ok, or unavailable when a check failed")
    checks: dict[str, str] = Field(description="each part: ok, or why it is not")
    connected_vehicles: int
    journal_records: int
    journal_batches: int


async def _database(s: AppState) -> str | None:
    """The database answers, and the journal is not in an outage nor writing its backlog."""
    outage = s.hub.journal.outage
    if outage is not None:  # known without a query: the journal's last write failed
        raise NotReady(outage.describe())
    try:
        await s.db.ping()
    except DatabaseUnavailable as exc:
        raise NotReady(str(exc)) from None
    if buffered := s.hub.journal.buffered_records:
        raise NotReady(
            f"the database answers again; {buffered} records held during its outage are "
            "still being written"
        )
    return "ok"


async def _gateway(s: AppState) -> str | None:
    """The vehicle gateway accepts TCP connections on its port."""
    host = s.hub_config.grpc_host
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    try:
        stream = await trio.open_tcp_stream(host, s.hub.grpc_port)
    except OSError as exc:
        raise NotReady(
            f"the vehicle gateway does not accept connections on {host}:{s.hub.grpc_port}: "
            f"{exc.strerror or exc}"
        ) from None
    await stream.aclose()
    return "ok"


async def _redis(s: AppState) -> str | None:
    if s.keyvalue is None:  # not configured: this node runs alone
        return None
    try:
        await s.keyvalue.ping()
    except KeyValueError as exc:  # configured: nodes share it, so not answering is not ready
        raise NotReady(str(exc)) from None
    return "ok"


READY_CHECKS: dict[str, ReadyCheck] = {
    "database": _database,
    "gateway": _gateway,
    "redis": _redis,
}


@health.get("/health/live")
@validate_response(Live)
async def live() -> Live:
    """The process is up; with the hub's counters (no database query)."""
    return Live(status="ok", **asdict(state().hub.statistics()))


@health.get("/health/ready")
@validate_response(Ready, 200)
@validate_response(Ready, 503)
async def ready() -> tuple[Ready, int]:
    """Ready to take commands: the database, the vehicle gateway (and Redis, if set) answer."""
    s = state()
    results: dict[str, str | None] = {}

    async def run(name: str, check: ReadyCheck) -> None:
        with trio.move_on_after(READY_CHECK_TIMEOUT_S):
            try:
                results[name] = await check(s)
            except NotReady as exc:
                results[name] = str(exc)
            return
        results[name] = f"no answer within {READY_CHECK_TIMEOUT_S:g} s"

    async with trio.open_nursery() as nursery:
        for name, check in READY_CHECKS.items():
            nursery.start_soon(run, name, check)
    checks = {name: result for name in READY_CHECKS if (result := results[name]) is not None}
    healthy = all(result == "ok" for result in checks.values())
    body = Ready(
        status="ok" if healthy else "unavailable", checks=checks, **asdict(s.hub.statistics())
    )
    return body, 200 if healthy else 503
