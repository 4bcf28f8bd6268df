"""The real-time event rate of a fleet, from the simulator's own rates.

A vehicle sends a ``vehicle`` and a ``gps`` event every ``tick_seconds``, a ``weather`` sample
every ``weather_every_seconds``, a ``traffic_camera`` event per camera it passes and an Active and
a Resolved ``emergency`` event per incident (``incident_rate_per_hour``). The rate is counted,
not assumed: the simulator runs the fleet (default options, as the producer's CLI uses them) and
the events whose simulated ``emit_time`` falls in a window after every vehicle has departed
(``DEPARTURE_WINDOW_S``) are divided by the window's length. The formula from the options is
kept beside it as a check.

    python -m scripts.bench.fleet_rate [--vehicles 10000] [--window 60]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import timedelta

from emr_jobs.core.contracts import STREAMS
from producer.simulator import DEPARTURE_WINDOW_S, SimulationOptions, simulate


def realtime_rate(
    vehicles: int, window_seconds: float = 60.0, options: SimulationOptions | None = None
) -> dict:
    """Events per simulated second of a ``vehicles`` fleet in steady state, per stream and in
    total, with the options' formula for comparison."""
    options = options or SimulationOptions(vehicles=vehicles)
    if options.vehicles != vehicles:
        raise ValueError("options.vehicles must equal vehicles")
    begin = options.start_time + timedelta(seconds=DEPARTURE_WINDOW_S)
    end = begin + timedelta(seconds=window_seconds)
    counts = dict.fromkeys(STREAMS, 0)
    for event in simulate(options):
        if event.emit_time >= end:
            break
        if event.emit_time >= begin:
            counts[event.stream] += 1
    per_stream = {s: n / window_seconds for s, n in counts.items()}
    formula = vehicles * (
        2 / options.tick_seconds
        + 1 / options.weather_every_seconds
        + 2 * options.incident_rate_per_hour / 3600
    )
    return {
        "vehicles": vehicles,
        "window_seconds": window_seconds,
        "events_per_second": sum(per_stream.values()),
        "by_stream": per_stream,
        "formula_without_cameras": formula,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=60.0, help="simulated seconds counted")
    args = parser.parse_args(argv)
    print(json.dumps(realtime_rate(args.vehicles, args.window), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
