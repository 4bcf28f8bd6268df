"""Fleet simulator: turns (seed, options) into the five event streams. Pure Python, no I/O.

Vehicles drive the London -> Birmingham route (``producer.route``). Simulated time is kept in
integer milliseconds from ``start_time``, so runs are exact and repeatable. Each vehicle:

- departs at a seeded moment in the first three minutes, then ticks every ``tick_seconds``;
- at every tick sends one ``vehicle`` and one ``gps`` event for its position at that moment, then
  drives on for one tick at a speed that follows its segment's road class (urban, A-road,
  motorway), its own driving style, its vehicle class's limit and a little jitter;
- sends a ``traffic_camera`` event at the exact (interpolated) moment it passes a camera;
- samples the weather field (``producer.weather``) at its position every
  ``weather_every_seconds``;
- reports Poisson ``emergency`` incidents, Active then Resolved (``producer.incidents``);
- ends its journey at the last waypoint with a final vehicle and gps event at the destination
  (speed 0); incidents still open then are resolved at that moment, and the vehicle sends
  nothing more.

Events come out in non-decreasing ``emit_time`` order. Late events (``late_fraction``) are held
back and sent after later events; duplicates (``duplicate_fraction``) are sent again with the
same id and payload a few ticks later. Injection uses its own random stream, so a run with
injection holds exactly the events of the same run without it, plus the duplicate copies.

Vehicles tick in rounds of ``tick_seconds``. A vehicle's phase within the round is fixed (its
departure time modulo the tick), so iterating the vehicles sorted by phase visits the ticks in
time order without a priority queue; a small heap holds only the events that fall between ticks
(cameras, weather, incidents, arrivals, late and duplicate copies).
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from emr_jobs.core.contracts import CONTRACTS, STREAMS
from producer.incidents import Incident, draw_incident, next_gap_ms, resolved_description
from producer.route import Route, load_data, load_route
from producer.weather import WeatherField

MAX_VEHICLES = 10_000
DEPARTURE_WINDOW_S = 180.0  # vehicles leave Marble Arch within the first three minutes
SPEED_TIME_CONSTANT_S = 10.0  # how fast a vehicle's speed follows its target
SPEED_JITTER_KMH = 3.0
MIN_SPEED_KMH = 3.0  # while driving; the final event at the destination reports 0
OVERSPEED_KMH = 12.0  # jitter never takes a vehicle more than this above its target
CAMERA_ERROR_KMH = 1.5
GPS_ACCURACY_M = {"urban": 8.0, "a_road": 5.0, "motorway": 4.0}
DUPLICATE_MAX_DELAY_S = 59.0

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UUID_MASK = ~((0xC000 << 48) | (0xF000 << 64)) & ((1 << 128) - 1)
_UUID_V4 = (0x8000 << 48) | (4 << 76)


@dataclass(frozen=True)
class SimulationOptions:
    """What to simulate. Every value is checked; a bad one raises ValueError naming it."""

    vehicles: int = 5
    seed: int = 42
    start_time: datetime = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    tick_seconds: float = 5.0
    max_events: int | None = None
    late_fraction: float = 0.0
    late_max_seconds: float = 60.0
    duplicate_fraction: float = 0.0
    weather_every_seconds: float = 60.0
    incident_rate_per_hour: float = 0.5

    def __post_init__(self) -> None:
        if isinstance(self.vehicles, bool) or not isinstance(self.vehicles, int) \
                or not 1 <= self.vehicles <= MAX_VEHICLES:
            raise ValueError(f"vehicles must be an integer from 1 to {MAX_VEHICLES:,}, "
                             f"got {self.vehicles!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if not isinstance(self.start_time, datetime) or self.start_time.tzinfo is None \
                or self.start_time.utcoffset() is None:
            raise ValueError("start_time must be a timezone-aware datetime")
        if not 0.001 <= self.tick_seconds <= 3600:
            raise ValueError(f"tick_seconds must be from 0.001 to 3600, got {self.tick_seconds!r}")
        if self.max_events is not None and (
                isinstance(self.max_events, bool) or not isinstance(self.max_events, int)
                or self.max_events < 0):
            raise ValueError(f"max_events must be None or an integer >= 0, got {self.max_events!r}")
        for name in ("late_fraction", "duplicate_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be from 0 to 1, got {value!r}")
        if not 0.0 <= self.late_max_seconds <= 3600 or (
                self.late_fraction > 0 and self.late_max_seconds < 0.001):
            raise ValueError("late_max_seconds must be from 0.001 to 3600, "
                             f"got {self.late_max_seconds!r}")
        if not 0.001 <= self.weather_every_seconds <= 86_400:
            raise ValueError("weather_every_seconds must be from 0.001 to 86400, "
                             f"got {self.weather_every_seconds!r}")
        if not 0.0 <= self.incident_rate_per_hour <= 3600:
            raise ValueError("incident_rate_per_hour must be from 0 to 3600, "
                             f"got {self.incident_rate_per_hour!r}")


@dataclass(frozen=True, slots=True)
class Event:
    """One event of one stream. ``payload`` is contract-shaped; treat it as read-only (a
    duplicate shares its original's payload)."""

    stream: str  # one of STREAMS
    key: str  # the deviceId (Kafka key)
    emit_time: datetime  # simulated moment it is sent: its timestamp, or later when late
    payload: dict
    injected: str = ""  # "", "late" or "duplicate"


@dataclass
class SimulationStats:
    """Counts of what :meth:`Simulation.events` has yielded so far."""

    vehicles: int = 0
    events: int = 0
    by_stream: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STREAMS, 0))
    late: int = 0  # events sent late (held back)
    duplicates: int = 0  # extra copies sent
    incidents: int = 0  # incidents that started (Active events created)
    vehicles_arrived: int = 0

    @property
    def injected(self) -> dict[str, int]:
        return {"late": self.late, "duplicate": self.duplicates}


@dataclass(slots=True)
class _Vehicle:
    device_id: str
    make: str
    model: str
    year: int
    fuel_type: str
    vehicle_type: str
    depart_ms: int
    phase_ms: int  # depart_ms modulo the tick: when in each round this vehicle ticks
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
    incidents: list[Incident] | None = None
    arrived: bool = False


_EVENT_FIELDS = ("stream", "key", "emit_time", "payload", "injected")
assert tuple(f.name for f in fields(Event)) == _EVENT_FIELDS, "update _make_event"
_new_event = object.__new__
_set_stream, _set_key, _set_emit_time, _set_payload, _set_injected = (
    Event.__dict__[name].__set__ for name in _EVENT_FIELDS)


def _make_event(stream: str, key: str, emit_time: datetime, payload: dict) -> Event:
    """``Event(stream, key, emit_time, payload)``, twice as fast: a frozen dataclass's
    ``__init__`` sets each field through ``object.__setattr__`` by name; this sets the slots
    directly. The simulator makes two per vehicle per tick."""
    event = _new_event(Event)
    _set_stream(event, stream)
    _set_key(event, key)
    _set_emit_time(event, emit_time)
    _set_payload(event, payload)
    _set_injected(event, "")
    return event


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


@lru_cache(maxsize=1)
def _seconds_millis() -> tuple[str, ...]:
    """"SS.mmmZ" for every millisecond of a minute: timestamp = minute prefix + this."""
    return tuple(f"{s:02d}.{ms:03d}Z" for s in range(60) for ms in range(1000))


def _minute_prefix(minute: int) -> str:
    return (_EPOCH + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:")


class Simulation:
    """A fleet run. ``events()`` yields the stream lazily; ``stats`` counts what it yielded."""

    def __init__(self, options: SimulationOptions | None = None, route: Route | None = None):
        self.options = options or SimulationOptions()
        self.route = route or load_route()
        start = self.options.start_time.astimezone(UTC)
        self.start_time = start.replace(microsecond=start.microsecond // 1000 * 1000)
        self._base_ms = (self.start_time - _EPOCH) // timedelta(milliseconds=1)
        self._tick_ms = max(1, round(self.options.tick_seconds * 1000))
        self.weather = WeatherField(self.options.seed, self.start_time)
        self.stats = SimulationStats(vehicles=self.options.vehicles)

    # -- public ---------------------------------------------------------------------------------

    def events(self) -> Iterator[Event]:
        """The events in non-decreasing ``emit_time`` order, up to ``max_events``."""
        o = self.options
        self.stats = stats = SimulationStats(vehicles=o.vehicles)
        limit = o.max_events
        if limit == 0:
            return
        by_stream = stats.by_stream
        for n, event in enumerate(self._generate(stats), 1):
            by_stream[event.stream] += 1
            if event.injected:
                if event.injected == "late":
                    stats.late += 1
                else:
                    stats.duplicates += 1
            stats.events = n
            yield event
            if n == limit:
                return

    # -- the fleet ------------------------------------------------------------------------------

    def _build_fleet(self, incident_rng: random.Random) -> list[_Vehicle]:
        """Vehicle ``i`` depends only on the seed and ``i``, not on the fleet size."""
        o = self.options
        cat = _fleet_catalogue()
        rng = random.Random(f"smartcity-fleet:{o.seed}")
        total_km = self.route.total_m / 1000
        width = len(str(o.vehicles))
        tick = self._tick_ms
        fleet = []
        for i in range(o.vehicles):
            vtype = rng.choices(cat["types"], cum_weights=cat["cum_weights"])[0]
            model = rng.choice(cat["models"][vtype])
            fuel_type = rng.choice(model["fuelTypes"])
            year = rng.randint(*model["years"])
            depart = rng.randrange(int(DEPARTURE_WINDOW_S * 1000))
            pct_per_km = cat["consumption"][vtype][fuel_type]
            # Start with enough in the tank for the trip at motorway speed, and then some.
            lowest = min(98.0, 15.0 + pct_per_km * total_km * 1.35)
            gap = next_gap_ms(incident_rng, o.incident_rate_per_hour)
            fleet.append(_Vehicle(
                device_id=f"vehicle-{i + 1:0{max(width, 5)}d}",
                make=model["make"], model=model["model"], year=year,
                fuel_type=fuel_type, vehicle_type=vtype,
                depart_ms=depart, phase_ms=depart % tick, start_round=depart // tick,
                skill=rng.uniform(0.15, 0.95), cap_kmh=cat["cap_kmh"][vtype],
                fuel=round(rng.uniform(lowest, 100.0), 2), fuel_per_m=pct_per_km / 1000,
                next_weather_ms=depart,
                next_incident_ms=None if gap is None else depart + gap,
            ))
        return fleet

    # -- the stream -----------------------------------------------------------------------------

    def _generate(self, stats: SimulationStats) -> Iterator[Event]:
        o = self.options
        route = self.route
        incident_rng = random.Random(f"smartcity-incidents:{o.seed}")
        fleet = self._build_fleet(incident_rng)
        motion = random.Random(f"smartcity-motion:{o.seed}")
        rand = motion.random
        ids = random.Random(f"smartcity-ids:{o.seed}")
        getbits = ids.getrandbits
        inject_rng = random.Random(f"smartcity-inject:{o.seed}")
        irand = inject_rng.random

        tick_ms = self._tick_ms
        alpha = 1.0 - math.exp(-(tick_ms / 1000) / SPEED_TIME_CONSTANT_S)
        jitter = SPEED_JITTER_KMH
        weather_ms = max(1, round(o.weather_every_seconds * 1000))
        rate = o.incident_rate_per_hour
        late_p, dup_p = o.late_fraction, o.duplicate_fraction
        inject = late_p > 0 or dup_p > 0
        late_max_ms = round(o.late_max_seconds * 1000)
        late_min_ms = min(tick_ms, late_max_ms)
        dup_max_ms = min(3 * tick_ms, int(DUPLICATE_MAX_DELAY_S * 1000))
        dup_min_ms = min(tick_ms, dup_max_ms)

        base_dt, base_ms = self.start_time, self._base_ms
        td = timedelta  # td(0, 0, 0, ms): milliseconds, passed positionally (cheaper)
        sec_ms = _seconds_millis()
        prefixes: dict[int, str] = {}
        lats = tuple(w.lat for w in route.waypoints)
        lons = tuple(w.lon for w in route.waypoints)
        cum, total = route.cum_m, route.total_m
        last_seg = len(cum) - 2
        dlat, dlon, bearing = route.seg_dlat, route.seg_dlon, route.seg_bearing
        seg_lo = route.seg_min_kmh
        seg_span = tuple(hi - lo for lo, hi in zip(route.seg_min_kmh, route.seg_max_kmh,
                                                   strict=True))
        seg_acc = tuple(GPS_ACCURACY_M.get(c, 6.0) for c in route.seg_class)
        cameras = route.cameras
        cam_d = tuple(c.distance_m for c in cameras)
        ncam = len(cameras)
        dest_lat, dest_lon = round(route.destination.lat, 6), round(route.destination.lon, 6)
        final_dir = bearing[last_seg]
        vv, gv = CONTRACTS["vehicle"].version, CONTRACTS["gps"].version
        cv, wv = CONTRACTS["traffic_camera"].version, CONTRACTS["weather"].version
        ev_v = CONTRACTS["emergency"].version
        sample = self.weather.sample
        make_event = _make_event

        heap: list[tuple[int, int, Event | None]] = []
        seq = itertools.count()
        push, pop = heapq.heappush, heapq.heappop

        def stamp(ms: int) -> str:
            a = base_ms + ms
            minute = a // 60000
            prefix = prefixes.get(minute)
            if prefix is None:
                prefix = prefixes[minute] = _minute_prefix(minute)
            return prefix + sec_ms[a - minute * 60000]

        def new_id() -> str:
            h = ((getbits(128) & _UUID_MASK) | _UUID_V4).to_bytes(16, "big").hex()
            return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

        def position(d: float, seg: int) -> tuple[float, float]:
            while seg < last_seg and cum[seg + 1] <= d:
                seg += 1
            off = d - cum[seg]
            return round(lats[seg] + off * dlat[seg], 6), round(lons[seg] + off * dlon[seg], 6)

        def schedule(ms: int, stream: str, key: str, payload: dict) -> None:
            """Queue an event with timestamp ``ms``, applying late/duplicate injection."""
            emit, kind = ms, ""
            if inject:
                if late_p and irand() < late_p:
                    emit, kind = ms + inject_rng.randint(late_min_ms, late_max_ms), "late"
                if dup_p and irand() < dup_p:
                    d = ms + inject_rng.randint(dup_min_ms, dup_max_ms)
                    push(heap, (d, next(seq), Event(stream, key, base_dt + td(0, 0, 0, d),
                                                    payload, "duplicate")))
            push(heap, (emit, next(seq), Event(stream, key, base_dt + td(0, 0, 0, emit),
                                               payload, kind)))

        def now(ms: int, emit_time: datetime, stream: str, key: str, payload: dict) -> Event | None:
            """An event sent at its timestamp ``ms`` unless injection holds it back."""
            late = late_p and irand() < late_p
            if dup_p and irand() < dup_p:
                d = ms + inject_rng.randint(dup_min_ms, dup_max_ms)
                push(heap, (d, next(seq), Event(stream, key, base_dt + td(0, 0, 0, d),
                                                payload, "duplicate")))
            if late:
                e = ms + inject_rng.randint(late_min_ms, late_max_ms)
                push(heap, (e, next(seq), Event(stream, key, base_dt + td(0, 0, 0, e),
                                                payload, "late")))
                return None
            return Event(stream, key, emit_time, payload)

        def resolve(v: _Vehicle, inc: Incident, ms: int, at_arrival: bool) -> None:
            schedule(ms, "emergency", v.device_id, {
                "id": new_id(), "schemaVersion": ev_v, "deviceId": v.device_id,
                "timestamp": stamp(ms),
                "location": {"latitude": inc.latitude, "longitude": inc.longitude},
                "incidentId": inc.incident_id, "type": inc.type, "status": "Resolved",
                "description": resolved_description(inc.description, at_arrival),
            })

        def between_ticks(v: _Vehicle, t0: int, t1: int, d0: float, mps: float,
                          arriving: bool) -> None:
            """Cameras passed, weather samples and incidents in [t0, t1) while driving at
            ``mps`` from ``d0``; ``t1`` is the arrival time when ``arriving``."""
            seg = v.seg
            d1 = total if arriving else d0 + mps * (t1 - t0) / 1000
            ci = v.cam
            while ci < ncam and cam_d[ci] <= d1:
                cam = cameras[ci]
                tc = min(t1, t0 + math.ceil((cam_d[ci] - d0) / mps * 1000))
                cid = new_id()
                stamp_c = stamp(tc)
                schedule(tc, "traffic_camera", v.device_id, {
                    "id": cid, "schemaVersion": cv, "deviceId": v.device_id, "timestamp": stamp_c,
                    "location": {"latitude": round(cam.lat, 6), "longitude": round(cam.lon, 6)},
                    "cameraId": cam.id,
                    "measuredSpeed": round(
                        max(0.0, v.speed + (rand() - 0.5) * 2 * CAMERA_ERROR_KMH), 1),
                    "snapshot": f"snapshots/{cam.id}/{stamp_c[:10]}/{cid}.jpg",
                })
                ci += 1
            v.cam = ci
            tw = v.next_weather_ms
            while tw < t1:
                lat, lon = position(d0 + mps * (tw - t0) / 1000, seg)
                w = sample(lat, lon, tw / 1000)
                schedule(tw, "weather", v.device_id, {
                    "id": new_id(), "schemaVersion": wv, "deviceId": v.device_id,
                    "timestamp": stamp(tw), "location": {"latitude": lat, "longitude": lon},
                    "temperature": round(w.temperature, 1), "weatherCondition": w.condition,
                    "precipitation": round(w.precipitation, 2),
                    "windSpeed": round(w.wind_speed, 1), "humidity": round(w.humidity, 1),
                    "airQualityIndex": round(w.air_quality_index, 1),
                })
                tw += weather_ms
            v.next_weather_ms = tw
            ti = v.next_incident_ms
            while ti is not None and ti < t1:
                d = d0 + mps * (ti - t0) / 1000
                lat, lon = position(d, seg)
                kind, description, duration = draw_incident(
                    incident_rng, route.nearest_waypoint(d).name)
                inc = Incident(new_id(), kind, description, ti + duration, lat, lon)
                stats.incidents += 1
                schedule(ti, "emergency", v.device_id, {
                    "id": new_id(), "schemaVersion": ev_v, "deviceId": v.device_id,
                    "timestamp": stamp(ti), "location": {"latitude": lat, "longitude": lon},
                    "incidentId": inc.incident_id, "type": kind, "status": "Active",
                    "description": description,
                })
                if v.incidents is None:
                    v.incidents = []
                v.incidents.append(inc)
                gap = next_gap_ms(incident_rng, rate)
                ti = None if gap is None else ti + gap
            v.next_incident_ms = ti
            if v.incidents:
                still_open = []
                for inc in v.incidents:
                    if inc.resolve_ms < t1:
                        resolve(v, inc, inc.resolve_ms, False)
                    elif arriving:
                        resolve(v, inc, t1, True)
                    else:
                        still_open.append(inc)
                v.incidents = still_open or None

        def arrive(v: _Vehicle, t_arr: int) -> None:
            """The final vehicle and gps events, at the destination."""
            ts = stamp(t_arr)
            dev = v.device_id
            schedule(t_arr, "vehicle", dev, {
                "id": new_id(), "schemaVersion": vv, "deviceId": dev, "timestamp": ts,
                "location": {"latitude": dest_lat, "longitude": dest_lon}, "speed": 0.0,
                "direction": final_dir, "make": v.make, "model": v.model, "year": v.year,
                "fuelType": v.fuel_type, "fuelLevel": round(v.fuel, 2),
                "odometerKm": round(total / 1000, 3), "vehicleType": v.vehicle_type,
            })
            schedule(t_arr, "gps", dev, {
                "id": new_id(), "schemaVersion": gv, "deviceId": dev, "timestamp": ts,
                "location": {"latitude": dest_lat, "longitude": dest_lon}, "speed": 0.0,
                "direction": final_dir, "accuracyM": round(seg_acc[last_seg] + 2 * rand(), 1),
                "vehicleType": v.vehicle_type,
            })
            push(heap, (t_arr, next(seq), None))  # marks the arrival for the stats
            v.arrived = True

        active = sorted(fleet, key=lambda v: v.phase_ms)  # stable: ties keep fleet order
        rnd = 0
        while active:
            round_ms = rnd * tick_ms
            someone_arrived = False
            for v in active:
                if rnd < v.start_round:
                    continue
                T = round_ms + v.phase_ms
                while heap and heap[0][0] <= T:
                    item = pop(heap)[2]
                    if item is None:
                        stats.vehicles_arrived += 1
                    else:
                        yield item
                # Speed for the coming tick: follow the target, with jitter.
                seg = v.seg
                dist = v.dist
                target = seg_lo[seg] + v.skill * seg_span[seg]
                if target > v.cap_kmh:
                    target = v.cap_kmh
                sp = v.speed
                sp += alpha * (target - sp) + (rand() + rand() - 1.0) * jitter
                if sp < MIN_SPEED_KMH:
                    sp = MIN_SPEED_KMH
                elif sp > target + OVERSPEED_KMH:
                    sp = target + OVERSPEED_KMH
                v.speed = sp
                # Where the vehicle is now: the vehicle and gps events.
                off = dist - cum[seg]
                lat = round(lats[seg] + off * dlat[seg], 6)
                lon = round(lons[seg] + off * dlon[seg], 6)
                a = base_ms + T
                minute = a // 60000
                prefix = prefixes.get(minute)
                if prefix is None:
                    prefix = prefixes[minute] = _minute_prefix(minute)
                ts = prefix + sec_ms[a - minute * 60000]
                emit_time = base_dt + td(0, 0, 0, T)
                dev = v.device_id
                speed = round(sp, 1)
                heading = bearing[seg]
                vtype = v.vehicle_type
                h = ((getbits(128) & _UUID_MASK) | _UUID_V4).to_bytes(16, "big").hex()
                h2 = ((getbits(128) & _UUID_MASK) | _UUID_V4).to_bytes(16, "big").hex()
                pv = {
                    "id": f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}",
                    "schemaVersion": vv, "deviceId": dev, "timestamp": ts,
                    "location": {"latitude": lat, "longitude": lon},
                    "speed": speed, "direction": heading, "make": v.make, "model": v.model,
                    "year": v.year, "fuelType": v.fuel_type, "fuelLevel": round(v.fuel, 2),
                    "odometerKm": round(dist / 1000, 3), "vehicleType": vtype,
                }
                pg = {
                    "id": f"{h2[:8]}-{h2[8:12]}-{h2[12:16]}-{h2[16:20]}-{h2[20:]}",
                    "schemaVersion": gv, "deviceId": dev, "timestamp": ts,
                    "location": {"latitude": lat, "longitude": lon},
                    "speed": speed, "direction": heading,
                    "accuracyM": round(seg_acc[seg] + 2 * rand(), 1), "vehicleType": vtype,
                }
                if inject:
                    e = now(T, emit_time, "vehicle", dev, pv)
                    if e is not None:
                        yield e
                    e = now(T, emit_time, "gps", dev, pg)
                    if e is not None:
                        yield e
                else:
                    yield make_event("vehicle", dev, emit_time, pv)
                    yield make_event("gps", dev, emit_time, pg)
                # Drive on for one tick (or to the destination).
                mps = sp / 3.6
                step = mps * tick_ms / 1000
                new_dist = dist + step
                arriving = new_dist >= total
                if arriving:
                    step = total - dist
                    t1 = T + min(tick_ms, max(1, math.ceil(step / mps * 1000)))
                else:
                    t1 = T + tick_ms
                if v.cam < ncam and cam_d[v.cam] <= new_dist or v.next_weather_ms < t1 or (
                        v.next_incident_ms is not None and v.next_incident_ms < t1) or v.incidents:
                    between_ticks(v, T, t1, dist, mps, arriving)
                fuel = v.fuel - step * v.fuel_per_m * (0.75 + 0.45 * (sp * 0.01) ** 2)
                v.fuel = fuel if fuel > 0.0 else 0.0
                if arriving:
                    arrive(v, t1)
                    someone_arrived = True
                else:
                    v.dist = new_dist
                    while seg < last_seg and cum[seg + 1] <= new_dist:
                        seg += 1
                    v.seg = seg
            if someone_arrived:
                active = [v for v in active if not v.arrived]
            rnd += 1
        while heap:
            item = pop(heap)[2]
            if item is None:
                stats.vehicles_arrived += 1
            else:
                yield item


def simulate(options: SimulationOptions | None = None) -> Iterator[Event]:
    """The simulated fleet's events, lazily, in non-decreasing ``emit_time`` order."""
    return Simulation(options).events()
