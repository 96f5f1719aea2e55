"""PNG charts of scenario outcomes (matplotlib, Agg backend: no display needed).

    hold       RSS (MiB) against connected vehicles        series t_s, connected, rss_mib
    commands   latency distribution (CDF), and rate        series latency_ms or *latency_ms;
               against p99 when the run was a ramp         rate + p99 or *_ramp_rate_per_s
                                                           + *_ramp_p99_ms
    fanout     latency distribution (CDF)                  series latency_ms or *_ms
    reconnect  connected vehicles against time             series t_s, connected
    baseline   CPU per message, hub vs baseline            figures *_cpu_us_per_message
    groupcommit  sustained 202/s against concurrency       series concurrency,
                 per variant                               *_accepted_per_s

A scenario without the series its chart needs gets a text-only figure
listing its figures, so a chart never fails a run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib import pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bench.scenarios import Outcome

_Plot = Callable[[Figure, Outcome], bool]


def write_chart(name: str, outcome: Outcome, path: Path) -> Path:
    """Draw the chart of scenario `name` for `outcome` as a PNG at `path`; returns `path`."""
    figure = plt.figure(figsize=(8, 5))
    try:
        plot = _PLOTS.get(name)
        if plot is None or not plot(figure, outcome):
            figure.clear()
            _text_only(figure, name, outcome)
        else:
            figure.suptitle(f"sovd-hub bench: {name}")
            figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png", dpi=100)
    finally:
        plt.close(figure)
    return path


def _numbers(values: Sequence[Any] | None) -> list[float] | None:
    """`values` as floats, or None when absent, empty or not all numeric."""
    if not values:
        return None
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        return None
    return [v for v in numbers if not math.isnan(v)] or None


def _hold(figure: Figure, outcome: Outcome) -> bool:
    connected = _numbers(outcome.series.get("connected"))
    rss = _numbers(outcome.series.get("rss_mib"))
    if connected is None or rss is None or len(connected) != len(rss):
        return False
    axes = figure.add_subplot()
    axes.plot(connected, rss, marker=".")
    axes.set_xlabel("connected vehicles")
    axes.set_ylabel("hub RSS (MiB)")
    axes.grid(True, alpha=0.3)
    return True


def _cdf(axes: Axes, samples: dict[str, list[float]], title: str) -> None:
    for label, latencies in samples.items():
        ordered = sorted(latencies)
        fraction = [(i + 1) / len(ordered) for i in range(len(ordered))]
        axes.plot(ordered, fraction, label=label)
    axes.set_xlabel("latency (ms)")
    axes.set_ylabel("fraction at or below")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    if len(samples) > 1:
        axes.legend()


def _latencies(outcome: Outcome, suffix: str) -> dict[str, list[float]]:
    """Every numeric series named `latency_ms` or ending in `suffix` (ramps excluded)."""
    found = {}
    for key, values in outcome.series.items():
        if (key == "latency_ms" or key.endswith(suffix)) and "_ramp_" not in key:
            numbers = _numbers(values)
            if numbers is not None:
                found[key] = numbers
    return found


def _ramps(outcome: Outcome) -> dict[str, tuple[list[float], list[float]]]:
    """Rate against p99 series: `rate` + `p99`, or `<label>_ramp_rate_per_s` + `_ramp_p99_ms`."""
    pairs = {"": ("rate", "p99")}
    for key in outcome.series:
        if key.endswith("_ramp_rate_per_s"):
            label = key.removesuffix("_ramp_rate_per_s")
            pairs[label] = (key, f"{label}_ramp_p99_ms")
    found = {}
    for label, (rate_key, p99_key) in pairs.items():
        rate, p99 = outcome.series.get(rate_key), outcome.series.get(p99_key)
        if rate and p99 and len(rate) == len(p99):
            points = [
                (float(r), float(p))
                for r, p in zip(rate, p99, strict=True)
                if isinstance(r, int | float) and isinstance(p, int | float)
            ]
            if points:
                found[label or "p99"] = ([r for r, _ in points], [p for _, p in points])
    return found


def _commands(figure: Figure, outcome: Outcome) -> bool:
    latencies = _latencies(outcome, "latency_ms")
    ramps = _ramps(outcome)
    if not latencies and not ramps:
        return False
    panels = bool(latencies) + bool(ramps)
    if latencies:
        _cdf(figure.add_subplot(1, panels, 1), latencies, "submit to final event")
    if ramps:
        axes = figure.add_subplot(1, panels, panels)
        for label, (rate, p99) in ramps.items():
            axes.plot(rate, p99, marker="o", label=label)
        axes.axhline(100, color="grey", linestyle="--", linewidth=1)
        axes.set_xlabel("offered rate (commands/s)")
        axes.set_ylabel("p99 latency (ms)")
        axes.set_title("rate against p99")
        axes.grid(True, alpha=0.3)
        if len(ramps) > 1:
            axes.legend()
    return True


def _fanout(figure: Figure, outcome: Outcome) -> bool:
    latencies = _latencies(outcome, "_ms")
    if not latencies:
        return False
    _cdf(figure.add_subplot(), latencies, "event delivery to the subscribers")
    return True


def _reconnect(figure: Figure, outcome: Outcome) -> bool:
    times = _numbers(outcome.series.get("t_s"))
    connected = _numbers(outcome.series.get("connected"))
    if times is None or connected is None or len(times) != len(connected):
        return False
    axes = figure.add_subplot()
    axes.plot(times, connected)
    axes.set_xlabel("time since the links were cut (s)")
    axes.set_ylabel("connected vehicles")
    axes.grid(True, alpha=0.3)
    return True


def _baseline(figure: Figure, outcome: Outcome) -> bool:
    labels, values = [], []
    for server in ("baseline", "hub"):
        value = outcome.figures.get(f"{server}_cpu_us_per_message")
        if isinstance(value, int | float):
            labels.append(server)
            values.append(float(value))
    if not values:
        return False
    axes = figure.add_subplot()
    bars = axes.bar(labels, values, color=["tab:grey", "tab:blue"][: len(values)])
    axes.bar_label(bars, fmt="%.1f")
    axes.set_ylabel("server CPU per message (µs)")
    ratio = outcome.figures.get("hub_vs_baseline_cpu_per_message")
    axes.set_title(f"hub / baseline = {ratio}x (target ≤ 1.25x)" if ratio else "CPU per message")
    return True


def _groupcommit(figure: Figure, outcome: Outcome) -> bool:
    concurrency = _numbers(outcome.series.get("concurrency"))
    if concurrency is None:
        return False
    axes = figure.add_subplot()
    drawn = False
    for key, values in outcome.series.items():
        rates = _numbers(values) if key.endswith("_accepted_per_s") else None
        if rates is not None and len(rates) == len(concurrency):
            axes.plot(concurrency, rates, marker="o", label=key.removesuffix("_accepted_per_s"))
            drawn = True
    if not drawn:
        return False
    axes.set_xscale("log", base=2)
    axes.set_xlabel("concurrent submitters (closed loop)")
    axes.set_ylabel("accepted submissions per second (202)")
    ratio = outcome.figures.get("group_vs_per_request_sustained")
    axes.set_title(f"group / per-request = {ratio}x" if ratio else "sustained submissions")
    axes.grid(True, alpha=0.3)
    axes.legend()
    return True


def _text_only(figure: Figure, name: str, outcome: Outcome) -> None:
    lines = [f"{name}: no chart for these series"] + [
        f"{key}: {value}" for key, value in list(outcome.figures.items())[:20]
    ]
    figure.text(0.05, 0.95, "\n".join(lines), va="top", family="monospace", fontsize=9)


_PLOTS: dict[str, _Plot] = {
    "hold": _hold,
    "commands": _commands,
    "fanout": _fanout,
    "reconnect": _reconnect,
    "baseline": _baseline,
    "groupcommit": _groupcommit,
}
