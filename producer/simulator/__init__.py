"""Fleet simulator: turns (seed, options) into the five event streams. Pure Python, no I/O.

Vehicles drive the London -> Birmingham route. Simulated time is kept in integer milliseconds
from ``start_time``, so runs are exact and repeatable. Each vehicle departs at a seeded moment in
the first three minutes and then, every ``tick_seconds``, sends one ``vehicle`` and one ``gps``
event; between ticks it sends a ``traffic_camera`` event as it passes each camera, a ``weather``
sample every ``weather_every_seconds`` and Poisson ``emergency`` incidents (Active, then
Resolved). At the last waypoint it sends a final vehicle and gps event (speed 0) and nothing
more.

Events come out in non-decreasing ``emit_time`` order. Late events (``late_fraction``) are held
back and sent after later events; duplicates (``duplicate_fraction``) are sent again with the
same id and payload a few ticks later. Injection uses its own random stream, so a run with
injection holds exactly the events of the same run without it, plus the duplicate copies.

The package is pure: it imports the shared contracts (``emr_jobs.core.contracts``) and the
standard library, never Kafka, Spark or AWS, nor the producer's Kafka side
(``producer.kafka_producer``, ``producer.kafka_config``, ``producer.cli``,
``producer.settings``), which sits on top of it.

- ``options.py``: :class:`SimulationOptions`, what to simulate, checked when built.
- ``events.py``: :class:`Event` (one event of one stream) and :class:`SimulationStats`.
- ``simulation.py``: :class:`Simulation` and :func:`simulate`: the rounds of ticks, the motion
  of each vehicle, and the queue of events between ticks with the late/duplicate injection.
- ``payloads.py``: one payload builder per stream, in its contract's field order, and the event
  ids and timestamps.
- ``fleet.py``: the vehicles (types and models from ``producer/data/fleet.json``).
- ``route.py``: the route (from ``emr_jobs.core.contracts``), with its geometry precomputed.
- ``weather.py``: a weather field coherent in space and time.
- ``incidents.py``: the emergency incidents and their lifecycle.
"""

from producer.simulator.events import Event, SimulationStats
from producer.simulator.fleet import DEPARTURE_WINDOW_S
from producer.simulator.options import MAX_VEHICLES, SimulationOptions
from producer.simulator.simulation import Simulation, simulate

__all__ = [
    "DEPARTURE_WINDOW_S",
    "MAX_VEHICLES",
    "Event",
    "Simulation",
    "SimulationOptions",
    "SimulationStats",
    "simulate",
]
