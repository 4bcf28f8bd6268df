"""A scripted scenario for the alert rules: an incident at a known place and time, vehicles
approaching it, passing it, far behind it and stopped, a speeding camera sighting, snow on a
section, and bad input. ``EXPECTED`` is the exact set of alerts the job must raise.

Positions come from the route (``producer.simulator.route``), so every event sits on a known
section.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from emr_jobs.core.contracts import CONTRACTS, format_timestamp
from producer.simulator.route import load_route

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
INCIDENT_KM = 80.0  # M40, section "horton"
ROUTE = load_route()


@dataclass(frozen=True)
class Record:
    stream: str
    key: str
    payload: dict


def _id(*parts: object) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()


def _where(km: float) -> dict:
    lat, lon = ROUTE.position(km * 1000)
    return {"latitude": round(lat, 6), "longitude": round(lon, 6)}


def gps(device: str, at: datetime, km: float, speed: float) -> Record:
    return Record(
        "gps",
        device,
        {
            "id": _id("gps", device, at),
            "schemaVersion": 1,
            "deviceId": device,
            "timestamp": format_timestamp(at),
            "location": _where(km),
            "speed": speed,
            "direction": 315.0,
            "vehicleType": "car",
        },
    )


def drive(device: str, start: datetime, km: float, speed: float, seconds: int) -> list[Record]:
    """A GPS reading every 5 s while driving at ``speed`` km/h from route km ``km``."""
    return [
        gps(device, start + timedelta(seconds=s), km + speed * s / 3600.0, speed)
        for s in range(0, seconds + 1, 5)
    ]


def incident(
    device: str, at: datetime, km: float, incident_id: str, kind: str, status: str
) -> Record:
    return Record(
        "emergency",
        device,
        {
            "id": _id("emergency", incident_id, status),
            "schemaVersion": 1,
            "deviceId": device,
            "timestamp": format_timestamp(at),
            "location": _where(km),
            "incidentId": incident_id,
            "type": kind,
            "status": status,
            "description": f"{kind} at km {km:g}",
        },
    )


def camera(device: str, at: datetime, camera_id: str, speed: float) -> Record:
    cam = next(c for c in ROUTE.cameras if c.id == camera_id)
    return Record(
        "traffic_camera",
        device,
        {
            "id": _id("camera", device, camera_id, at),
            "schemaVersion": 1,
            "deviceId": device,
            "timestamp": format_timestamp(at),
            "location": {"latitude": cam.lat, "longitude": cam.lon},
            "cameraId": camera_id,
            "measuredSpeed": speed,
        },
    )


def weather(device: str, at: datetime, location: dict, condition: str, **values) -> Record:
    payload = {
        "id": _id("weather", device, at, condition),
        "schemaVersion": 1,
        "deviceId": device,
        "timestamp": format_timestamp(at),
        "location": location,
        "temperature": -1.0,
        "weatherCondition": condition,
        "precipitation": 0.5,
        "windSpeed": 12.0,
        "humidity": 90.0,
        "airQualityIndex": 30.0,
    }
    payload.update(values)
    return Record("weather", device, payload)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def scenario() -> list[Record]:
    k = INCIDENT_KM
    report = T0 + minutes(1)
    records = [
        # The reporter drives through the place of the incident (and is never warned of it).
        *drive("reporter", T0, k - 1.7, 100.0, 240),
        incident("reporter", report, k, "INC-1", "Fire", "Active"),
        # Approaching: 8 km behind at the report, 100 km/h: within 5 km after ~108 s.
        *drive("approacher", report, k - 8, 100.0, 420),
        camera("approacher", report + minutes(2), "CAM-M40-J8", 131.0),  # 113 + 5 < 131
        # Already past the incident, driving away.
        *drive("passer", report, k + 1, 100.0, 300),
        # Far behind: 30 km back, 10 min at 100 km/h, never closer than 13 km.
        *drive("far-behind", report, k - 30, 100.0, 600),
        camera("far-behind", report + minutes(3), "CAM-M40-J5", 115.0),  # under 118: no alert
        # Stopped on the motorway 20 km on, for 3 minutes.
        *drive("stopped", report, k + 20, 0.0, 180),
        # Approaches after the incident's horizon (30 min): no alert.
        *drive("too-late", report + minutes(31), k - 4, 90.0, 60),
        incident("reporter", T0 + minutes(20), k, "INC-1", "Fire", "Resolved"),
        # Bad input 1: resolved without ever being active -> a Resolved alert all the same.
        incident("orphan", T0 + minutes(5), k + 10, "INC-2", "Police", "Resolved"),
        # Snow on one section: twice in the first 15-min period, once in the next: 2 alerts.
        weather("snow-car", T0 + minutes(2), _where(93.0), "Snow"),
        weather("snow-car", T0 + minutes(3), _where(93.5), "Snow"),
        weather("snow-car", T0 + minutes(16), _where(93.2), "Snow"),
        weather("snow-car", T0 + minutes(4), _where(93.0), "Cloudy"),  # not severe
        # Bad input 2: snow far from the route has no section -> no alert, no road condition.
        weather("lost-car", T0 + minutes(2), {"latitude": 53.5, "longitude": -3.0}, "Snow"),
    ]
    # Bad input 3: a weather event without its temperature is quarantined, never alerted on.
    broken = weather("broken-car", T0 + minutes(2), _where(60.0), "Fog")
    del broken.payload["temperature"]
    records.append(broken)
    for r in records:
        problems = CONTRACTS[r.stream].violations(r.payload)
        assert problems == ([] if r is not broken else ["temperature: required"]), problems
    return sorted(records, key=lambda r: r.payload["timestamp"])


#: (rule, deviceId, incidentId, status) -> how many: everything the scenario must raise, and
#: nothing else. Snow is two alerts: one per 15-minute period.
EXPECTED = Counter(
    {
        ("incident", "reporter", "INC-1", "Active"): 1,
        ("incident", "reporter", "INC-1", "Resolved"): 1,
        ("incident", "orphan", "INC-2", "Resolved"): 1,
        ("approaching_incident", "approacher", "INC-1", "Active"): 1,
        ("speeding", "approacher", None, "Active"): 1,
        ("stopped_vehicle", "stopped", None, "Active"): 1,
        ("severe_weather", "snow-car", None, "Active"): 2,
    }
)
