"""`python -m bench`: size the hub the way a fleet operator would.

    python -m bench hold --vehicles 20000       RSS per vehicle, connect rate, idle CPU
    python -m bench commands --rate 300         end-to-end latency, hub CPU per command
    python -m bench fanout --subscribers 1000   one vehicle's events to many WebSockets
    python -m bench reconnect --vehicles 10000  every link cut at once: time to return
    python -m bench baseline                    hub vs a pure-asyncio grpclib hub
    python -m bench all [--quick | --tiny]      every scenario, short
    python -m bench check [--record]            the short runs against bench/baseline.json
    python -m bench report                      regenerate BENCHMARKS.md

Each run writes `bench/results/<scenario>-<time>.json` (machine, versions,
parameters, git revision, figures) and, with `--chart`, a PNG beside it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from bench import environment
from bench.phases import PhaseTimedOut
from bench.scenarios import NAMES, Outcome, load
from hub import run_with_asyncio

E = TypeVar("E", bound=BaseException)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="SCENARIO")
    for name in NAMES:
        scenario = load(name)
        sub = commands.add_parser(name, help=scenario.HELP)
        scenario.add_arguments(sub)
        _add_common(sub)
    every = commands.add_parser("all", help="every scenario, with its short arguments")
    size = every.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="the short run of `make bench`")
    size.add_argument("--tiny", action="store_true", help="seconds per scenario (smoke test)")
    _add_common(every)
    commands.add_parser("report", help="regenerate BENCHMARKS.md from the latest results")
    check = commands.add_parser("check", help="the short runs, compared with bench/baseline.json")
    check.add_argument("--record", action="store_true", help="make this run the baseline")
    check.add_argument("--results-dir", type=Path, help="keep the runs' results here")
    args = parser.parse_args(argv)

    if args.command == "report":
        from bench.report import write_report

        print(f"wrote {write_report()}")
        return 0
    if args.command == "check":
        return _check(args.record, args.results_dir)
    if args.command == "all":
        for name in NAMES:
            scenario = load(name)
            sub = argparse.ArgumentParser()
            scenario.add_arguments(sub)
            _add_common(sub)
            extra = ["--chart"] if args.chart else []
            chosen = scenario.TINY if args.tiny else scenario.QUICK
            _run_one(
                name, sub.parse_args([*chosen, *extra, "--results-dir", str(args.results_dir)])
            )
        return 0
    _run_one(args.command, args)
    return 0


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chart", action="store_true", help="also write a PNG chart")
    parser.add_argument(
        "--results-dir", type=Path, default=environment.RESULTS_DIR, help="where results go"
    )


def _check(record: bool, results_dir: Path | None) -> int:
    from bench import check

    baseline = None if record else check.read_baseline()
    with tempfile.TemporaryDirectory(prefix="sovd-bench-check-") as scratch:
        runs = {}
        for name, arguments in check.ARGUMENTS.items():
            sub = argparse.ArgumentParser()
            load(name).add_arguments(sub)
            _add_common(sub)
            where = str(results_dir or scratch)
            runs[name] = _run_one(name, sub.parse_args([*arguments, "--results-dir", where]))
    if baseline is None:
        check.record(runs)
        print(f"recorded {check.BASELINE_FILE}")
        return 0
    lines, passed = check.compare(runs, baseline)
    print("\n".join(["== check", *lines, "passed" if passed else "FAILED"]))
    return 0 if passed else 1


def _run_one(name: str, args: argparse.Namespace) -> dict[str, Any]:
    scenario = load(name)
    print(f"== {name}", flush=True)

    async def run() -> Outcome:
        with tempfile.TemporaryDirectory(prefix=f"sovd-bench-{name}-") as workdir:
            return await scenario.run(args, Path(workdir))

    try:
        outcome = run_with_asyncio(run)
    except PhaseTimedOut as exc:
        _save_partial(name, args, exc)
    except BaseExceptionGroup as group:  # a scenario's refusal (SystemExit) comes wrapped
        timed_out = _first(group, PhaseTimedOut)
        if timed_out is not None:
            _save_partial(name, args, timed_out)
        refusal = _first(group, SystemExit)
        if refusal is None:
            raise
        raise refusal from None

    path = environment.save_result(name, outcome.parameters, outcome.figures, args.results_dir)
    for key, value in outcome.figures.items():
        print(f"  {key}: {value}")
    print(f"  -> {path}")
    if args.chart and outcome.series:
        from bench.charts import write_chart

        print(f"  -> {write_chart(name, outcome, path.with_suffix('.png'))}")
    return outcome.figures


def _save_partial(name: str, args: argparse.Namespace, exc: PhaseTimedOut) -> NoReturn:
    """Save and print what a scenario measured before a phase ran out of time; exit 1."""
    parameters = {k: v for k, v in vars(args).items() if k not in ("results_dir", "chart")}
    figures = exc.result()
    path = environment.save_result(name, parameters, figures, args.results_dir)
    print(f"  {exc} (partial result)")
    for key, value in figures.items():
        print(f"  {key}: {value}")
    print(f"  -> {path}")
    raise SystemExit(1)


def _first(group: BaseExceptionGroup[BaseException], kind: type[E]) -> E | None:
    for inner in group.exceptions:
        if isinstance(inner, kind):
            return inner
        if isinstance(inner, BaseExceptionGroup) and (found := _first(inner, kind)):
            return found
    return None


if __name__ == "__main__":
    sys.exit(main())
