"""A scenario's phases with deadlines: a phase that runs out of time reports how far it got.

`phase(name, timeout_s, progress)` runs its block within `timeout_s`; the block
keeps `progress` (a dict of figures) up to date, and past the deadline
`PhaseTimedOut` carries them out. `python -m bench` then saves and prints
them as the run's (partial) result, instead of a traceback, and exits 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trio


class PhaseTimedOut(Exception):
    """Phase `phase` did not finish within `timeout_s`; `figures` is how far it got."""

    def __init__(self, phase: str, timeout_s: float, figures: dict[str, Any]) -> None:
        super().__init__(f"phase {phase!r} did not finish within {timeout_s:g} s")
        self.phase = phase
        self.timeout_s = timeout_s
        self.figures = figures

    def result(self) -> dict[str, Any]:
        """The figures to save: the phase, its deadline, then its progress."""
        return {"timed_out_phase": self.phase, "phase_timeout_s": self.timeout_s, **self.figures}


@contextmanager
def phase(name: str, timeout_s: float, progress: dict[str, Any]) -> Iterator[None]:
    """Run the block within `timeout_s`, else raise `PhaseTimedOut` with `progress`."""
    try:
        with trio.fail_after(timeout_s):
            yield
    except trio.TooSlowError:
        raise PhaseTimedOut(name, timeout_s, dict(progress)) from None
