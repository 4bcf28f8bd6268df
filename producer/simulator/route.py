"""The road route the fleet drives: London (Marble Arch) to Birmingham (Victoria Square).

The route is data (``emr_jobs/core/contracts/_route.json``, shared with the job's road sections):
real waypoints along the A40, M40, M42 and A41, each naming the road and road class of the
segment that starts at it, plus the traffic cameras, each placed at a waypoint. Everything a
vehicle needs per tick (cumulative distances, per-segment heading, degrees per metre, speed
range) is computed once here, so the simulator never recomputes geometry per event.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from emr_jobs.core.contracts.roads import haversine_m, route_document


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial heading from point 1 to point 2, degrees in [0, 360), 0 = north."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(x, y)) % 360.0


@dataclass(frozen=True, slots=True)
class RoadClass:
    name: str
    min_kmh: float
    max_kmh: float


@dataclass(frozen=True, slots=True)
class Waypoint:
    id: str
    name: str
    lat: float
    lon: float
    road: str | None  # road of the segment that starts here (None at the destination)
    road_class: str | None


@dataclass(frozen=True, slots=True)
class Camera:
    id: str
    waypoint: str
    distance_m: float  # position along the route
    lat: float
    lon: float
    road: str


@dataclass(frozen=True, slots=True)
class Route:
    """A polyline with everything per segment precomputed. Segment ``i`` runs from waypoint
    ``i`` to waypoint ``i + 1``; ``cum_m[i]`` is the route distance of waypoint ``i``."""

    name: str
    waypoints: tuple[Waypoint, ...]
    road_classes: dict[str, RoadClass]
    cameras: tuple[Camera, ...]
    cum_m: tuple[float, ...]
    total_m: float
    seg_bearing: tuple[float, ...]  # heading, rounded to 0.1 degree (the wire precision)
    seg_dlat: tuple[float, ...]  # degrees of latitude per metre along the segment
    seg_dlon: tuple[float, ...]
    seg_min_kmh: tuple[float, ...]
    seg_max_kmh: tuple[float, ...]
    seg_class: tuple[str, ...]

    @property
    def origin(self) -> Waypoint:
        return self.waypoints[0]

    @property
    def destination(self) -> Waypoint:
        return self.waypoints[-1]

    def segment_at(self, distance_m: float) -> int:
        """Index of the segment holding ``distance_m`` (clamped to the route)."""
        return min(max(bisect_right(self.cum_m, distance_m) - 1, 0), len(self.cum_m) - 2)

    def position(self, distance_m: float) -> tuple[float, float]:
        """(latitude, longitude) at ``distance_m`` along the route (clamped to the route)."""
        d = min(max(distance_m, 0.0), self.total_m)
        seg = self.segment_at(d)
        off = d - self.cum_m[seg]
        wp = self.waypoints[seg]
        return wp.lat + off * self.seg_dlat[seg], wp.lon + off * self.seg_dlon[seg]

    def nearest_waypoint(self, distance_m: float) -> Waypoint:
        seg = self.segment_at(distance_m)
        if distance_m - self.cum_m[seg] > self.cum_m[seg + 1] - distance_m:
            seg += 1
        return self.waypoints[seg]


def build_route(doc: dict) -> Route:
    """Check a route document and precompute its geometry. Raises ValueError when it is wrong."""
    classes = {
        name: RoadClass(name, float(c["min_kmh"]), float(c["max_kmh"]))
        for name, c in doc["road_classes"].items()
    }
    for c in classes.values():
        if not 0 < c.min_kmh <= c.max_kmh <= 250:
            raise ValueError(f"road class {c.name!r}: need 0 < min_kmh <= max_kmh <= 250")
    waypoints = tuple(
        Waypoint(
            w["id"], w["name"], float(w["lat"]), float(w["lon"]), w.get("road"), w.get("class")
        )
        for w in doc["waypoints"]
    )
    if len(waypoints) < 2:
        raise ValueError("a route needs at least two waypoints")
    ids = [w.id for w in waypoints]
    if len(set(ids)) != len(ids):
        raise ValueError("waypoint ids must be unique")
    cum = [0.0]
    bearings, dlat, dlon, lo, hi, cls = [], [], [], [], [], []
    for a, b in zip(waypoints, waypoints[1:], strict=False):
        road_class = classes.get(a.road_class or "")
        if road_class is None:
            raise ValueError(f"waypoint {a.id!r}: unknown road class {a.road_class!r}")
        length = haversine_m(a.lat, a.lon, b.lat, b.lon)
        if length <= 0:
            raise ValueError(f"waypoint {b.id!r} repeats the one before it")
        cum.append(cum[-1] + length)
        bearings.append(round(bearing_deg(a.lat, a.lon, b.lat, b.lon), 1))
        dlat.append((b.lat - a.lat) / length)
        dlon.append((b.lon - a.lon) / length)
        lo.append(road_class.min_kmh)
        hi.append(road_class.max_kmh)
        cls.append(road_class.name)
    index = {w.id: i for i, w in enumerate(waypoints)}
    cameras = []
    for c in doc.get("cameras", []):
        i = index.get(c["waypoint"])
        if i is None or i == 0:
            raise ValueError(
                f"camera {c['id']!r}: waypoint {c['waypoint']!r} is not on the route past the start"
            )
        w = waypoints[i]
        road = w.road or waypoints[i - 1].road or ""
        cameras.append(Camera(c["id"], w.id, cum[i], w.lat, w.lon, road))
    cameras.sort(key=lambda c: c.distance_m)
    if len({c.id for c in cameras}) != len(cameras):
        raise ValueError("camera ids must be unique")
    return Route(
        name=doc.get("name", ""),
        waypoints=waypoints,
        road_classes=classes,
        cameras=tuple(cameras),
        cum_m=tuple(cum),
        total_m=cum[-1],
        seg_bearing=tuple(bearings),
        seg_dlat=tuple(dlat),
        seg_dlon=tuple(dlon),
        seg_min_kmh=tuple(lo),
        seg_max_kmh=tuple(hi),
        seg_class=tuple(cls),
    )


def load_route(path: str | Path | None = None) -> Route:
    """The route in ``path`` (a JSON file), or the default London-Birmingham route (cached)."""
    if path is None:
        return _default_route()
    return build_route(json.loads(Path(path).read_text(encoding="utf-8")))


@lru_cache(maxsize=1)
def _default_route() -> Route:
    return build_route(route_document())
