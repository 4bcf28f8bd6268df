"""Road sections: the route data (``_route.json``) as the sections alerts and road conditions name.

Section ``i`` runs from waypoint ``i`` to waypoint ``i + 1`` and is named by the waypoint it starts
at (``id``). Its road, road class and speed limit come from that waypoint. ``start_km`` is the
route distance of its start, so "ahead on the route" is a comparison of route kilometres.

The simulator (``producer.simulator.route``), the job (``emr_jobs.alerts``) and the dashboard
all read the same file through this module. Standard library only, like the rest of the
contracts package.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

EARTH_RADIUS_M = 6_371_008.8
ROUTE_FILE = "_route.json"


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


@dataclass(frozen=True, slots=True)
class RoadSection:
    id: str  # the waypoint it starts at
    index: int
    name: str
    road: str
    road_class: str
    limit_kmh: float
    start_lat: float
    start_lon: float
    end_lat: float
    end_lon: float
    start_km: float
    length_km: float

    @property
    def end_km(self) -> float:
        return self.start_km + self.length_km


def route_document() -> dict[str, Any]:
    """The route data: waypoints, road classes (with speed limits) and cameras."""
    text = resources.files(__package__).joinpath(ROUTE_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def build_sections(doc: dict[str, Any]) -> tuple[RoadSection, ...]:
    classes = doc["road_classes"]
    points = doc["waypoints"]
    sections = []
    km = 0.0
    for i, (a, b) in enumerate(zip(points, points[1:], strict=False)):
        length = haversine_m(a["lat"], a["lon"], b["lat"], b["lon"]) / 1000.0
        road_class = a["class"]
        sections.append(
            RoadSection(
                id=a["id"],
                index=i,
                name=f"{a['road']}: {a['name']} to {b['name']}",
                road=a["road"],
                road_class=road_class,
                limit_kmh=float(classes[road_class]["limit_kmh"]),
                start_lat=a["lat"],
                start_lon=a["lon"],
                end_lat=b["lat"],
                end_lon=b["lon"],
                start_km=round(km, 3),
                length_km=round(length, 3),
            )
        )
        km += length
    return tuple(sections)


@lru_cache(maxsize=1)
def sections() -> tuple[RoadSection, ...]:
    """The default route's sections, in route order."""
    return build_sections(route_document())


# A local plane for distances of a few km: good to well under 1 % between London and Birmingham.
PLANE_LAT0 = 52.0
KM_PER_DEG_LAT = 110.574
KM_PER_DEG_LON = 111.320 * math.cos(math.radians(PLANE_LAT0))


@dataclass(frozen=True, slots=True)
class Placement:
    section: RoadSection
    route_km: float  # distance along the route of the nearest point
    off_route_km: float  # distance from the route


def place(lat: float, lon: float, within: tuple[RoadSection, ...] | None = None) -> Placement:
    """The nearest section to a position, its route kilometre and how far off the route it is.

    The job computes the same thing as a Spark expression (``emr_jobs.alerts.with_placement``); a
    test holds the two to each other.
    """
    best: Placement | None = None
    for s in within or sections():
        ax, ay = s.start_lon * KM_PER_DEG_LON, s.start_lat * KM_PER_DEG_LAT
        bx, by = s.end_lon * KM_PER_DEG_LON, s.end_lat * KM_PER_DEG_LAT
        px, py = lon * KM_PER_DEG_LON, lat * KM_PER_DEG_LAT
        dx, dy = bx - ax, by - ay
        t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
        off = math.hypot(px - (ax + t * dx), py - (ay + t * dy))
        if best is None or off <= best.off_route_km:  # a tie goes to the later section
            best = Placement(s, s.start_km + t * s.length_km, off)
    assert best is not None
    return best
