"""The fleet: who drives what, when each vehicle leaves, and its state on the road.

The vehicle types, models and fuel use are data (``producer/data/fleet.json``). Vehicle ``i``
depends only on the seed and ``i``, not on the fleet size, so a larger fleet starts with the
same vehicles as a smaller one.
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from importlib import resources

from producer.simulator.incidents import Incident, next_gap_ms
from producer.simulator.options import SimulationOptions
from producer.simulator.route import Route

DEPARTURE_WINDOW_S = 180.0  # vehicles leave Marble Arch within the first three minutes


@dataclass(slots=True)
class Vehicle:
    """One vehicle: what it is (fixed) and where it is on its journey (changes every tick)."""

    device_id: str
    make: str
    model: str
    year: int
    fuel_type: str
    vehicle_type: str
    depart_ms: int
    phase_ms: int  # depart_ms modulo the tick: when in each round this vehicle ticks
    phase: timedelta  # phase_ms as a timedelta: a tick's emit time is its round's plus this
    start_round: int
    skill: float  # 0..1: where in its road class's speed range this driver settles
    cap_kmh: float
    fuel: float  # percent
    fuel_per_m: float  # percent per metre at the reference speed
    next_weather_ms: int
    next_incident_ms: int | None
    dist: float = 0.0  # metres along the route
    seg: int = 0
    cam: int = 0  # next camera index
    speed: float = 0.0  # km/h
    # Set by the run from the route: where segment ``seg`` ends, the speed the vehicle settles at
    # on it, and where its next camera is (inf: none left).
    seg_end_m: float = 0.0
    target_kmh: float = 0.0
    next_camera_m: float = 0.0
    incidents: list[Incident] | None = None
    arrived: bool = False


def load_data(name: str) -> dict:
    """A JSON document from ``producer/data/`` (package data of ``producer``)."""
    text = resources.files("producer").joinpath("data", name).read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _fleet_catalogue() -> dict:
    doc = load_data("fleet.json")
    types = doc["vehicle_types"]
    names = tuple(types)
    return {
        "types": names,
        "weights": tuple(types[t]["weight"] for t in names),
        "cum_weights": tuple(itertools.accumulate(types[t]["weight"] for t in names)),
        "cap_kmh": {t: float(types[t]["cap_kmh"]) for t in names},
        "models": {t: tuple(m for m in doc["models"] if m["vehicleType"] == t) for t in names},
        "consumption": doc["consumption_pct_per_km"],
    }


def build_fleet(
    options: SimulationOptions, route: Route, tick_ms: int, incident_rng: random.Random
) -> list[Vehicle]:
    """The ``options.vehicles`` vehicles at Marble Arch, in device-id order. Each draws its
    first incident gap from ``incident_rng``, in that order."""
    cat = _fleet_catalogue()
    rng = random.Random(f"smartcity-fleet:{options.seed}")
    total_km = route.total_m / 1000
    width = max(len(str(options.vehicles)), 5)
    phases: dict[int, timedelta] = {}  # one timedelta per phase value: a large fleet shares them
    fleet = []
    for i in range(options.vehicles):
        vtype = rng.choices(cat["types"], cum_weights=cat["cum_weights"])[0]
        model = rng.choice(cat["models"][vtype])
        fuel_type = rng.choice(model["fuelTypes"])
        year = rng.randint(*model["years"])
        depart = rng.randrange(int(DEPARTURE_WINDOW_S * 1000))
        pct_per_km = cat["consumption"][vtype][fuel_type]
        # Start with enough in the tank for the trip at motorway speed, and then some.
        lowest = min(98.0, 15.0 + pct_per_km * total_km * 1.35)
        gap = next_gap_ms(incident_rng, options.incident_rate_per_hour)
        phase_ms = depart % tick_ms
        phase = phases.get(phase_ms)
        if phase is None:
            phase = phases[phase_ms] = timedelta(0, 0, 0, phase_ms)
        fleet.append(
            Vehicle(
                device_id=f"vehicle-{i + 1:0{width}d}",
                make=model["make"],
                model=model["model"],
                year=year,
                fuel_type=fuel_type,
                vehicle_type=vtype,
                depart_ms=depart,
                phase_ms=phase_ms,
                phase=phase,
                start_round=depart // tick_ms,
                skill=rng.uniform(0.15, 0.95),
                cap_kmh=cat["cap_kmh"][vtype],
                fuel=round(rng.uniform(lowest, 100.0), 2),
                fuel_per_m=pct_per_km / 1000,
                next_weather_ms=depart,
                next_incident_ms=None if gap is None else depart + gap,
            )
        )
    return fleet
