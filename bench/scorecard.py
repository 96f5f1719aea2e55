"""The issue-13 scorecard at the top of BENCHMARKS.md, from the newest run that fits each row.

Each `Row` is a row of the issue's table: which runs of which scenario it
reads (a test of their parameters: `commands` at 100/s, at 300/s and a ramp
are three rows), the figure reached, the same run's baseline where the run
has one, the target and whether it is met. The baseline of `hold` and
`reconnect` is their floor (`bench.baseline_hub` holding the same fleet);
the reached figure then carries the hub's ratio to it, as the `commands`
rows carry theirs to the no-op server. `bench/before.json` holds the
issue's "before" columns, and the per-command costs when it was filed, for
the before/after tables; the "after" costs come from the `commands` run at
100/s (run it with --profile for the CPU breakdown).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BEFORE = Path(__file__).parent / "before.json"
Run = Mapping[str, Any]  # a result document: parameters and figures
Runs = Mapping[str, list[tuple[Path, dict[str, Any]]]]  # per scenario, newest first


def _p(run: Run) -> Mapping[str, Any]:
    parameters: Mapping[str, Any] = run.get("parameters", {})
    return parameters


def _f(run: Run) -> Mapping[str, Any]:
    figures: Mapping[str, Any] = run.get("figures", {})
    return figures


def _ratio(run: Run, figure: str) -> str:
    """The ratio `figure` as ` (2.5x)` when the run has it (an older run may not), else ""."""
    value = _f(run).get(figure)
    return "" if value is None else f" ({value}x)"


def _single_node(run: Run, rate: float) -> bool:
    p = _p(run)
    return p.get("rate_per_s") == rate and p.get("ramp_to_per_s") is None and not p.get("redis")


@dataclass(frozen=True)
class Row:
    """One row: `key` (in before.json), its label, scenario, and how to read a run."""

    key: str
    label: str
    scenario: str
    fits: Callable[[Run], bool]
    reached: Callable[[Run], str]
    baseline: Callable[[Run], str]
    target: str
    met: Callable[[Run], bool]


def _connect_ms(run: Run) -> float:
    f = _f(run)
    return float(1000 * f["hub_cpu_during_connect_s"] / f["connected"])


def _connect_reached(run: Run) -> str:
    f = _f(run)
    ratio = f.get("hub_vs_floor_cpu_per_connect")
    times = f"{ratio}x; " if ratio is not None else ""
    return (
        f"{_connect_ms(run):.2f} ms ({times}{f['connected']:,} connect at"
        f" {f['connect_rate_per_s']}/s)"
    )


def _floor(cell: Callable[[Mapping[str, Any]], str]) -> Callable[[Run], str]:
    """The baseline cell of a run that measured the floor (`bench.baseline_hub`, the same
    fleet's vehicle links on pure asyncio + grpclib); "-" for one that did not
    (`--skip-floor`, or a run of an older bench)."""

    def baseline(run: Run) -> str:
        figures = _f(run)
        return cell(figures) if any(k.startswith("floor_") for k in figures) else "-"

    return baseline


def _seconds(value: float | None) -> str:
    return f"{value} s" if value is not None else "not all back"


def _node_ms(run: Run, node: str) -> float:
    f = _f(run)
    return float(1000 * f[f"hub_run_{node}_cpu_s"] / f["hub_processed"])


ROWS = [
    Row(
        "commands_cpu",
        "`commands --rate 100`: hub CPU per processed command",
        "commands",
        lambda r: _single_node(r, 100),
        lambda r: (
            f"{_f(r)['hub_cpu_ms_per_processed_command']} ms"
            f" ({_f(r)['hub_vs_noop_cpu_per_command']}x)"
        ),
        lambda r: f"no-op {_f(r)['noop_cpu_ms_per_command']} ms",
        "≤ 1.5x the no-op server (stretch 1.25x)",
        lambda r: _f(r)["hub_vs_noop_cpu_per_command"] <= 1.5,
    ),
    Row(
        "commands_latency",
        "`commands --rate 300`: latency",
        "commands",
        lambda r: _single_node(r, 300),
        lambda r: (
            f"{_f(r)['hub_achieved_rate_per_s']}/s achieved; p50"
            f" {_f(r)['hub_latency_p50_ms']} ms, p99 {_f(r)['hub_latency_p99_ms']} ms"
        ),
        lambda r: f"no-op p99 {_f(r)['noop_latency_p99_ms']} ms",
        "p99 < 100 ms at 300/s",
        lambda r: _f(r)["hub_latency_p99_ms"] < 100 and _f(r)["hub_completed_fraction"] >= 0.99,
    ),
    Row(
        "ramp",
        "ramp 50→400: highest rate with p99 < 100 ms",
        "commands",
        lambda r: _p(r).get("ramp_to_per_s") == 400 and not _p(r).get("redis"),
        lambda r: (
            f"{_f(r)['hub_highest_rate_p99_under_100ms']}/s"
            f" ({_f(r)['hub_vs_noop_highest_rate_p99_under_100ms']}x)"
        ),
        lambda r: f"no-op {_f(r)['noop_highest_rate_p99_under_100ms']}/s",
        "≥ 0.8x the no-op server's",
        lambda r: (_f(r)["hub_vs_noop_highest_rate_p99_under_100ms"] or 0) >= 0.8,
    ),
    Row(
        "baseline",
        "`baseline`: CPU per gRPC message vs pure-asyncio grpclib",
        "baseline",
        lambda r: True,
        lambda r: (
            f"{_f(r)['hub_cpu_us_per_message']} us ({_f(r)['hub_vs_baseline_cpu_per_message']}x)"
        ),
        lambda r: f"grpclib {_f(r)['baseline_cpu_us_per_message']} us",
        "≤ 1.5x",
        lambda r: _f(r)["hub_vs_baseline_cpu_per_message"] <= 1.5,
    ),
    Row(
        "fanout",
        "`fanout` to 1,000 WebSockets",
        "fanout",
        lambda r: _p(r).get("subscribers", 0) >= 1000,
        lambda r: (
            f"p99 {_f(r)['submit_to_final_event_ms_p99']} ms{_ratio(r, 'hub_vs_noop_p99')},"
            f" {_f(r)['hub_cpu_per_delivery_us']} us hub CPU per delivery"
            f"{_ratio(r, 'hub_vs_noop_cpu_per_delivery')}"
        ),
        lambda r: (
            f"no-op p99 {_f(r)['noop_submit_to_final_event_ms_p99']} ms,"
            f" {_f(r)['noop_cpu_per_delivery_us']} us per delivery"
            if "noop_submit_to_final_event_ms_p99" in _f(r)
            else "-"  # a run from before the no-op twin, or --skip-noop
        ),
        "p99 < 50 ms",
        lambda r: _f(r)["submit_to_final_event_ms_p99"] < 50,
    ),
    Row(
        "connect",
        "hub CPU per vehicle connect (`hold`)",
        "hold",
        lambda r: _p(r).get("vehicles", 0) >= 10_000 and not _p(r).get("tracemalloc"),
        _connect_reached,
        _floor(
            lambda f: (
                f"floor {f['floor_cpu_ms_per_connect']:.2f} ms ({f['floor_connect_rate_per_s']}/s)"
            )
        ),
        "≤ 1 ms",
        lambda r: _connect_ms(r) <= 1,
    ),
    Row(
        "reconnect",
        "`reconnect`",
        "reconnect",
        lambda r: _p(r).get("vehicles", 0) >= 10_000,
        lambda r: (
            f"{_p(r)['vehicles']:,} back in {_f(r)['time_until_all_registered_again_s']}"
            f" s{_ratio(r, 'hub_vs_floor_reconnect_time')}, {_f(r)['commands_lost']} commands lost"
        ),
        _floor(
            lambda f: (
                f"floor {_seconds(f['floor_time_until_all_registered_again_s'])},"
                f" {f['floor_cpu_ms_per_reconnect']:.2f} ms CPU per reconnect (hub"
                f" {1000 * f['hub_cpu_during_reconnect_s'] / f['vehicles']:.2f} ms)"
            )
        ),
        "10,000 in < 10 s, nothing lost",
        lambda r: _f(r)["time_until_all_registered_again_s"] < 10 and _f(r)["commands_lost"] == 0,
    ),
    Row(
        "hold",
        "`hold`",
        "hold",
        lambda r: _p(r).get("vehicles", 0) >= 10_000 and not _p(r).get("tracemalloc"),
        lambda r: (
            f"{_f(r)['hub_rss_per_vehicle_kib']} KiB per vehicle at {_f(r)['connected']:,}"
            f"{_ratio(r, 'hub_vs_floor_rss_per_vehicle')}; idle"
            f" {_f(r)['idle_hub_cpu_percent']} % of a core{_ratio(r, 'hub_vs_floor_idle_cpu')}"
        ),
        _floor(
            lambda f: (
                f"floor {f['floor_rss_per_vehicle_kib']} KiB per vehicle; idle"
                f" {f['floor_idle_cpu_percent']} %"
            )
        ),
        "≤ 40 KiB at 20,000; idle ≤ 15 %",
        lambda r: _f(r)["hub_rss_per_vehicle_kib"] <= 40 and _f(r)["idle_hub_cpu_percent"] <= 15,
    ),
    Row(
        "overload",
        "above capacity (`overload`)",
        "overload",
        lambda r: True,
        lambda r: (
            f"{_f(r)['offered']:,} offered: {_f(r)['admitted_rate_per_s']}/s admitted,"
            f" {_f(r)['refused_rate_per_s']}/s refused 503; admitted p99"
            f" {_f(r)['admitted_latency_p99_ms']} ms"
        ),
        lambda r: "-",
        "503 + `Retry-After` before any write; admitted p99 bounded (< 1 s)",
        lambda r: (
            _f(r)["refused_503"] > 0
            and (_f(r)["admitted_latency_p99_ms"] or 1e9) < 1000
            and _f(r).get("missing_in_database") == 0
        ),
    ),
    Row(
        "scale_out_local",
        "scale-out node, vehicle held here (`commands --redis`)",
        "commands",
        lambda r: (
            bool(_p(r).get("redis")) and not _p(r).get("routed") and _p(r)["rate_per_s"] == 100
        ),
        lambda r: (
            f"{_f(r)['hub_cpu_ms_per_processed_command']} ms, p99 {_f(r)['hub_latency_p99_ms']} ms"
        ),
        lambda r: f"no-op {_f(r).get('noop_cpu_ms_per_command', '-')} ms",
        "≤ 1.15x the single-node path (the row above at 100/s)",
        lambda r: False,  # judged against another run: see `_scale_out_verdict`
    ),
    Row(
        "scale_out_routed",
        "routed to another node (`commands --routed`)",
        "commands",
        lambda r: bool(_p(r).get("routed")) and _p(r)["rate_per_s"] == 100,
        lambda r: (
            f"{_f(r)['hub_cpu_ms_per_processed_command']} ms for both nodes (entry"
            f" {_node_ms(r, 'entry'):.2f} ms, holder {_node_ms(r, 'holder'):.2f} ms),"
            f" p99 {_f(r)['hub_latency_p99_ms']} ms"
        ),
        lambda r: f"no-op {_f(r).get('noop_cpu_ms_per_command', '-')} ms",
        "measured",
        lambda r: True,
    ),
]


def _newest(runs: Runs, row: Row) -> Run | None:
    return next((doc for _, doc in runs.get(row.scenario, []) if _fits(row, doc)), None)


def _fits(row: Row, run: Run) -> bool:
    try:
        return bool(row.fits(run))
    except (KeyError, TypeError):
        return False


def scorecard(runs: Runs) -> list[str]:
    """The scorecard's lines (markdown); `runs` per scenario, newest first."""
    before = json.loads(BEFORE.read_text())
    lines = [
        "## Issue 13: the command path against its targets",
        "",
        "Each row reads the newest run that fits it (its `run at` is in its section below);"
        ' where each missed target\'s time goes: ARCHITECTURE.md, "The targets still missed".',
        "",
        "| scenario | before (847da8b) | at filing | reached | same run's baseline | target"
        " | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    single = _newest(runs, ROWS[0])
    for row in ROWS:
        old, filed = before["rows"].get(row.key, ["-", "-"])
        run = _newest(runs, row)
        cells = ["not run", "-", "not measured"] if run is None else _cells(row, run, single)
        lines.append(f"| {row.label} | {old} | {filed} | {cells[0]} | {cells[1]} | {row.target}"
                     f" | {cells[2]} |")  # fmt: skip
    return [*lines, "", *_costs(before["costs_at_filing"], single), ""]


def _cells(row: Row, run: Run, single: Run | None) -> list[str]:
    try:
        return [row.reached(run), row.baseline(run), _verdict(row, run, single)]
    except (KeyError, TypeError, ZeroDivisionError) as exc:  # a run of an older bench
        return [f"(the run lacks {exc})", "-", "not measured"]


def _verdict(row: Row, run: Run, single: Run | None) -> str:
    if row.key == "scale_out_local":
        return _scale_out_verdict(run, single)
    if row.key == "scale_out_routed":
        return "measured"
    return "met" if row.met(run) else "**not met**"


def _scale_out_verdict(run: Run, single: Run | None) -> str:
    if single is None:
        return "not judged: no single-node run at 100/s"
    ratio = (
        _f(run)["hub_cpu_ms_per_processed_command"] / _f(single)["hub_cpu_ms_per_processed_command"]
    )
    return f"{ratio:.2f}x: " + ("met" if ratio <= 1.15 else "**not met**")


#: (label, figure in a `commands` result, key in before.json's costs_at_filing)
_COST_ROWS = [
    ("hub CPU per command (ms)", "hub_cpu_ms_per_processed_command", "hub_cpu_ms"),
    ("transactions", "cost_transactions_per_command", "transactions"),
    ("statements", "cost_statements_per_command", "statements"),
    ("round trips", None, "round_trips"),
    ("rows inserted", "cost_rows_inserted_per_command", "rows_inserted"),
    ("rows updated", "cost_rows_updated_per_command", "rows_updated"),
    ("new connections", "cost_new_connections_per_command", "new_connections"),
    ("pool checkouts", "cost_pool_checkouts_per_command", None),
    ("bridge crossings to asyncio", "cost_bridge_crossings_to_asyncio_per_command",
     "bridge_crossings"),
    ("bridge crossings to trio", "cost_bridge_crossings_to_trio_per_command", None),
    ("asyncio callbacks", None, "asyncio_callbacks"),
    ("WebSocket frames", "cost_websocket_frames_per_command", "websocket_frames"),
    ("CPU by component", "profile_percent_by_component", "cpu_by_component"),
]  # fmt: skip


def _costs(filed: Mapping[str, str], run: Run | None) -> list[str]:
    lines = [
        "### Per command: at filing and now",
        "",
        f"At filing: {filed['rate']}. Now: the `commands --rate 100` run of the row above"
        " (`bench.costs`; round trips: each statement is one, each transaction adds BEGIN and"
        " COMMIT; asyncio callbacks are not counted: asyncio's loop has no hook for it).",
        "",
        "| per command | at filing | now |",
        "| --- | --- | --- |",
    ]
    figures = _f(run) if run is not None else {}
    for label, figure, key in _COST_ROWS:
        now = figures.get(figure, "-") if figure else "-"
        if figure == "profile_percent_by_component" and isinstance(now, dict):
            now = ", ".join(f"{k} {v} %" for k, v in list(now.items())[:10])
        if label == "round trips" and "cost_statements_per_command" in figures:
            now = (
                f"≈ {figures['cost_statements_per_command']}"
                f" + 2 x {figures['cost_transactions_per_command']}"
            )
        lines.append(f"| {label} | {filed.get(key, '-') if key else '-'} | {now} |")
    return lines
