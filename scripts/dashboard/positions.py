"""Vehicle positions, coalesced: at most one per vehicle per tick, and only what changed.

The Kafka thread calls :meth:`VehiclePositions.update_many` for every batch it reads (a 10,000
vehicle fleet sends about 2,000 vehicle events a second). Once per tick the server calls
:meth:`take_changes`: for each vehicle updated since the last tick it returns the newest
position, and only if it differs, after rounding, from what browsers were last sent. A vehicle
that has stopped (same place, same speed) therefore costs nothing. A vehicle silent for
``ttl_seconds`` (it has arrived, or its device stopped) is reported gone and forgotten.

Rows are compact lists, ``[deviceId, lat, lon, speed, ageMs]``, where ``ageMs`` is the event
time relative to the frame's ``t0`` (epoch ms), so a frame of 2,000 rows stays near 90 kB.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

#: Rounding of what is sent: 5 decimals of a degree is about 1 m; speed to 0.1 km/h.
LATLON_DECIMALS = 5
SPEED_DECIMALS = 1


@dataclass(slots=True)
class Fix:
    lat: float
    lon: float
    speed: float
    event_ms: int  # event time of the newest reading
    seen: float  # monotonic time it arrived (for the TTL)


#: (deviceId, lat, lon, speed km/h, event time epoch ms)
Reading = tuple[str, float, float, float, int]


@dataclass(frozen=True, slots=True)
class Changes:
    t0: int  # epoch ms; each row's last element is its event time minus t0
    rows: list[list]
    gone: list[str]

    def __bool__(self) -> bool:
        return bool(self.rows or self.gone)

    def as_message(self) -> dict:
        return {"t0": self.t0, "v": self.rows, "gone": self.gone}


class VehiclePositions:
    """Newest reading per vehicle, shared by the Kafka thread and the server's tick."""

    def __init__(self, ttl_seconds: float = 600.0, clock=time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._fixes: dict[str, Fix] = {}
        self._dirty: set[str] = set()
        self._sent: dict[str, tuple[float, float, float]] = {}
        self._last_sweep = clock()
        self.updates = 0  # readings accepted
        self.stale = 0  # readings older than the one already held (late events), ignored

    def __len__(self) -> int:
        return len(self._fixes)

    def update_many(self, readings: Iterable[Reading]) -> None:
        now = self._clock()
        with self._lock:
            fixes, dirty = self._fixes, self._dirty
            for device, lat, lon, speed, event_ms in readings:
                fix = fixes.get(device)
                if fix is None:
                    fixes[device] = Fix(lat, lon, speed, event_ms, now)
                elif event_ms >= fix.event_ms:
                    fix.lat, fix.lon, fix.speed, fix.event_ms, fix.seen = (
                        lat,
                        lon,
                        speed,
                        event_ms,
                        now,
                    )
                else:
                    self.stale += 1
                    continue
                dirty.add(device)
                self.updates += 1

    def take_changes(self) -> Changes:
        """What changed since the last call: one row per vehicle at most, and the gone ones."""
        now = self._clock()
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            picked = [(d, self._fixes[d]) for d in dirty if d in self._fixes]
            gone = self._sweep(now) if now - self._last_sweep >= 1.0 else []
        rows: list[list] = []
        t0 = min(f.event_ms for _, f in picked) if picked else int(time.time() * 1000)
        sent = self._sent
        for device, fix in picked:
            key = (
                round(fix.lat, LATLON_DECIMALS),
                round(fix.lon, LATLON_DECIMALS),
                round(fix.speed, SPEED_DECIMALS),
            )
            if sent.get(device) == key:
                continue
            sent[device] = key
            rows.append([device, key[0], key[1], key[2], fix.event_ms - t0])
        for device in gone:
            sent.pop(device, None)
        return Changes(t0, rows, gone)

    def _sweep(self, now: float) -> list[str]:
        self._last_sweep = now
        cutoff = now - self.ttl_seconds
        gone = [d for d, f in self._fixes.items() if f.seen < cutoff]
        for device in gone:
            del self._fixes[device]
            self._dirty.discard(device)
        return gone

    def snapshot(self) -> dict:
        """Every vehicle's newest position, as one ``positions`` message."""
        with self._lock:
            items = [(d, f.lat, f.lon, f.speed, f.event_ms) for d, f in self._fixes.items()]
        t0 = min((i[4] for i in items), default=int(time.time() * 1000))
        rows = [
            [
                d,
                round(lat, LATLON_DECIMALS),
                round(lon, LATLON_DECIMALS),
                round(speed, SPEED_DECIMALS),
                ms - t0,
            ]
            for d, lat, lon, speed, ms in items
        ]
        return {"t0": t0, "v": rows, "gone": []}

    def newest(self, device: str) -> Fix | None:
        with self._lock:
            fix = self._fixes.get(device)
            return None if fix is None else Fix(fix.lat, fix.lon, fix.speed, fix.event_ms, fix.seen)
