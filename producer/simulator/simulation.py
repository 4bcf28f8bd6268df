"""The fleet run: :class:`Simulation` turns (seed, options) into the events, in emit order.

Vehicles tick in rounds of ``tick_seconds``. A vehicle's phase within the round is fixed (its
departure time modulo the tick), so iterating the vehicles sorted by phase visits the ticks in
time order without a priority queue. A small heap (:class:`_Queue`) holds only the events that
fall between ticks (cameras, weather, incidents, arrivals, late and duplicate copies).

:meth:`_Run.events` is the hot loop: two events per vehicle per tick. It binds what it uses to
locals once. Per tick it makes the speed and the position inline and calls only the id and
timestamp sources, the two payload builders (:mod:`producer.simulator.payloads`), the event
constructor and :meth:`_Run.drive`; what happens between ticks (cameras, weather, incidents,
arrival) runs in ``_Run``'s other methods, only on the ticks where something falls due.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from producer.simulator.events import Event, SimulationStats, make_event
from producer.simulator.fleet import Vehicle, build_fleet
from producer.simulator.incidents import (
    Incident,
    draw_incident,
    next_gap_ms,
    resolved_description,
)
from producer.simulator.options import SimulationOptions
from producer.simulator.payloads import (
    camera_payload,
    emergency_payload,
    gps_payload,
    timestamp_source,
    uuid4_source,
    vehicle_payload,
    weather_payload,
)
from producer.simulator.route import Route, load_route
from producer.simulator.weather import WeatherField

SPEED_TIME_CONSTANT_S = 10.0  # how fast a vehicle's speed follows its target
SPEED_JITTER_KMH = 3.0
MIN_SPEED_KMH = 3.0  # while driving; the final event at the destination reports 0
OVERSPEED_KMH = 12.0  # jitter never takes a vehicle more than this above its target
CAMERA_ERROR_KMH = 1.5
GPS_ACCURACY_M = {"urban": 8.0, "a_road": 5.0, "motorway": 4.0}
DUPLICATE_MAX_DELAY_S = 59.0

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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

    def events(self) -> Iterator[Event]:
        """The events in non-decreasing ``emit_time`` order, up to ``max_events``."""
        o = self.options
        self.stats = stats = SimulationStats(vehicles=o.vehicles)
        limit = o.max_events
        if limit == 0:
            return
        by_stream = stats.by_stream
        for n, event in enumerate(_Run(self, stats).events(), 1):
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


def simulate(options: SimulationOptions | None = None) -> Iterator[Event]:
    """The simulated fleet's events, lazily, in non-decreasing ``emit_time`` order."""
    return Simulation(options).events()


class _Queue:
    """The events that fall between ticks, by emit time, and the late/duplicate injection.

    Injection draws from its own random stream, so a run with injection holds exactly the events
    of the same run without it, plus the duplicate copies."""

    def __init__(
        self, options: SimulationOptions, tick_ms: int, base_dt: datetime, stats: SimulationStats
    ) -> None:
        self.heap: list[tuple[int, int, Event | None]] = []
        self._seq = itertools.count()
        self._base_dt = base_dt
        self._stats = stats
        rng = random.Random(f"smartcity-inject:{options.seed}")
        self._random, self._randint = rng.random, rng.randint
        self.late_p, self.dup_p = options.late_fraction, options.duplicate_fraction
        self.injecting = self.late_p > 0 or self.dup_p > 0
        self._late_max = round(options.late_max_seconds * 1000)
        self._late_min = min(tick_ms, self._late_max)
        self._dup_max = min(3 * tick_ms, int(DUPLICATE_MAX_DELAY_S * 1000))
        self._dup_min = min(tick_ms, self._dup_max)

    def _push(self, emit_ms: int, stream: str, key: str, payload: dict, injected: str) -> None:
        event = Event(stream, key, self._base_dt + timedelta(0, 0, 0, emit_ms), payload, injected)
        heapq.heappush(self.heap, (emit_ms, next(self._seq), event))

    def schedule(self, ms: int, stream: str, key: str, payload: dict) -> None:
        """Queue an event with timestamp ``ms``, applying late/duplicate injection."""
        emit, kind = ms, ""
        if self.injecting:
            if self.late_p and self._random() < self.late_p:
                emit, kind = ms + self._randint(self._late_min, self._late_max), "late"
            if self.dup_p and self._random() < self.dup_p:
                dup = ms + self._randint(self._dup_min, self._dup_max)
                self._push(dup, stream, key, payload, "duplicate")
        self._push(emit, stream, key, payload, kind)

    def hold(
        self, ms: int, emit_time: datetime, stream: str, key: str, payload: dict
    ) -> Event | None:
        """A tick's event, sent at its timestamp ``ms`` (returned) unless injection holds it
        back (queued). Its random draws come in another order than :meth:`schedule`'s."""
        late = self.late_p and self._random() < self.late_p
        if self.dup_p and self._random() < self.dup_p:
            dup = ms + self._randint(self._dup_min, self._dup_max)
            self._push(dup, stream, key, payload, "duplicate")
        if late:
            self._push(
                ms + self._randint(self._late_min, self._late_max), stream, key, payload, "late"
            )
            return None
        return Event(stream, key, emit_time, payload)

    def hold_tick(
        self, ms: int, emit_time: datetime, key: str, vehicle: dict, gps: dict
    ) -> Iterator[Event]:
        """A tick's vehicle and gps events, each sent now unless injection holds it back."""
        for stream, payload in (("vehicle", vehicle), ("gps", gps)):
            event = self.hold(ms, emit_time, stream, key, payload)
            if event is not None:
                yield event

    def mark_arrival(self, ms: int) -> None:
        """Count a vehicle as arrived when the stream reaches ``ms``."""
        heapq.heappush(self.heap, (ms, next(self._seq), None))

    def release(self, until: float) -> Iterator[Event]:
        """The queued events due by ``until``, in order."""
        heap, pop = self.heap, heapq.heappop
        while heap and heap[0][0] <= until:
            item = pop(heap)[2]
            if item is None:
                self._stats.vehicles_arrived += 1
            else:
                yield item


class _Run:
    """One pass of the fleet down the route: the random streams, the route's tables, the queue.

    Each vehicle, in every round from its departure:

    - sets its speed for the coming tick: it follows the target of its segment's road class
      (urban, A-road, motorway), its own driving style and its vehicle class's limit, with a
      little jitter;
    - sends one ``vehicle`` and one ``gps`` event for its position at that moment;
    - drives on for one tick (:meth:`drive`); on the way it sends a ``traffic_camera`` event at
      the exact (interpolated) moment it passes a camera, samples the weather field every
      ``weather_every_seconds``, and reports Poisson ``emergency`` incidents, Active then
      Resolved;
    - at the last waypoint it sends a final vehicle and gps event at the destination (speed 0);
      incidents still open then are resolved at that moment, and it sends nothing more.
    """

    def __init__(self, sim: Simulation, stats: SimulationStats) -> None:
        o = sim.options
        route = self.route = sim.route
        self.stats = stats
        self.tick_ms = tick_ms = sim._tick_ms
        self.base_dt = sim.start_time
        self.incident_rng = random.Random(f"smartcity-incidents:{o.seed}")
        self.fleet = build_fleet(o, route, tick_ms, self.incident_rng)
        self.rand = random.Random(f"smartcity-motion:{o.seed}").random
        self.new_id, self.new_id_pair = uuid4_source(random.Random(f"smartcity-ids:{o.seed}"))
        self.stamp = timestamp_source(sim._base_ms)
        self.queue = _Queue(o, tick_ms, sim.start_time, stats)
        self.sample_weather = sim.weather.sample
        self.weather_ms = max(1, round(o.weather_every_seconds * 1000))
        self.incident_rate = o.incident_rate_per_hour
        self.alpha = 1.0 - math.exp(-(tick_ms / 1000) / SPEED_TIME_CONSTANT_S)
        # The route, as tuples indexed by segment.
        self.lats = tuple(w.lat for w in route.waypoints)
        self.lons = tuple(w.lon for w in route.waypoints)
        self.cum, self.total = route.cum_m, route.total_m
        self.last_seg = len(self.cum) - 2
        self.seg_acc = tuple(GPS_ACCURACY_M.get(c, 6.0) for c in route.seg_class)
        self.cameras = route.cameras
        self.cam_d = tuple(c.distance_m for c in route.cameras)
        self.destination = (round(route.destination.lat, 6), round(route.destination.lon, 6))
        for v in self.fleet:
            self.enter_segment(v, 0)
            v.next_camera_m = self.cam_d[0] if self.cam_d else math.inf

    # -- every tick -----------------------------------------------------------------------------

    def events(self) -> Iterator[Event]:
        """The run's events in emit order: round by round, each vehicle on the road ticks in
        phase order, after the queued events due by then."""
        queue, rand, stamp, new_id_pair = self.queue, self.rand, self.stamp, self.new_id_pair
        heap, release, hold_tick = queue.heap, queue.release, queue.hold_tick
        injecting, drive = queue.injecting, self.drive
        alpha, jitter = self.alpha, SPEED_JITTER_KMH
        slowest, overspeed = MIN_SPEED_KMH, OVERSPEED_KMH
        tick_ms, base_dt, td = self.tick_ms, self.base_dt, timedelta
        lats, lons, cum, seg_acc = self.lats, self.lons, self.cum, self.seg_acc
        route = self.route
        dlat, dlon, bearing = route.seg_dlat, route.seg_dlon, route.seg_bearing
        active = sorted(self.fleet, key=lambda v: v.phase_ms)  # stable: ties keep fleet order
        rnd = 0
        while active:
            round_ms = rnd * tick_ms
            round_dt = base_dt + td(0, 0, 0, round_ms)
            someone_arrived = False
            for v in active:
                if rnd < v.start_round:
                    continue
                t = round_ms + v.phase_ms
                if heap and heap[0][0] <= t:
                    yield from release(t)
                # Speed for the coming tick: follow the target, with jitter.
                target = v.target_kmh
                sp = v.speed
                sp += alpha * (target - sp) + (rand() + rand() - 1.0) * jitter
                if sp < slowest:
                    sp = slowest
                elif sp > target + overspeed:
                    sp = target + overspeed
                v.speed = sp
                # Where the vehicle is now (position(), inlined: seg is its segment already):
                # the vehicle and gps events, with consecutive ids and one emit time.
                seg = v.seg
                off = v.dist - cum[seg]
                lat = round(lats[seg] + off * dlat[seg], 6)
                lon = round(lons[seg] + off * dlon[seg], 6)
                ts = stamp(t)
                speed = round(sp, 1)
                heading = bearing[seg]
                vehicle_id, gps_id = new_id_pair()
                pv = vehicle_payload(vehicle_id, v, ts, lat, lon, speed, heading, v.dist)
                pg = gps_payload(gps_id, v, ts, lat, lon, speed, heading, seg_acc[seg] + 2 * rand())
                emit_time = round_dt + v.phase  # exact: = base_dt + t, without a timedelta
                if injecting:
                    yield from hold_tick(t, emit_time, v.device_id, pv, pg)
                else:
                    yield make_event("vehicle", v.device_id, emit_time, pv)
                    yield make_event("gps", v.device_id, emit_time, pg)
                someone_arrived |= drive(v, t, sp)
            if someone_arrived:
                active = [v for v in active if not v.arrived]
            rnd += 1
        yield from release(math.inf)

    def drive(self, v: Vehicle, t0: int, sp: float) -> bool:
        """Drive ``v`` on from ``t0`` for one tick at ``sp`` km/h, or to the destination, with
        what happens on the way. True when it arrived."""
        tick_ms, total, dist = self.tick_ms, self.total, v.dist
        mps = sp / 3.6
        step = mps * tick_ms / 1000
        new_dist = dist + step
        arriving = new_dist >= total
        if arriving:
            step = total - dist
            t1 = t0 + min(tick_ms, max(1, math.ceil(step / mps * 1000)))
        else:
            t1 = t0 + tick_ms
        if (
            v.next_camera_m <= new_dist
            or v.next_weather_ms < t1
            or (v.next_incident_ms is not None and v.next_incident_ms < t1)
            or v.incidents
        ):
            self.between_ticks(v, t0, t1, dist, mps, arriving)
        fuel = v.fuel - step * v.fuel_per_m * (0.75 + 0.45 * (sp * 0.01) ** 2)
        v.fuel = fuel if fuel > 0.0 else 0.0
        if arriving:
            self.arrive(v, t1)
            return True
        v.dist = new_dist
        if new_dist >= v.seg_end_m:
            self.enter_segment(v, v.seg)
        return False

    def enter_segment(self, v: Vehicle, seg: int) -> None:
        """Move ``v`` to the segment holding its position, from ``seg`` on, and set the speed
        it settles at there: its place in the road class's range, within its class's limit."""
        cum, last_seg, route = self.cum, self.last_seg, self.route
        while seg < last_seg and cum[seg + 1] <= v.dist:
            seg += 1
        v.seg = seg
        v.seg_end_m = cum[seg + 1] if seg < last_seg else math.inf
        lo, hi = route.seg_min_kmh[seg], route.seg_max_kmh[seg]
        target = lo + v.skill * (hi - lo)
        v.target_kmh = target if target <= v.cap_kmh else v.cap_kmh

    # -- between ticks --------------------------------------------------------------------------

    def between_ticks(
        self, v: Vehicle, t0: int, t1: int, d0: float, mps: float, arriving: bool
    ) -> None:
        """Cameras passed, weather samples and incidents in [t0, t1) while driving at ``mps``
        from ``d0``; ``t1`` is the arrival time when ``arriving``."""
        d1 = self.total if arriving else d0 + mps * (t1 - t0) / 1000
        self.pass_cameras(v, t0, t1, d0, d1, mps)
        self.sample_weather_until(v, t0, t1, d0, mps)
        self.start_incidents(v, t0, t1, d0, mps)
        if v.incidents:
            self.resolve_incidents(v, t1, arriving)

    def position(self, d: float, seg: int) -> tuple[float, float]:
        """(latitude, longitude), rounded to the wire's 6 places, at ``d`` metres along the
        route, on segment ``seg`` or a later one."""
        cum, last_seg = self.cum, self.last_seg
        while seg < last_seg and cum[seg + 1] <= d:
            seg += 1
        off = d - cum[seg]
        route = self.route
        return (
            round(self.lats[seg] + off * route.seg_dlat[seg], 6),
            round(self.lons[seg] + off * route.seg_dlon[seg], 6),
        )

    def pass_cameras(self, v: Vehicle, t0: int, t1: int, d0: float, d1: float, mps: float) -> None:
        """A ``traffic_camera`` event for each camera up to ``d1``, when the vehicle passes it."""
        cameras, cam_d = self.cameras, self.cam_d
        ci = v.cam
        while ci < len(cam_d) and cam_d[ci] <= d1:
            tc = min(t1, t0 + math.ceil((cam_d[ci] - d0) / mps * 1000))
            event_id = self.new_id()
            measured = v.speed + (self.rand() - 0.5) * 2 * CAMERA_ERROR_KMH
            self.queue.schedule(
                tc,
                "traffic_camera",
                v.device_id,
                camera_payload(event_id, v.device_id, self.stamp(tc), cameras[ci], measured),
            )
            ci += 1
        v.cam = ci
        v.next_camera_m = cam_d[ci] if ci < len(cam_d) else math.inf

    def sample_weather_until(self, v: Vehicle, t0: int, t1: int, d0: float, mps: float) -> None:
        """The ``weather`` samples due before ``t1``, where the vehicle is at each."""
        tw = v.next_weather_ms
        while tw < t1:
            lat, lon = self.position(d0 + mps * (tw - t0) / 1000, v.seg)
            reading = self.sample_weather(lat, lon, tw / 1000)
            self.queue.schedule(
                tw,
                "weather",
                v.device_id,
                weather_payload(self.new_id(), v.device_id, self.stamp(tw), lat, lon, reading),
            )
            tw += self.weather_ms
        v.next_weather_ms = tw

    def start_incidents(self, v: Vehicle, t0: int, t1: int, d0: float, mps: float) -> None:
        """The incidents that start before ``t1``: each is reported Active and stays open."""
        ti = v.next_incident_ms
        while ti is not None and ti < t1:
            d = d0 + mps * (ti - t0) / 1000
            lat, lon = self.position(d, v.seg)
            kind, description, duration = draw_incident(
                self.incident_rng, self.route.nearest_waypoint(d).name
            )
            inc = Incident(self.new_id(), kind, description, ti + duration, lat, lon)
            self.stats.incidents += 1
            self.queue.schedule(
                ti,
                "emergency",
                v.device_id,
                emergency_payload(
                    self.new_id(), v.device_id, self.stamp(ti), inc, "Active", description
                ),
            )
            if v.incidents is None:
                v.incidents = []
            v.incidents.append(inc)
            gap = next_gap_ms(self.incident_rng, self.incident_rate)
            ti = None if gap is None else ti + gap
        v.next_incident_ms = ti

    def resolve_incidents(self, v: Vehicle, t1: int, arriving: bool) -> None:
        """Report Resolved the open incidents due before ``t1``, or all of them on arrival."""
        still_open = []
        for inc in v.incidents or ():
            if inc.resolve_ms < t1:
                self.resolve(v, inc, inc.resolve_ms, False)
            elif arriving:
                self.resolve(v, inc, t1, True)
            else:
                still_open.append(inc)
        v.incidents = still_open or None

    def resolve(self, v: Vehicle, inc: Incident, ms: int, at_arrival: bool) -> None:
        self.queue.schedule(
            ms,
            "emergency",
            v.device_id,
            emergency_payload(
                self.new_id(),
                v.device_id,
                self.stamp(ms),
                inc,
                "Resolved",
                resolved_description(inc.description, at_arrival),
            ),
        )

    def arrive(self, v: Vehicle, t_arr: int) -> None:
        """The final vehicle and gps events, at the destination, at speed 0."""
        ts = self.stamp(t_arr)
        lat, lon = self.destination
        heading = self.route.seg_bearing[self.last_seg]
        self.queue.schedule(
            t_arr,
            "vehicle",
            v.device_id,
            vehicle_payload(self.new_id(), v, ts, lat, lon, 0.0, heading, self.total),
        )
        accuracy = self.seg_acc[self.last_seg] + 2 * self.rand()
        self.queue.schedule(
            t_arr,
            "gps",
            v.device_id,
            gps_payload(self.new_id(), v, ts, lat, lon, 0.0, heading, accuracy),
        )
        self.queue.mark_arrival(t_arr)
        v.arrived = True
