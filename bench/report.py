"""`python -m bench report`: regenerate BENCHMARKS.md from the newest result of each scenario.

It opens with the issue-13 scorecard (`bench.scorecard`). Then each
scenario gets a table of every figure its result holds, its parameters, the
command that reproduces it, the targets that apply (issue 13's, which
replaced issue 3's), marked met or not met against the measured figure, and
its chart when a PNG lies beside the result. Where the run measured the
floor (`hold`, `reconnect`: `bench.baseline_hub` holding the same fleet),
the targets' table gives the floor's figure beside the hub's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import environment
from bench.scenarios import NAMES, load
from bench.scorecard import scorecard

OUTPUT = Path(__file__).parents[1] / "BENCHMARKS.md"


@dataclass(frozen=True)
class Target:
    """A goal (issue 13): `figure` compared with `limit`, valid when `size` reaches `at_least`.

    `floor` names the same run's figure of the floor (`bench.baseline_hub`,
    the same fleet on pure asyncio + grpclib), where the scenario measures one.
    """

    goal: str
    figure: str
    compare: str  # "<=", "<", ">", ">=" or "=="
    limit: float
    size: str | None = None  # the parameter that must reach `at_least` for the goal to apply
    at_least: float = 0
    floor: str | None = None


TARGETS: dict[str, list[Target]] = {
    "hold": [
        Target(
            "≤ 40 KiB RSS per vehicle at 20,000 vehicles",
            "hub_rss_per_vehicle_kib",
            "<=",
            40,
            "vehicles",
            20_000,
            floor="floor_rss_per_vehicle_kib",
        ),
        Target(
            "idle ≤ 15 % of a core",
            "idle_hub_cpu_percent",
            "<=",
            15,
            floor="floor_idle_cpu_percent",
        ),
    ],
    "commands": [
        Target("hub CPU per command ≤ 1.5x noop", "hub_vs_noop_cpu_per_command", "<=", 1.5),
        Target(
            "highest rate with p99 < 100 ms ≥ 0.8x noop",
            "hub_vs_noop_highest_rate_p99_under_100ms",
            ">=",
            0.8,
        ),
        Target("p99 < 100 ms at 300 commands/s", "hub_latency_p99_ms", "<", 100, "rate_per_s", 300),
    ],
    "overload": [
        Target(
            "admitted p99 < 1 s while 2x capacity is offered",
            "admitted_latency_p99_ms",
            "<",
            1000,
        ),
    ],
    "baseline": [
        Target(
            "hub CPU per message ≤ 1.5x pure-asyncio baseline",
            "hub_vs_baseline_cpu_per_message",
            "<=",
            1.5,
        ),
    ],
    "fanout": [
        Target(
            "p99 < 50 ms to 1,000 subscribers",
            "submit_to_final_event_ms_p99",
            "<",
            50,
            "subscribers",
            1_000,
        ),
    ],
    "reconnect": [
        Target(
            "10,000 vehicles back within 10 s",
            "time_until_all_registered_again_s",
            "<=",
            10,
            "vehicles",
            10_000,
            floor="floor_time_until_all_registered_again_s",
        ),
        Target("no command lost", "commands_lost", "==", 0),
    ],
    "groupcommit": [
        Target(
            "group commit raises sustained submissions/s over per-request commits (issue 6)",
            "group_vs_per_request_sustained",
            ">",
            1,
        ),
    ],
}

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
}


def all_results(results_dir: Path) -> dict[str, list[tuple[Path, dict[str, Any]]]]:
    """Every result in `results_dir` by scenario, newest first, with its file."""
    runs: dict[str, list[tuple[Path, dict[str, Any]]]] = {}
    for path in sorted(results_dir.glob("*.json"), reverse=True):  # names end in a UTC time
        document = json.loads(path.read_text())
        runs.setdefault(document["scenario"], []).append((path, document))
    return runs


def write_report(results_dir: Path = environment.RESULTS_DIR, output: Path = OUTPUT) -> Path:
    """Write the report of the results in `results_dir` to `output`; returns `output`.

    The summary shows each scenario's newest run; each section shows every run
    kept in `results_dir` (e.g. a ramp and a fixed rate of `commands`).
    """
    runs = all_results(results_dir)
    results = {name: scenario_runs[0] for name, scenario_runs in runs.items()}
    order = [n for n in NAMES if n in results] + sorted(set(results) - set(NAMES))
    lines = _header(results, order)
    if order:
        lines += scorecard(runs)
    for name in order:
        for index, (path, document) in enumerate(runs[name]):
            heading = f"## {name}" if index == 0 else f"### {name}: an earlier run"
            lines += _section(name, path, document, output.parent, heading)
    output.write_text("\n".join(lines).rstrip() + "\n")
    return output


def _header(results: dict[str, tuple[Path, dict[str, Any]]], order: list[str]) -> list[str]:
    lines = [
        "# Benchmarks",
        "",
        "Results of the `python -m bench` scenarios (issues 3 and 13): how many vehicles one",
        "hub process holds, commands end to end, fan-out to WebSockets, a fleet reconnecting,",
        "and the hub's cost per vehicle message against a pure-asyncio grpclib baseline.",
        "Targets are goals to report against, not assertions.",
        "",
        "Regenerate: `make bench` (the short run of every scenario with charts, then this",
        "report), or `python -m bench all --quick --chart` then `python -m bench report`.",
        "Each scenario's section gives the command that reproduces it at its size.",
        "",
    ]
    if not order:
        return [*lines, "No results yet: run `make bench`.", ""]
    machines = {json.dumps(results[n][1].get("machine", {}), sort_keys=True) for n in order}
    lines += ["## Machine and versions", ""]
    for machine_json in sorted(machines):
        machine = json.loads(machine_json)
        lines += [
            f"- {machine.get('cores', '?')} cores, {machine.get('memory_gib', '?')} GiB memory,"
            f" {machine.get('cpu', 'unknown CPU')}",
            f"- {machine.get('os', '?')}, Python {machine.get('python', '?')}",
        ]
    if len(machines) > 1:
        lines.append("- (the results below come from more than one machine)")
    versions: dict[str, set[str]] = {}
    for name in order:
        for package, version in results[name][1].get("versions", {}).items():
            versions.setdefault(package, set()).add(str(version))
    if versions:
        listed = ", ".join(f"{p} {'/'.join(sorted(v))}" for p, v in versions.items())
        lines.append(f"- {listed}")
    baseline = results["baseline"][1]["figures"] if "baseline" in results else {}
    speed = baseline.get("baseline_cpu_us_per_message")
    if speed is not None:  # how loaded the shared machine was
        lines.append(
            f"- the machine's speed: a pure-asyncio grpclib hub spent {speed} us of CPU per"
            " vehicle message (`baseline`); it varies with the load a shared machine carries,"
            " so compare runs by their ratios"
        )
    revisions = sorted({str(results[n][1].get("git", "unknown")) for n in order})
    lines += [f"- git revision: {', '.join(revisions)}", ""]
    lines += ["| scenario | run at (UTC) | git | headline |", "| --- | --- | --- | --- |"]
    for name in order:
        document = results[name][1]
        lines.append(
            f"| [{name}](#{name}) | {document.get('at', '?')} | {document.get('git', '?')}"
            f" | {_headline(name, document)} |"
        )
    return [*lines, ""]


def _headline(name: str, document: dict[str, Any]) -> str:
    parts = []
    for target in TARGETS.get(name, []):
        value = document.get("figures", {}).get(target.figure)
        if value is not None:
            parts.append(f"{target.figure} = {_cell(value)} ({_verdict(target, document)})")
    return "; ".join(parts) or "-"


def _section(
    name: str, path: Path, document: dict[str, Any], base: Path, heading: str
) -> list[str]:
    figures: dict[str, Any] = document.get("figures", {})
    parameters: dict[str, Any] = document.get("parameters", {})
    lines = [heading, ""]
    with contextlib.suppress(ImportError):
        lines += [str(load(name).HELP), ""]
    lines += [
        f"Run at {document.get('at', '?')} UTC on revision `{document.get('git', '?')}`"
        f" (`{_relative(path, base)}`). Reproduce:",
        "",
        "```sh",
        reproduce(name, parameters),
        "```",
        "",
    ]
    lines += _targets(TARGETS.get(name, []), document)
    lines += ["| figure | value |", "| --- | --- |"]
    lines += [f"| `{key}` | {_cell(value)} |" for key, value in figures.items()]
    lines += ["", "| parameter | value |", "| --- | --- |"]
    lines += [f"| `{key}` | {_cell(value)} |" for key, value in parameters.items()]
    lines.append("")
    chart = path.with_suffix(".png")
    if chart.exists():
        lines += [f"![{name} chart]({_relative(chart, base)})", ""]
    return lines


def _targets(targets: list[Target], document: dict[str, Any]) -> list[str]:
    """The table of a run's targets; with the floor's figure beside the hub's where the run
    measured one (a run without, e.g. of an older bench, gets the table without the column)."""
    if not targets:
        return []
    figures: dict[str, Any] = document.get("figures", {})
    floored = any(t.floor in figures for t in targets if t.floor is not None)
    floor_head = (" same run's floor |", " --- |") if floored else ("", "")
    lines = [
        f"| target | figure | measured |{floor_head[0]} verdict |",
        f"| --- | --- | --- |{floor_head[1]} --- |",
    ]
    for target in targets:
        value = figures.get(target.figure)
        measured = _cell(value) if target.figure in figures else "(no such figure)"
        floor = f" {_floor_cell(target, figures)} |" if floored else ""
        lines.append(
            f"| {target.goal} | `{target.figure}` | {measured} |{floor}"
            f" {_verdict(target, document)} |"
        )
    return [*lines, ""]


def _floor_cell(target: Target, figures: dict[str, Any]) -> str:
    """The floor's figure, and whether even the floor is within the target's limit."""
    value = figures.get(target.floor) if target.floor is not None else None
    if not isinstance(value, int | float) or isinstance(value, bool):
        return _cell(value) if target.floor in figures else "-"
    within = _COMPARE[target.compare](float(value), target.limit)
    return f"{_cell(value)} ({'within' if within else 'outside'} the limit)"


def _verdict(target: Target, document: dict[str, Any]) -> str:
    value = document.get("figures", {}).get(target.figure)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "not measured"
    met = _COMPARE[target.compare](float(value), target.limit)
    if target.size is not None:
        size = document.get("parameters", {}).get(target.size)
        if not isinstance(size, int | float) or size < target.at_least:
            return (
                f"not judged: this run has {target.size} = {size}, the target is set at"
                f" {target.at_least:,g} (at this size the figure is"
                f" {'within' if met else 'outside'} its limit)"
            )
    return "met" if met else "**not met**"


def reproduce(name: str, parameters: dict[str, Any]) -> str:
    """The `python -m bench` command that runs `name` with `parameters`."""
    parser = argparse.ArgumentParser()
    try:
        load(name).add_arguments(parser)
    except ImportError:
        return f"python -m bench {name}"
    options = {a.dest: a for a in parser._actions if a.option_strings and a.dest != "help"}
    words = ["python", "-m", "bench", name]
    for key, value in parameters.items():
        action = options.get(_option_for(key, list(options)) or "")
        if action is None or value is None:
            continue
        flag = action.option_strings[-1]
        if action.nargs == 0:  # a switch
            if value:
                words.append(flag)
        elif isinstance(value, list | tuple):
            words += [flag, *(str(v) for v in value)]
        elif not isinstance(value, dict):
            words += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    return shlex.join(words)


def _option_for(key: str, dests: list[str]) -> str | None:
    """The option that set parameter `key`: the same name, or its words in order
    (`idle_window_s` -> `idle_s`, `rate_per_s` -> `rate`) with the same first word."""
    if key in dests:
        return key
    words = key.split("_")
    matches = [d for d in dests if d.split("_")[0] == words[0] and _subsequence(d, words)]
    return max(matches, key=len) if matches else None


def _subsequence(dest: str, words: list[str]) -> bool:
    remaining = iter(words)
    return all(word in remaining for word in dest.split("_"))


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return str(text).replace("|", "\\|")


def _relative(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()
