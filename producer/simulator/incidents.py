"""Emergency incidents: rare Poisson events with a lifecycle (Active, then Resolved).

Each vehicle reports incidents as a Poisson process in simulated time: the gaps between them are
exponential with mean ``1 / rate``. An incident is reported Active where and when it happens and
Resolved at the same place 5 to 30 simulated minutes later. If the vehicle arrives in Birmingham
first, the incident is reported Resolved at the arrival time, so a vehicle sends nothing after
its final event at the destination.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

INCIDENT_TYPES = ("Accident", "Fire", "Medical", "Police")
INCIDENT_WEIGHTS = (0.45, 0.10, 0.25, 0.20)
MIN_DURATION_S = 5 * 60
MAX_DURATION_S = 30 * 60

_WHAT = {
    "Accident": (
        "Collision",
        "Vehicle breakdown in a live lane",
        "Debris on the carriageway",
        "Multi-vehicle collision",
    ),
    "Fire": ("Vehicle fire", "Grass fire beside the carriageway", "Smoke across the road"),
    "Medical": ("Driver taken ill", "Pedestrian injured", "Ambulance attending a casualty"),
    "Police": ("Police stop", "Police incident, lane closed", "Police escort of a wide load"),
}


@dataclass(slots=True)
class Incident:
    """An open incident, waiting to be resolved. ``resolve_ms`` is simulated ms from the start."""

    incident_id: str
    type: str
    description: str
    resolve_ms: int
    latitude: float
    longitude: float


def next_gap_ms(rng: random.Random, rate_per_hour: float) -> int | None:
    """Simulated ms until the next incident (exponential gap), or None when the rate is 0."""
    if rate_per_hour <= 0:
        return None
    return max(1, int(rng.expovariate(rate_per_hour) * 3_600_000))


def draw_incident(rng: random.Random, where: str) -> tuple[str, str, int]:
    """(type, description, duration in ms) for a new incident near ``where`` (a road/place)."""
    kind = rng.choices(INCIDENT_TYPES, INCIDENT_WEIGHTS)[0]
    what = rng.choice(_WHAT[kind])
    duration_ms = rng.randint(MIN_DURATION_S * 1000, MAX_DURATION_S * 1000)
    return kind, f"{what}: {where}", duration_ms


def resolved_description(description: str, at_arrival: bool) -> str:
    return f"Cleared{' (reported at arrival)' if at_arrival else ''} - {description}"
