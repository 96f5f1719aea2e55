"""Small statistics helpers shared by the scenarios."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float:
    """The `q`-th percentile (0-100) of `values` by nearest rank; nan when there are none.

    Nearest rank: the smallest value such that at least q% of the values are
    at or below it (q=0 gives the minimum, q=100 the maximum).
    """
    ordered = sorted(values)
    if not ordered:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, got {q}")
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def thin(values: list[float], limit: int) -> list[float]:
    """At most `limit` of `values`, evenly spaced over the sorted distribution."""
    if len(values) <= limit:
        return list(values)
    ordered = sorted(values)
    step = len(ordered) / limit
    return [ordered[int(i * step)] for i in range(limit)]
