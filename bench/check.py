"""`python -m bench check`: the short runs, each figure compared with `bench/baseline.json`.

Every guarded figure is a ratio to something measured in the same run, since
absolute timings drift on a shared machine: the commands path against its
no-op twin, the hub's gRPC cost against a pure-asyncio grpclib hub, and the
CPU of fan-out, connects and reconnects against that grpclib hub's CPU per
message (`baseline_cpu_us_per_message`, the machine's speed today). Memory
per vehicle is compared as it is. A figure more than `TOLERANCE` worse than
the baseline fails the check (exit 1); `--record` makes this run the baseline.
`fanout` also runs its no-op phase (about 6 s), and `hold` and `reconnect`
their floor (`bench.baseline_hub` holding the same fleet, about 25 s in all),
each after the hub's: no guard reads them, but they leave the hub's figures
as they were and the results (kept with `--results-dir`) then have the
`noop_*` and `floor_*` figures beside them.

It is a command for people and for closing notes, not a test: it takes
about five minutes and wants a quiet machine (see `top`'s `st`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import environment

BASELINE_FILE = Path(__file__).parent / "baseline.json"
#: How much worse than the baseline a figure may be before the check fails.
TOLERANCE = 0.20
#: What each scenario runs with in the check, in this order (baseline first: the others
#: are divided by its grpclib cost per message).
ARGUMENTS: Mapping[str, list[str]] = {
    "baseline": ["--streams", "50", "--window", "4", "--duration-s", "5"],
    "commands": ["--vehicles", "20", "--rate", "100", "--duration-s", "15"],
    "fanout": ["--subscribers", "200", "--commands", "10"],
    "hold": ["--vehicles", "2000", "--idle-s", "5"],
    "reconnect": ["--vehicles", "2000"],
}

Figures = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Guard:
    """One guarded figure: its name, what it says, and how to compute it from the runs."""

    name: str
    what: str
    value: Callable[[Figures], float]

    def verdict(self, baseline: float, now: float) -> tuple[float, bool]:
        """The change from `baseline` (+0.25: 25 % worse; every figure is better lower) and
        whether it is within tolerance."""
        worse = (now - baseline) / baseline
        return worse, worse <= TOLERANCE


def _per_message(runs: Figures, cpu_us: float) -> float:
    return cpu_us / float(runs["baseline"]["baseline_cpu_us_per_message"])


def _fanout(runs: Figures) -> float:
    return _per_message(runs, runs["fanout"]["hub_cpu_per_delivery_us"])


def _connect(runs: Figures) -> float:
    hold = runs["hold"]
    return _per_message(runs, hold["hub_cpu_during_connect_s"] * 1e6 / hold["connected"])


def _reconnect(runs: Figures) -> float:
    again = runs["reconnect"]
    cpu_us = again["hub_cpu_during_reconnect_s"] * 1e6 / again["vehicles"]
    return _per_message(runs, cpu_us)


GUARDS = (
    Guard(
        "commands_cpu_vs_noop",
        "hub CPU per command / the no-op server's",
        lambda r: r["commands"]["hub_vs_noop_cpu_per_command"],
    ),
    Guard(
        "commands_p99_vs_noop",
        "command p99 latency / the no-op server's",
        lambda r: r["commands"]["hub_vs_noop_p99"],
    ),
    Guard(
        "grpc_cpu_vs_grpclib",
        "hub CPU per vehicle message / a pure-asyncio grpclib hub's",
        lambda r: r["baseline"]["hub_vs_baseline_cpu_per_message"],
    ),
    Guard(
        "fanout_cpu_per_delivery",
        "hub CPU per WebSocket delivery, in grpclib messages",
        _fanout,
    ),
    Guard("connect_cpu_per_vehicle", "hub CPU per vehicle connect, in grpclib messages", _connect),
    Guard(
        "reconnect_cpu_per_vehicle",
        "hub CPU per vehicle reconnect, in grpclib messages",
        _reconnect,
    ),
    Guard(
        "rss_per_vehicle_kib",
        "hub memory per connected vehicle (KiB)",
        lambda r: r["hold"]["hub_rss_per_vehicle_kib"],
    ),
)


def losses(runs: Figures) -> list[str]:
    """What a run lost or left undone; any of it fails the check whatever the baseline."""
    found = []
    commands, fanout, again = runs["commands"], runs["fanout"], runs["reconnect"]
    if commands["missing_in_database"] or commands["not_succeeded"]:
        found.append(
            f"commands: {commands['missing_in_database']} missing in the database, "
            f"{commands['not_succeeded']} not succeeded"
        )
    if fanout["missing_deliveries"]:
        found.append(f"fanout: {fanout['missing_deliveries']} deliveries missing")
    if again["commands_lost"] or not again["all_registered_again"]:
        found.append(
            f"reconnect: {again['commands_lost']} commands lost, "
            f"all registered again: {again['all_registered_again']}"
        )
    return found


def compare(runs: Figures, baseline: Mapping[str, float]) -> tuple[list[str], bool]:
    """The report's lines, and whether every guard holds."""
    lines = [f"{'figure':28} {'baseline':>9} {'now':>9} {'change':>8}  verdict"]
    passed = True
    for guard in GUARDS:
        now = guard.value(runs)
        if guard.name not in baseline:
            lines.append(f"{guard.name:28} {'-':>9} {now:9.3g} {'':>8}  no baseline")
            continue
        worse, ok = guard.verdict(baseline[guard.name], now)
        passed &= ok
        verdict = "ok" if ok else f"WORSE by more than {TOLERANCE:.0%}"
        lines.append(
            f"{guard.name:28} {baseline[guard.name]:9.3g} {now:9.3g} {worse:+8.1%}  {verdict}"
        )
    for loss in losses(runs):
        passed = False
        lines.append(f"LOST: {loss}")
    lines.extend(f"  {g.name}: {g.what}" for g in GUARDS)
    return lines, passed


def read_baseline(path: Path = BASELINE_FILE) -> dict[str, float]:
    """The recorded figures; `SystemExit` naming the file and `--record` when there are none."""
    try:
        recorded = json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"no baseline at {path}: run `python -m bench check --record`") from None
    figures: dict[str, float] = recorded["figures"]
    return figures


def record(runs: Figures, path: Path = BASELINE_FILE) -> None:
    """Write this run's guarded figures as the baseline, with where and when they came from."""
    recorded = {
        "git": environment.git_revision(),
        "machine": environment.machine(),
        "arguments": ARGUMENTS,
        "figures": {g.name: round(g.value(runs), 3) for g in GUARDS},
    }
    path.write_text(json.dumps(recorded, indent=2) + "\n")
