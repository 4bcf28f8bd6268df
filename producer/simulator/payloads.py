"""The payloads: one builder per stream, laying out its contract's fields in wire order.

Each payload dict is written here, once. A builder takes the values at wire precision where two
payloads share them (the event id, the timestamp, the rounded position and speed) and rounds
the fields only its own stream sends. The ids and the timestamps come from
:func:`uuid4_source` and :func:`timestamp_source`, which are built once per run.

The builders are called for every event, so they are plain functions of positional arguments
and the schema versions are read from the contracts once, at import.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from emr_jobs.core.contracts import CONTRACTS

if TYPE_CHECKING:
    from producer.simulator.fleet import Vehicle
    from producer.simulator.incidents import Incident
    from producer.simulator.route import Camera
    from producer.simulator.weather import WeatherReading

_VEHICLE_V = CONTRACTS["vehicle"].version
_GPS_V = CONTRACTS["gps"].version
_CAMERA_V = CONTRACTS["traffic_camera"].version
_WEATHER_V = CONTRACTS["weather"].version
_EMERGENCY_V = CONTRACTS["emergency"].version

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A random 128-bit number becomes a version-4 UUID: clear the version and variant bits, set them.
_UUID_MASK = ~((0xC000 << 48) | (0xF000 << 64)) & ((1 << 128) - 1)
_UUID_V4 = (0x8000 << 48) | (4 << 76)
_UUID_MASK_2 = _UUID_MASK | (_UUID_MASK << 128)
_UUID_V4_2 = _UUID_V4 | (_UUID_V4 << 128)


# -- ids and timestamps -------------------------------------------------------------------------


def uuid4_source(rng: random.Random) -> tuple[Callable[[], str], Callable[[], tuple[str, str]]]:
    """``(new_id, new_id_pair)``: version-4 UUID strings drawn from ``rng``.

    ``new_id_pair()`` returns what two calls of ``new_id()`` would, from one 256-bit draw:
    ``getrandbits(256)`` takes the same 32-bit words as two ``getrandbits(128)``, the first
    call's in the low half. The vehicle and gps events of a tick take their ids this way.
    """
    getbits = rng.getrandbits

    def new_id() -> str:
        h = ((getbits(128) & _UUID_MASK) | _UUID_V4).to_bytes(16, "big").hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def new_id_pair() -> tuple[str, str]:
        h = ((getbits(256) & _UUID_MASK_2) | _UUID_V4_2).to_bytes(32, "big").hex()
        return (
            f"{h[32:40]}-{h[40:44]}-{h[44:48]}-{h[48:52]}-{h[52:]}",
            f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}",
        )

    return new_id, new_id_pair


@lru_cache(maxsize=1)
def _seconds_millis() -> tuple[str, ...]:
    """ "SS.mmmZ" for every millisecond of a minute: timestamp = minute prefix + this."""
    return tuple(f"{s:02d}.{ms:03d}Z" for s in range(60) for ms in range(1000))


def timestamp_source(base_ms: int) -> Callable[[int], str]:
    """``stamp(ms)``: the contract's timestamp ("2026-01-05T08:00:05.000Z") of the moment
    ``ms`` simulated milliseconds after ``base_ms`` (ms since the Unix epoch). Each minute is
    formatted once; a millisecond within it is a table lookup."""
    sec_ms = _seconds_millis()
    prefixes: dict[int, str] = {}

    def stamp(ms: int) -> str:
        a = base_ms + ms
        minute = a // 60000
        prefix = prefixes.get(minute)
        if prefix is None:
            prefix = prefixes[minute] = (_EPOCH + timedelta(minutes=minute)).strftime(
                "%Y-%m-%dT%H:%M:"
            )
        return prefix + sec_ms[a - minute * 60000]

    return stamp


# -- the five streams ---------------------------------------------------------------------------


def vehicle_payload(
    event_id: str,
    v: Vehicle,
    timestamp: str,
    lat: float,
    lon: float,
    speed: float,
    direction: float,
    odometer_m: float,
) -> dict:
    """A ``vehicle`` reading: where the vehicle is, how fast, which way, and its fuel level."""
    return {
        "id": event_id,
        "schemaVersion": _VEHICLE_V,
        "deviceId": v.device_id,
        "timestamp": timestamp,
        "location": {"latitude": lat, "longitude": lon},
        "speed": speed,
        "direction": direction,
        "make": v.make,
        "model": v.model,
        "year": v.year,
        "fuelType": v.fuel_type,
        "fuelLevel": round(v.fuel, 2),
        "odometerKm": round(odometer_m / 1000, 3),
        "vehicleType": v.vehicle_type,
    }


def gps_payload(
    event_id: str,
    v: Vehicle,
    timestamp: str,
    lat: float,
    lon: float,
    speed: float,
    direction: float,
    accuracy_m: float,
) -> dict:
    """A ``gps`` fix: the same position, speed and heading as the vehicle reading beside it."""
    return {
        "id": event_id,
        "schemaVersion": _GPS_V,
        "deviceId": v.device_id,
        "timestamp": timestamp,
        "location": {"latitude": lat, "longitude": lon},
        "speed": speed,
        "direction": direction,
        "accuracyM": round(accuracy_m, 1),
        "vehicleType": v.vehicle_type,
    }


def camera_payload(
    event_id: str, device_id: str, timestamp: str, camera: Camera, measured_kmh: float
) -> dict:
    """A ``traffic_camera`` sighting, at the camera, with its snapshot's object key."""
    return {
        "id": event_id,
        "schemaVersion": _CAMERA_V,
        "deviceId": device_id,
        "timestamp": timestamp,
        "location": {"latitude": round(camera.lat, 6), "longitude": round(camera.lon, 6)},
        "cameraId": camera.id,
        "measuredSpeed": round(max(0.0, measured_kmh), 1),
        "snapshot": f"snapshots/{camera.id}/{timestamp[:10]}/{event_id}.jpg",
    }


def weather_payload(
    event_id: str, device_id: str, timestamp: str, lat: float, lon: float, w: WeatherReading
) -> dict:
    """A ``weather`` sample of the weather field where the vehicle is."""
    return {
        "id": event_id,
        "schemaVersion": _WEATHER_V,
        "deviceId": device_id,
        "timestamp": timestamp,
        "location": {"latitude": lat, "longitude": lon},
        "temperature": round(w.temperature, 1),
        "weatherCondition": w.condition,
        "precipitation": round(w.precipitation, 2),
        "windSpeed": round(w.wind_speed, 1),
        "humidity": round(w.humidity, 1),
        "airQualityIndex": round(w.air_quality_index, 1),
    }


def emergency_payload(
    event_id: str,
    device_id: str,
    timestamp: str,
    incident: Incident,
    status: str,
    description: str,
) -> dict:
    """An ``emergency`` report of ``incident``: ``status`` "Active" or "Resolved"."""
    return {
        "id": event_id,
        "schemaVersion": _EMERGENCY_V,
        "deviceId": device_id,
        "timestamp": timestamp,
        "location": {"latitude": incident.latitude, "longitude": incident.longitude},
        "incidentId": incident.incident_id,
        "type": incident.type,
        "status": status,
        "description": description,
    }
