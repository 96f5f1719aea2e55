"""Prometheus metrics of one node, served at `/metrics` (text format; OpenMetrics on request).

Every app has its own `CollectorRegistry`, so several nodes in one process
(the tests) do not collide. What is measured, and where:

- HTTP: `sovd_hub_http_request_duration_seconds{route,method,status}`, by the
  URL rule (`/api/v1/commands/<uuid:command_id>`), never the raw path, so a
  scan of random URLs cannot grow the series (unmatched paths are `unmatched`).
- Commands: `sovd_hub_commands_submitted_total{command}`,
  `sovd_hub_commands_finished_total{command,status}` and the round trip
  `sovd_hub_command_duration_seconds{command,status}` (submitted -> final
  status), all fed by the hub's group-commit journal (`JournalObserver`), so
  they count what is committed. A command submitted before this process
  started is counted with `command="unknown"` and no duration.
- Journal: `sovd_hub_journal_batch_records` (record calls per transaction)
  and `sovd_hub_journal_commit_seconds`; through a database outage
  `sovd_hub_journal_unavailable` (1 while the journal cannot write),
  `sovd_hub_journal_buffered_records` (records of running commands held) and
  `sovd_hub_journal_records_lost_total` (dropped: the buffer was full).
- Sampled at scrape time (cheap, no hot-path cost): connected vehicles,
  messages waiting in the actors' mailboxes (sum and max), the commands held
  open (`sovd_hub_open_commands`) and those refused for it
  (`sovd_hub_commands_refused_overloaded_total`), plus the
  process's CPU, memory and open files (`process_*`).
- Load shedding (`api.shedding`): `sovd_hub_http_requests_in_flight` and
  `sovd_hub_http_requests_shed_total` (answered 503 beyond
  `max_concurrent_requests`).
- `sovd_hub_websocket_connections`: operator WebSockets open now;
  `sovd_hub_websocket_frames_sent_total`: frames sent to them.
- The work behind it all, read at scrape time: database transactions,
  statements, pool checkouts and new connections (`sovd_hub_db_*_total`,
  from `Database.statistics()`) and trio/asyncio bridge crossings
  (`sovd_hub_bridge_crossings_total{to}`). `python -m bench commands`
  divides them by the commands it ran (BENCHMARKS.md, "per command").
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from quart import Response, current_app, request
from quart_schema import hide

from api.shedding import RequestShedding
from hub import Command, Hub, StatusChange, crossings
from storage import Database

_KEY = "sovd_hub_metrics"

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
COMMAND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 3600.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0)
#: Commands remembered (name, submission time) until they end; past this the oldest are dropped.
MAX_TRACKED_COMMANDS = 100_000
#: Methods counted under their own name; any other is `other` (clients choose methods freely).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """The node's metrics; also the hub journal's `JournalObserver`."""

    def __init__(self, hub: Hub, db: Database, shedding: RequestShedding) -> None:
        self.hub = hub
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_duration = Histogram(
            "sovd_hub_http_request_duration_seconds",
            "Time to answer an HTTP request, by URL rule, method and status.",
            ("route", "method", "status"),
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.submitted = Counter(
            "sovd_hub_commands_submitted",
            "Commands accepted and recorded, by catalog command.",
            ("command",),
            registry=r,
        )
        self.finished = Counter(
            "sovd_hub_commands_finished",
            "Commands that reached a final status, by command and status.",
            ("command", "status"),
            registry=r,
        )
        self.command_duration = Histogram(
            "sovd_hub_command_duration_seconds",
            "From submission to final status, by command and status.",
            ("command", "status"),
            buckets=COMMAND_BUCKETS,
            registry=r,
        )
        self.batch_records = Histogram(
            "sovd_hub_journal_batch_records",
            "Record calls committed together in one journal transaction.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.commit_seconds = Histogram(
            "sovd_hub_journal_commit_seconds",
            "Time to commit one journal batch.",
            buckets=COMMIT_BUCKETS,
            registry=r,
        )
        self.lost_records = Counter(
            "sovd_hub_journal_records_lost",
            "Events and status changes dropped during a database outage (the buffer was full).",
            registry=r,
        )
        self.websockets = Gauge(
            "sovd_hub_websocket_connections", "Operator WebSockets open now.", registry=r
        )
        self.websocket_frames = Counter(
            "sovd_hub_websocket_frames_sent", "Frames sent to operator WebSockets.", registry=r
        )
        r.register(_HubCollector(hub))
        r.register(_WorkCollector(db))
        r.register(_JournalCollector(hub))
        r.register(_SheddingCollector(shedding))
        ProcessCollector(registry=r)
        self._http: dict[tuple[str, str, int], Histogram] = {}
        self._tracked: dict[uuid.UUID, Command] = {}

    def observe_request(self, rule: str | None, method: str, status: int, seconds: float) -> None:
        """Count one answered HTTP request (`rule` None: no route matched)."""
        key = (rule or "unmatched", method if method in _METHODS else "other", status)
        child = self._http.get(key)
        if child is None:
            child = self._http[key] = self.http_duration.labels(key[0], key[1], str(status))
        child.observe(seconds)

    def batch_committed(self, records: int, seconds: float) -> None:
        """(JournalObserver) One journal transaction of `records` calls took `seconds`."""
        self.batch_records.observe(records)
        self.commit_seconds.observe(seconds)

    def recorded(self, commands: Sequence[Command], changes: Sequence[StatusChange]) -> None:
        """(JournalObserver) Count new commands and final statuses, now committed."""
        for command in commands:
            self.submitted.labels(command.name).inc()
            self._tracked[command.id] = command
            if len(self._tracked) > MAX_TRACKED_COMMANDS:
                del self._tracked[next(iter(self._tracked))]
        for change in changes:
            if not change.status.is_final:
                continue
            status = change.status.value
            tracked = self._tracked.pop(change.command_id, None)
            if tracked is None:
                self.finished.labels("unknown", status).inc()
                continue
            self.finished.labels(tracked.name, status).inc()
            seconds = (change.at - tracked.submitted_at).total_seconds()
            self.command_duration.labels(tracked.name, status).observe(max(seconds, 0.0))

    def records_lost(self, records: int) -> None:
        """(JournalObserver) `records` were dropped: the outage buffer was full."""
        self.lost_records.inc(records)

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition (Prometheus text, or OpenMetrics when `accept` asks) and its type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


class _HubCollector(Collector):
    """Gauges read from the hub at scrape time: nothing on the hot path."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def describe(self) -> Iterator[Metric]:
        """Names and types only: registering the collector reads nothing."""
        for name in (
            "sovd_hub_connected_vehicles",
            "sovd_hub_mailbox_messages",
            "sovd_hub_mailbox_messages_max",
            "sovd_hub_open_commands",
        ):
            yield GaugeMetricFamily(name, "")
        yield CounterMetricFamily("sovd_hub_commands_refused_overloaded", "")

    def collect(self) -> Iterator[Metric]:
        depths = self._hub.mailbox_depths()
        yield GaugeMetricFamily(
            "sovd_hub_connected_vehicles", "Vehicles with a live link to this node.", len(depths)
        )
        yield GaugeMetricFamily(
            "sovd_hub_mailbox_messages",
            "Messages waiting in the vehicle actors' mailboxes, summed over the actors.",
            sum(depths),
        )
        yield GaugeMetricFamily(
            "sovd_hub_mailbox_messages_max",
            "Messages waiting in the fullest vehicle actor's mailbox.",
            max(depths, default=0),
        )
        yield GaugeMetricFamily(
            "sovd_hub_open_commands",
            "Commands this node's actors hold unfinished (admission control, max_open_commands).",
            len(self._hub.open_commands),
        )
        yield CounterMetricFamily(
            "sovd_hub_commands_refused_overloaded",
            "New commands refused 503 overloaded (max_open_commands, per user or in all).",
            self._hub.open_commands.refused,
        )


_JOURNAL_GAUGES = {
    "sovd_hub_journal_unavailable": "1 while the journal cannot write (a database outage), else 0.",
    "sovd_hub_journal_buffered_records": (
        "Records of running commands held through a database outage, not yet written."
    ),
}


class _JournalCollector(Collector):
    """The journal's outage state, read at scrape time."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def describe(self) -> Iterator[Metric]:
        """Names and types only: registering the collector reads nothing."""
        for name, documentation in _JOURNAL_GAUGES.items():
            yield GaugeMetricFamily(name, documentation)

    def collect(self) -> Iterator[Metric]:
        journal = self._hub.journal
        values = {
            "sovd_hub_journal_unavailable": 0 if journal.outage is None else 1,
            "sovd_hub_journal_buffered_records": journal.buffered_records,
        }
        for name, documentation in _JOURNAL_GAUGES.items():
            yield GaugeMetricFamily(name, documentation, values[name])


_DB_COUNTERS = {
    "transactions": "Database transactions begun by this node.",
    "statements": "Database statements sent by this node (an executemany counts once).",
    "checkouts": "Connections taken from this node's database pool.",
    "connections_opened": "New connections this node opened to the database.",
}


class _WorkCollector(Collector):
    """The database pool's and the bridge's counts, read at scrape time."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def describe(self) -> Iterator[Metric]:
        """Names and types only: registering the collector reads nothing."""
        for name, documentation in _DB_COUNTERS.items():
            yield CounterMetricFamily(f"sovd_hub_db_{name}", documentation)
        yield CounterMetricFamily("sovd_hub_bridge_crossings", "", labels=("to",))

    def collect(self) -> Iterator[Metric]:
        stats = self._db.statistics()
        for name, documentation in _DB_COUNTERS.items():
            yield CounterMetricFamily(f"sovd_hub_db_{name}", documentation, getattr(stats, name))
        bridge = crossings()
        family = CounterMetricFamily(
            "sovd_hub_bridge_crossings",
            "trio -> asyncio and asyncio -> trio crossings of this process.",
            labels=("to",),
        )
        family.add_metric(["asyncio"], bridge.to_asyncio)
        family.add_metric(["trio"], bridge.to_trio)
        yield family


class _SheddingCollector(Collector):
    """The HTTP requests in flight and those shed beyond `max_concurrent_requests`."""

    def __init__(self, shedding: RequestShedding) -> None:
        self._shedding = shedding

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("sovd_hub_http_requests_in_flight", "")
        yield CounterMetricFamily("sovd_hub_http_requests_shed", "")

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "sovd_hub_http_requests_in_flight",
            "HTTP requests being answered now (max_concurrent_requests bounds them).",
            self._shedding.in_flight,
        )
        yield CounterMetricFamily(
            "sovd_hub_http_requests_shed",
            "HTTP requests answered 503 overloaded because max_concurrent_requests were in flight.",
            self._shedding.shed,
        )


def attach_metrics(extensions: dict[str, object], value: Metrics) -> None:
    """Store `value` where `metrics()` finds it."""
    extensions[_KEY] = value


def metrics() -> Metrics:
    """The `Metrics` of the running app."""
    value = current_app.extensions[_KEY]
    assert isinstance(value, Metrics)
    return value


@hide
async def serve_metrics() -> Response:
    """Prometheus metrics of this node (not in the OpenAPI document)."""
    body, content_type = metrics().render(request.headers.get("Accept"))
    return Response(body, content_type=content_type)
