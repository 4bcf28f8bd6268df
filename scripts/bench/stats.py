"""Medians with min and max, ratios of paired runs, and percentiles."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def figure(runs: Sequence[float | None], unit: str) -> dict[str, object]:
    """A figure as the report stores it: median, min and max of ``runs``, and the runs (None
    and infinite runs do not count)."""
    values = [float(v) for v in runs if v is not None and math.isfinite(v)]
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0, "unit": unit, "runs": []}
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
        "unit": unit,
        "runs": values,
    }


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Run-by-run ratios. Pairs were measured back to back, so they share the machine's noise."""
    return [n / d for n, d in zip(numerators, denominators, strict=True) if d]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation; None when empty.

    ``values`` may hold ``math.inf`` for rows that never arrived: a percentile that falls on
    them is infinite, which the report shows as "not reached".
    """
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    if ordered[high] == math.inf:
        return math.inf if rank > low or ordered[low] == math.inf else ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Sample:
    """One timed run: how many events and bytes went through in how many seconds."""

    events: int
    bytes: int
    seconds: float
    cpu_seconds: float = 0.0

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_second(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_seconds / self.events * 1e6 if self.events else 0.0
