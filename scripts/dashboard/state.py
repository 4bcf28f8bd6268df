"""What the dashboard knows right now, built from the live topics. Pure Python, no I/O.

The Kafka thread (``feeds``) hands every record to :meth:`LiveState.ingest`. Vehicle positions
go to the coalescing :class:`~scripts.dashboard.positions.VehiclePositions`; alerts, incidents
and road conditions are rare, so each change is also handed to ``listener`` at once (the
server pushes it to browsers without waiting for the next tick).

Sources, per panel:

- markers: the ``vehicle`` stream (position, speed);
- incidents on the map: the ``emergency`` stream (Active, then Resolved);
- the alert feed: the job's ``alerts`` topic (contract ``alerts.json``, key = alert id);
- slow and wet sections and the charts: the job's ``road_conditions`` topic (one record per
  section and window, ``road_conditions.json``);
- foggy sections: ``weather`` readings of ``Fog`` placed on the route, because the
  road-conditions contract has no fog or visibility field.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from emr_jobs.core.contracts import CONTRACTS
from emr_jobs.core.contracts.roads import RoadSection, place, sections
from scripts.dashboard.positions import Reading, VehiclePositions

log = logging.getLogger(__name__)

SEVERITIES = ("info", "warning", "critical")
ALERT_LIMIT = 200
INCIDENT_LIMIT = 2_000
#: A section is slow when its mean speed is below this share of its limit.
SLOW_SHARE = 0.6
#: A section is wet at this mean precipitation, mm/h, or more.
WET_MM_PER_H = 0.5
#: A fog reading marks its section foggy for this long (event time).
FOG_MINUTES = 10
#: A reading further than this from the route is not placed on a section.
OFF_ROUTE_KM = 2.0

Listener = Callable[[str, object], None]


def epoch_ms(text: str) -> int:
    """ISO-8601 (``...Z`` or an offset) to epoch milliseconds."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)


@dataclass
class StreamStats:
    received: int = 0
    invalid: int = 0
    newest_event_ms: int | None = None  # newest event time received on the topic


class LiveState:
    """The live picture: positions, alerts, incidents, road conditions, fog; thread-safe."""

    def __init__(
        self,
        *,
        history_minutes: int = 30,
        vehicle_ttl_seconds: float = 600.0,
        route: tuple[RoadSection, ...] | None = None,
    ) -> None:
        self.sections = route or sections()
        self.section_ids = {s.id for s in self.sections}
        self.limits = {s.id: s.limit_kmh for s in self.sections}
        self.history_ms = history_minutes * 60_000
        self.positions = VehiclePositions(ttl_seconds=vehicle_ttl_seconds)
        self.listener: Listener | None = None
        self.stats: dict[str, StreamStats] = {}
        self._lock = threading.Lock()
        self._alerts: OrderedDict[str, dict] = OrderedDict()
        self._incidents: OrderedDict[str, dict] = OrderedDict()
        self._conditions: dict[str, deque[dict]] = {}
        self._newest_window_ms = 0
        self._fog: dict[str, int] = {}  # section -> event ms of the newest fog reading
        self._newest_weather_ms = 0

    # --- ingest ---------------------------------------------------------------------------

    def stream(self, name: str) -> StreamStats:
        stats = self.stats.get(name)
        if stats is None:
            stats = self.stats[name] = StreamStats()
        return stats

    def ingest_vehicles(self, events: list[dict]) -> None:
        """A batch of ``vehicle`` events: positions only (the hot path)."""
        stats = self.stream("vehicle")
        readings: list[Reading] = []
        newest = stats.newest_event_ms or 0
        for event in events:
            try:
                loc = event["location"]
                ms = epoch_ms(event["timestamp"])
                readings.append(
                    (
                        event["deviceId"],
                        float(loc["latitude"]),
                        float(loc["longitude"]),
                        float(event["speed"]),
                        ms,
                    )
                )
            except (KeyError, TypeError, ValueError):
                stats.invalid += 1
                continue
            if ms > newest:
                newest = ms
        stats.received += len(events)
        stats.newest_event_ms = newest or None
        self.positions.update_many(readings)

    def ingest(self, stream: str, event: object, kafka_ms: int | None = None) -> None:
        """One record of a low-volume stream (emergency, weather, alerts, road_conditions);
        ``kafka_ms`` is the record's Kafka timestamp (when it was written to the topic)."""
        stats = self.stream(stream)
        stats.received += 1
        if stream == "weather":  # about one per vehicle per minute: a light check only
            ok = isinstance(event, dict) and isinstance(event.get("timestamp"), str)
        else:
            ok = not CONTRACTS[stream].violations(event)
        if not ok:
            stats.invalid += 1
            if stats.invalid == 1:
                log.warning("%s: a record does not match its contract; skipped (counted)", stream)
            return
        assert isinstance(event, dict)
        try:
            ms = epoch_ms(event["timestamp"])
        except ValueError:
            stats.invalid += 1
            return
        if stats.newest_event_ms is None or ms > stats.newest_event_ms:
            stats.newest_event_ms = ms
        handler = {
            "alerts": self._alert,
            "emergency": self._incident,
            "road_conditions": self._road_condition,
            "weather": self._weather,
        }.get(stream)
        if handler is not None:
            handler(event, ms, kafka_ms)

    def _notify(self, kind: str, data: object) -> None:
        if self.listener is not None:
            self.listener(kind, data)

    def _alert(self, alert: dict, ms: int, kafka_ms: int | None) -> None:
        item = dict(alert, timestampMs=ms, kafkaMs=kafka_ms)
        with self._lock:
            self._alerts[alert["id"]] = item  # a repeat (at least once) replaces, never doubles
            if len(self._alerts) > ALERT_LIMIT * 2:
                for key, _ in sorted(self._alerts.items(), key=lambda kv: kv[1]["timestampMs"])[
                    : len(self._alerts) - ALERT_LIMIT
                ]:
                    del self._alerts[key]
        self._notify("alert", item)

    def _incident(self, event: dict, ms: int, kafka_ms: int | None) -> None:
        incident_id = event["incidentId"]
        loc = event["location"]
        if event["status"] == "Resolved":
            with self._lock:
                known = self._incidents.pop(incident_id, None)
            if known is not None:
                self._notify("incident", {"incidentId": incident_id, "status": "Resolved"})
            return
        spot = place(loc["latitude"], loc["longitude"], self.sections)
        item = {
            "incidentId": incident_id,
            "status": "Active",
            "type": event["type"],
            "description": event.get("description") or "",
            "deviceId": event["deviceId"],
            "timestamp": event["timestamp"],
            "timestampMs": ms,
            "kafkaMs": kafka_ms,
            "lat": loc["latitude"],
            "lon": loc["longitude"],
            "section": spot.section.id if spot.off_route_km <= OFF_ROUTE_KM else "",
        }
        with self._lock:
            self._incidents[incident_id] = item
            while len(self._incidents) > INCIDENT_LIMIT:
                self._incidents.popitem(last=False)
        self._notify("incident", item)

    def _road_condition(self, record: dict, ms: int, kafka_ms: int | None) -> None:
        section = record["section"]
        item = dict(record, timestampMs=ms)
        with self._lock:
            history = self._conditions.setdefault(section, deque())
            if history and history[-1]["timestampMs"] == ms:
                history[-1] = item  # the same window again (at least once): replace
            elif history and history[-1]["timestampMs"] > ms:
                return  # an older window than the newest held: charts keep time order
            else:
                history.append(item)
            if ms > self._newest_window_ms:
                self._newest_window_ms = ms
            self._prune_conditions()
        self._notify("condition", item)

    def _prune_conditions(self) -> None:
        cutoff = self._newest_window_ms - self.history_ms
        for history in self._conditions.values():
            while history and history[0]["timestampMs"] < cutoff:
                history.popleft()

    def _weather(self, event: dict, ms: int, kafka_ms: int | None) -> None:
        self._newest_weather_ms = max(self._newest_weather_ms, ms)
        if event.get("weatherCondition") != "Fog":
            return
        loc = event.get("location") or {}
        try:
            spot = place(float(loc["latitude"]), float(loc["longitude"]), self.sections)
        except (KeyError, TypeError, ValueError):
            return
        if spot.off_route_km <= OFF_ROUTE_KM:
            with self._lock:
                self._fog[spot.section.id] = max(ms, self._fog.get(spot.section.id, 0))

    # --- read -------------------------------------------------------------------------------

    def alerts(self, limit: int = ALERT_LIMIT) -> list[dict]:
        """Newest first (event time, then detection time)."""
        with self._lock:
            items = list(self._alerts.values())
        items.sort(key=lambda a: (a["timestampMs"], a.get("detectedAt", "")), reverse=True)
        return items[:limit]

    def incidents(self) -> list[dict]:
        with self._lock:
            return list(self._incidents.values())

    def conditions(self) -> dict[str, list[dict]]:
        """Per section, its road-condition windows of the last ``history_minutes``, oldest first."""
        with self._lock:
            return {s: list(h) for s, h in self._conditions.items() if h}

    def section_flags(self) -> dict[str, list[str]]:
        """Per section with something to show: any of slow, wet, fog, incident."""
        flags: dict[str, set[str]] = {}
        with self._lock:
            recent = self._newest_window_ms - 2 * 60_000  # only a section's current windows
            for section, history in self._conditions.items():
                if not history or history[-1]["timestampMs"] < recent:
                    continue
                last = history[-1]
                avg, limit = last.get("avgSpeed"), last.get("speedLimit") or 0
                if avg is not None and last.get("vehicleCount", 0) and avg < SLOW_SHARE * limit:
                    flags.setdefault(section, set()).add("slow")
                if (last.get("precipitation") or 0) >= WET_MM_PER_H:
                    flags.setdefault(section, set()).add("wet")
            fog_after = self._newest_weather_ms - FOG_MINUTES * 60_000
            for section, ms in self._fog.items():
                if ms >= fog_after:
                    flags.setdefault(section, set()).add("fog")
            for incident in self._incidents.values():
                if incident["section"]:
                    flags.setdefault(incident["section"], set()).add("incident")
        return {s: sorted(f) for s, f in sorted(flags.items())}

    def counts(self) -> dict[str, dict[str, int | None]]:
        return {name: vars(s).copy() for name, s in sorted(self.stats.items())}

    def severity_counts(self) -> dict[str, int]:
        return dict(Counter(a["severity"] for a in self.alerts()))
