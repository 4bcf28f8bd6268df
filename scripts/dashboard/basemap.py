"""The map's base layer, drawn from the project's own route data (no tile server needed).

The route polyline is the road sections (``emr_jobs.core.contracts.roads.sections()``), so each
section can be coloured by its conditions; the towns and waypoints and the cameras come from
``route_document()`` (``emr_jobs/core/contracts/_route.json``), the file the simulator drives.
"""

from __future__ import annotations

from functools import lru_cache

from emr_jobs.core.contracts.roads import route_document, sections

#: A waypoint gets a permanent label when it is at least this far along from the last one.
LABEL_EVERY_KM = 18.0


@lru_cache(maxsize=1)
def basemap() -> dict:
    doc = route_document()
    secs = sections()
    km_at = {s.id: s.start_km for s in secs}
    km_at[doc["waypoints"][-1]["id"]] = secs[-1].end_km
    waypoints = []
    last_label = -LABEL_EVERY_KM
    for i, w in enumerate(doc["waypoints"]):
        km = km_at[w["id"]]
        label = i in (0, len(doc["waypoints"]) - 1) or km - last_label >= LABEL_EVERY_KM
        if label:
            last_label = km
        waypoints.append(
            {
                "id": w["id"],
                "name": w["name"],
                "lat": w["lat"],
                "lon": w["lon"],
                "road": w["road"],
                "km": round(km, 1),
                "label": label,
            }
        )
    by_id = {w["id"]: w for w in doc["waypoints"]}
    cameras = [
        {"id": c["id"], "lat": by_id[c["waypoint"]]["lat"], "lon": by_id[c["waypoint"]]["lon"]}
        for c in doc.get("cameras", [])
        if c.get("waypoint") in by_id
    ]
    lats = [w["lat"] for w in doc["waypoints"]]
    lons = [w["lon"] for w in doc["waypoints"]]
    return {
        "name": doc["name"],
        "bounds": [[min(lats), min(lons)], [max(lats), max(lons)]],
        "sections": [
            {
                "id": s.id,
                "name": s.name,
                "road": s.road,
                "roadClass": s.road_class,
                "limitKmh": s.limit_kmh,
                "startKm": s.start_km,
                "lengthKm": s.length_km,
                "path": [[s.start_lat, s.start_lon], [s.end_lat, s.end_lon]],
            }
            for s in secs
        ],
        "waypoints": waypoints,
        "cameras": cameras,
    }
