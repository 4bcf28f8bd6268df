"""The fleet simulator: pure Python, so these run without Kafka or Spark."""

from __future__ import annotations

import hashlib
import json
import math
import random
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from emr_jobs.core.contracts import CONTRACTS, STREAMS, format_timestamp, parse_timestamp
from emr_jobs.core.contracts.roads import haversine_m
from emr_jobs.core.paths import REPO_ROOT
from producer.simulator import MAX_VEHICLES, Event, Simulation, SimulationOptions, simulate
from producer.simulator.payloads import uuid4_source
from producer.simulator.route import load_route
from producer.simulator.weather import WeatherField
from producer.wire import from_json_bytes, to_json_bytes

ROUTE = load_route()
DESTINATION = (52.4797, -1.9030)  # Victoria Square, Birmingham
ORIGIN = (51.5131, -0.1589)  # Marble Arch, London
DEFAULT = SimulationOptions()


def _ts(event: Event) -> datetime:
    return parse_timestamp(event.payload["timestamp"])


def _distance_m(payload: dict, lat: float, lon: float) -> float:
    loc = payload["location"]
    return haversine_m(loc["latitude"], loc["longitude"], lat, lon)


def _wire(events) -> list[bytes]:
    return [to_json_bytes(e.payload) for e in events]


@pytest.fixture(scope="module")
def default_run() -> tuple[list[Event], Simulation]:
    sim = Simulation(DEFAULT)
    return list(sim.events()), sim


@pytest.fixture(scope="module")
def default_events(default_run) -> list[Event]:
    return default_run[0]


def _by_vehicle(events, stream: str) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        if e.stream == stream:
            out[e.key].append(e)
    for evs in out.values():
        evs.sort(key=_ts)
    return out


# -- the route ---------------------------------------------------------------------------------


def test_the_route_runs_from_marble_arch_to_birmingham_along_real_roads():
    assert 30 <= len(ROUTE.waypoints) <= 80
    assert haversine_m(ROUTE.origin.lat, ROUTE.origin.lon, *ORIGIN) < 200
    assert haversine_m(ROUTE.destination.lat, ROUTE.destination.lon, *DESTINATION) < 200
    assert 170_000 < ROUTE.total_m < 200_000
    roads = {w.road for w in ROUTE.waypoints if w.road}
    assert {"A40", "M40", "M42", "A41"} <= roads
    assert set(ROUTE.seg_class) == {"urban", "a_road", "motorway"}
    assert list(ROUTE.cum_m) == sorted(ROUTE.cum_m)


def test_cameras_are_placed_along_the_route_with_readable_ids():
    assert 12 <= len(ROUTE.cameras) <= 20
    assert all(c.id.startswith("CAM-") for c in ROUTE.cameras)
    assert "CAM-M40-J3" in {c.id for c in ROUTE.cameras}
    assert all(0 < c.distance_m < ROUTE.total_m for c in ROUTE.cameras)


# -- the journey -------------------------------------------------------------------------------


def test_the_journey_starts_in_central_london(default_events):
    for evs in _by_vehicle(default_events, "gps").values():
        assert _distance_m(evs[0].payload, *ORIGIN) < 100


def test_the_journey_ends_when_the_vehicle_reaches_birmingham(default_run):
    events, sim = default_run
    assert sim.stats.vehicles_arrived == DEFAULT.vehicles
    sent: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        sent[e.key].append(e)
    assert len(sent) == DEFAULT.vehicles
    for evs in sent.values():
        # The vehicle's last two events, in any stream, are its vehicle and gps events at the
        # destination; nothing follows them.
        *journey, final_vehicle, final_gps = evs
        assert (final_vehicle.stream, final_gps.stream) == ("vehicle", "gps")
        for final in (final_vehicle, final_gps):
            assert _distance_m(final.payload, *DESTINATION) < 100
            assert final.payload["speed"] == 0.0
            assert all(_ts(e) <= _ts(final) for e in journey)
        assert final_vehicle.payload["odometerKm"] == pytest.approx(ROUTE.total_m / 1000, abs=0.01)
        assert all(e.payload.get("speed") != 0.0 for e in journey)


def test_each_vehicle_sends_a_vehicle_and_a_gps_event_every_tick(default_events):
    gps = _by_vehicle(default_events, "gps")
    for key, evs in _by_vehicle(default_events, "vehicle").items():
        assert [_ts(e) for e in evs] == [_ts(e) for e in gps[key]]
        gaps = {(_ts(b) - _ts(a)).total_seconds() for a, b in zip(evs, evs[1:-1], strict=False)}
        assert gaps == {DEFAULT.tick_seconds}
        assert (_ts(evs[-1]) - _ts(evs[-2])).total_seconds() <= DEFAULT.tick_seconds


def test_a_journey_takes_about_two_hours_with_staggered_departures(default_events):
    per_vehicle = _by_vehicle(default_events, "vehicle")
    departures = sorted(_ts(evs[0]) for evs in per_vehicle.values())
    assert departures[0] >= DEFAULT.start_time
    assert departures[-1] - DEFAULT.start_time <= timedelta(minutes=3)
    assert len(set(departures)) == len(departures)
    for evs in per_vehicle.values():
        assert timedelta(hours=1.4) < _ts(evs[-1]) - _ts(evs[0]) < timedelta(hours=3)


# -- determinism -------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_stream(default_events):
    again = list(simulate(DEFAULT))
    assert _wire(again) == _wire(default_events)
    assert [(e.stream, e.key, e.emit_time, e.injected) for e in again] == [
        (e.stream, e.key, e.emit_time, e.injected) for e in default_events
    ]
    first = list(simulate(replace(DEFAULT, max_events=500)))
    assert _wire(first) == _wire(default_events[:500])


def test_a_different_seed_gives_a_different_stream(default_events):
    other = list(simulate(replace(DEFAULT, seed=DEFAULT.seed + 1, max_events=500)))
    assert _wire(other) != _wire(default_events[:500])
    assert {e.payload["id"] for e in other}.isdisjoint(e.payload["id"] for e in default_events)


def test_a_vehicles_make_and_model_depend_only_on_the_seed_and_its_number():
    small = {
        e.key: e.payload
        for e in simulate(replace(DEFAULT, vehicles=3, max_events=200))
        if e.stream == "vehicle"
    }
    large = {
        e.key: e.payload
        for e in simulate(replace(DEFAULT, vehicles=50, max_events=2000))
        if e.stream == "vehicle" and e.key in small
    }
    fields = ("make", "model", "year", "fuelType", "vehicleType")
    assert small.keys() == large.keys()
    for key, payload in small.items():
        assert [payload[f] for f in fields] == [large[key][f] for f in fields]


# The whole stream, pinned. Each digest is the SHA-256 of every event (stream, key, emit time,
# injected flag and payload as JSON in wire order), in order, then the run's stats, as the
# simulator produced them before it was split into a package (commit 68efb14). The simulator is
# deterministic by seed, so a digest changes only when an event does: a refactor or an
# optimisation must keep them all; a deliberate change to the simulation updates them and says
# why. The cases cover a whole journey, injection (late and duplicate copies, whose random
# draws come in a fixed order), a large fleet cut by max_events, odd tick and weather periods
# with a start time off the millisecond in another offset, and arrival within a long tick.
GOLDEN_STREAMS = {
    "three_vehicles_seed_7": (
        {"vehicles": 3, "seed": 7},
        8845,
        "45f550f4806a8f6e070a8b9b53bb75f67000ee7c981285c5b80a6c7f5aee1b08",
    ),
    "late_and_duplicates": (
        {
            "vehicles": 10,
            "seed": 11,
            "tick_seconds": 10.0,
            "late_fraction": 0.2,
            "duplicate_fraction": 0.1,
            "late_max_seconds": 45.0,
            "incident_rate_per_hour": 6.0,
        },
        17142,
        "fa3d2ee61fecbb95ff5b4e298d45a34d8d580a0ab550d4ff381b03a54952a816",
    ),
    "max_events_of_a_large_fleet": (
        {"vehicles": 1000, "seed": 42, "max_events": 50_000},
        50_000,
        "bfde8f09781d94d91b28d5ed76217f393ad10847f79c8e6422f8e722f56e9c23",
    ),
    "odd_ticks_and_start": (
        {
            "vehicles": 4,
            "seed": 3,
            "tick_seconds": 0.7,
            "weather_every_seconds": 7.5,
            "incident_rate_per_hour": 20.0,
            "max_events": 40_000,
            "start_time": datetime(
                2026, 7, 1, 23, 58, 59, 999_999, tzinfo=timezone(timedelta(hours=1))
            ),
        },
        40_000,
        "2c2b9de859423d1a6256d5eda2807eb68426d4bdae92d491c7b0714e6668467d",
    ),
    "long_ticks_with_injection": (
        {
            "vehicles": 2,
            "seed": 5,
            "tick_seconds": 120.0,
            "incident_rate_per_hour": 4.0,
            "late_fraction": 0.5,
            "duplicate_fraction": 0.5,
        },
        768,
        "68f3e674a899d01e7c0d237f8af6a9343cd2e503c7012b2aca64d72c3fb7734a",
    ),
}


_DIGESTED_STATS = (
    "vehicles",
    "events",
    "by_stream",
    "late",
    "duplicates",
    "incidents",
    "vehicles_arrived",
)


def _stream_digest(options: SimulationOptions) -> tuple[int, str]:
    sim = Simulation(options)
    digest = hashlib.sha256()
    count = 0
    for e in sim.events():
        record = [e.stream, e.key, e.emit_time.isoformat(), e.injected, e.payload]
        digest.update(json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode())
        digest.update(b"\n")
        count += 1
    stats = [getattr(sim.stats, name) for name in _DIGESTED_STATS]
    digest.update(json.dumps(stats).encode())
    return count, digest.hexdigest()


@pytest.mark.parametrize("case", list(GOLDEN_STREAMS))
def test_the_stream_for_a_seed_is_exactly_the_pinned_one(case):
    changes, count, sha256 = GOLDEN_STREAMS[case]
    assert _stream_digest(SimulationOptions(**changes)) == (count, sha256)


def test_a_pair_of_ids_is_the_next_two_ids():
    new_id, _ = uuid4_source(random.Random(3))
    _, new_id_pair = uuid4_source(random.Random(3))
    for _ in range(100):
        assert new_id_pair() == (new_id(), new_id())


# -- purity ------------------------------------------------------------------------------------


def test_the_simulator_imports_no_kafka_spark_or_aws_nor_the_producers_client():
    forbidden = (
        "confluent_kafka",
        "pyspark",
        "boto3",
        "botocore",
        "producer.kafka_producer",
        "producer.kafka_config",
        "producer.cli",
        "producer.settings",
    )
    code = (
        "import sys, producer.simulator; forbidden = " + repr(forbidden) + ";"
        "print(sorted(m for m in sys.modules if m in forbidden or m.split('.')[0] in forbidden))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT
    ).stdout
    assert out.strip() == "[]"


# -- contracts and ranges ----------------------------------------------------------------------


def test_every_event_matches_its_contract(default_events):
    seen = Counter()
    for e in default_events:
        contract = CONTRACTS[e.stream]
        assert e.stream in STREAMS
        assert set(e.payload) == set(contract.field_names)
        assert tuple(e.payload) == contract.field_names  # wire order follows the contract
        assert contract.violations(e.payload) == []
        assert e.payload["schemaVersion"] == contract.version
        assert e.key == e.payload["deviceId"]
        assert format_timestamp(_ts(e)) == e.payload["timestamp"]
        assert e.payload["timestamp"].endswith("Z")
        loc = e.payload["location"]
        assert set(loc) == {"latitude", "longitude"}
        assert all(isinstance(v, float) for v in loc.values())
        assert e.injected == ""
        seen[e.stream] += 1
    assert set(seen) == set(STREAMS)


@pytest.mark.parametrize(
    "changes",
    [
        {"tick_seconds": 1.0, "vehicles": 3, "max_events": 20_000},
        {"tick_seconds": 300.0, "vehicles": 20, "weather_every_seconds": 7.5},
        {
            "incident_rate_per_hour": 30.0,
            "late_fraction": 0.3,
            "duplicate_fraction": 0.3,
            "late_max_seconds": 90.0,
            "vehicles": 10,
            "tick_seconds": 20.0,
        },
        {
            "start_time": datetime(2026, 7, 1, 23, 58, 59, 999_999, tzinfo=UTC),
            "vehicles": 3,
            "tick_seconds": 10.0,
        },
    ],
)
def test_events_match_their_contracts_whatever_the_options(changes):
    previous = None
    for e in simulate(replace(DEFAULT, **changes)):
        assert tuple(e.payload) == CONTRACTS[e.stream].field_names
        assert CONTRACTS[e.stream].violations(e.payload) == []
        assert format_timestamp(_ts(e)) == e.payload["timestamp"]
        assert e.emit_time >= _ts(e)
        assert previous is None or e.emit_time >= previous
        previous = e.emit_time


def test_events_come_in_emit_time_order_and_never_before_they_happen(default_events):
    emit_times = [e.emit_time for e in default_events]
    assert emit_times == sorted(emit_times)
    assert all(e.emit_time == _ts(e) for e in default_events)
    assert all(e.emit_time.tzinfo is not None for e in default_events)


def test_event_ids_are_unique_version_4_uuids(default_events):
    ids = [e.payload["id"] for e in default_events]
    assert len(set(ids)) == len(ids)
    for text in ids[:200]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text


def test_fuel_never_increases_and_never_goes_below_zero(default_events):
    for evs in _by_vehicle(default_events, "vehicle").values():
        levels = [e.payload["fuelLevel"] for e in evs]
        assert all(b <= a for a, b in zip(levels, levels[1:], strict=False))
        assert levels[-1] >= 0 and levels[-1] < levels[0]
        odometer = [e.payload["odometerKm"] for e in evs]
        assert odometer == sorted(odometer)


def test_fuel_use_depends_on_the_vehicle():
    events = list(simulate(replace(DEFAULT, vehicles=40, tick_seconds=30.0)))
    used: dict[tuple[str, str], list[float]] = defaultdict(list)
    for evs in _by_vehicle(events, "vehicle").values():
        p = evs[0].payload
        used[(p["vehicleType"], p["fuelType"])].append(
            p["fuelLevel"] - evs[-1].payload["fuelLevel"]
        )
    assert min(used[("car", "Electric")]) > max(used[("car", "Petrol")])


def test_speed_depends_on_the_road_class(default_events):
    by_class: dict[str, list[float]] = defaultdict(list)
    for e in default_events:
        if e.stream == "vehicle" and e.payload["speed"] > 0:
            seg = ROUTE.segment_at(e.payload["odometerKm"] * 1000)
            by_class[ROUTE.seg_class[seg]].append(e.payload["speed"])
    mean = {c: sum(v) / len(v) for c, v in by_class.items()}
    assert mean["urban"] < 55 < mean["a_road"] < 95
    assert mean["motorway"] > 85  # trucks are limited to 90 km/h, coaches to 100
    assert max(max(v) for v in by_class.values()) <= 135


# -- cameras -----------------------------------------------------------------------------------


def test_cameras_fire_where_they_are_placed_once_per_vehicle(default_events):
    cameras = {c.id: c for c in ROUTE.cameras}
    sightings = _by_vehicle(default_events, "traffic_camera")
    assert len(sightings) == DEFAULT.vehicles
    for evs in sightings.values():
        assert Counter(e.payload["cameraId"] for e in evs) == Counter(list(cameras))
        for e in evs:
            cam = cameras[e.payload["cameraId"]]
            assert _distance_m(e.payload, cam.lat, cam.lon) < 50
            assert e.payload["snapshot"].startswith(f"snapshots/{cam.id}/")


def test_a_camera_fires_between_the_ticks_around_the_moment_the_vehicle_passes(default_events):
    ticks = _by_vehicle(default_events, "vehicle")
    for key, evs in _by_vehicle(default_events, "traffic_camera").items():
        odometer = [
            (_ts(t), t.payload["odometerKm"] * 1000, t.payload["speed"]) for t in ticks[key]
        ]
        for e in evs:
            cam_m = next(c.distance_m for c in ROUTE.cameras if c.id == e.payload["cameraId"])
            before = max(o for o in odometer if o[0] <= _ts(e))
            after = min(o for o in odometer if o[0] >= _ts(e))
            assert before[1] <= cam_m <= after[1] + 1
            assert e.payload["measuredSpeed"] == pytest.approx(before[2], abs=3)


# -- weather -----------------------------------------------------------------------------------


def test_weather_is_coherent_in_space_and_time():
    field = WeatherField(7, DEFAULT.start_time)
    rng = random.Random(1)
    near, far = [], []
    for _ in range(300):
        lat, lon, t = rng.uniform(51.5, 52.5), rng.uniform(-1.9, -0.2), rng.uniform(0, 4 * 3600)
        here = field.sample(lat, lon, t)
        close = field.sample(lat + 0.0009, lon + 0.0009, t + 10)  # ~120 m and 10 s away
        away = field.sample(lat + rng.choice((-1, 1)) * 0.8, lon + 0.9, t + 5 * 3600)
        assert abs(close.temperature - here.temperature) < 0.1
        assert abs(close.humidity - here.humidity) < 0.5
        assert abs(close.precipitation - here.precipitation) < 0.2
        assert abs(close.wind_speed - here.wind_speed) < 0.5
        near.append(abs(close.temperature - here.temperature) + abs(close.humidity - here.humidity))
        far.append(abs(away.temperature - here.temperature) + abs(away.humidity - here.humidity))
    assert sum(far) > 20 * sum(near)


def test_weather_conditions_follow_the_continuous_values():
    field = WeatherField(3, DEFAULT.start_time)
    rng = random.Random(2)
    conditions = Counter()
    for _ in range(3000):
        w = field.sample(rng.uniform(51.5, 52.5), rng.uniform(-1.9, -0.2), rng.uniform(0, 86400))
        conditions[w.condition] += 1
        if w.precipitation >= 0.1:
            assert w.condition == ("Snow" if w.temperature <= 0.5 else "Rain")
        else:
            assert w.condition in ("Sunny", "Cloudy", "Fog")
    assert len(conditions) >= 3


def test_a_vehicle_samples_the_weather_regularly_and_it_changes_gradually(default_events):
    for evs in _by_vehicle(default_events, "weather").values():
        gaps = {(_ts(b) - _ts(a)).total_seconds() for a, b in zip(evs, evs[1:], strict=False)}
        assert gaps == {DEFAULT.weather_every_seconds}
        for a, b in zip(evs, evs[1:], strict=False):
            assert abs(a.payload["temperature"] - b.payload["temperature"]) < 1.0
            assert abs(a.payload["humidity"] - b.payload["humidity"]) < 5.0


def test_vehicles_close_together_report_similar_weather(default_events):
    samples = [e for e in default_events if e.stream == "weather"]
    pairs = 0
    for a, b in zip(samples, samples[1:], strict=False):
        if (
            a.key != b.key
            and abs((_ts(a) - _ts(b)).total_seconds()) < 60
            and _distance_m(a.payload, *b.payload["location"].values()) < 3000
        ):
            pairs += 1
            assert abs(a.payload["temperature"] - b.payload["temperature"]) < 1.0
    assert pairs > 10


# -- incidents ---------------------------------------------------------------------------------


def test_an_incident_is_active_before_it_is_resolved():
    events = list(simulate(replace(DEFAULT, incident_rate_per_hour=4.0)))
    arrival = {k: _ts(evs[-1]) for k, evs in _by_vehicle(events, "vehicle").items()}
    lifecycle: dict[str, list[tuple[int, Event]]] = defaultdict(list)
    for i, e in enumerate(events):
        if e.stream == "emergency":
            lifecycle[e.payload["incidentId"]].append((i, e))
    assert len(lifecycle) > 10
    for (i, active), (j, resolved) in lifecycle.values():
        assert active.payload["status"] == "Active" and resolved.payload["status"] == "Resolved"
        assert i < j and _ts(active) < _ts(resolved)
        assert active.key == resolved.key
        assert active.payload["location"] == resolved.payload["location"]
        assert active.payload["type"] == resolved.payload["type"]
        lasted = _ts(resolved) - _ts(active)
        assert lasted <= timedelta(minutes=30)
        assert lasted >= timedelta(minutes=5) or _ts(resolved) == arrival[active.key]


def test_no_incidents_when_the_rate_is_zero():
    events = simulate(replace(DEFAULT, vehicles=2, incident_rate_per_hour=0.0))
    assert not any(e.stream == "emergency" for e in events)


# -- injected faults ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def injected_run(default_events):
    options = replace(DEFAULT, late_fraction=0.1, duplicate_fraction=0.05, late_max_seconds=45)
    sim = Simulation(options)
    return list(sim.events()), sim, options


def test_injection_adds_the_requested_fractions_of_late_and_duplicate_events(
    injected_run, default_events
):
    events, sim, options = injected_run
    kinds = Counter(e.injected for e in events)
    originals = len(events) - kinds["duplicate"]
    assert originals == len(default_events)
    assert kinds["late"] / originals == pytest.approx(options.late_fraction, abs=0.015)
    assert kinds["duplicate"] / originals == pytest.approx(options.duplicate_fraction, abs=0.01)
    assert sim.stats.late == kinds["late"] and sim.stats.duplicates == kinds["duplicate"]
    assert sum(sim.stats.by_stream.values()) == len(events) == sim.stats.events


def test_injection_keeps_the_same_events_only_reordered_and_repeated(injected_run, default_events):
    events, _, _ = injected_run
    assert sorted(_wire(e for e in events if e.injected != "duplicate")) == sorted(
        _wire(default_events)
    )


def test_a_duplicate_repeats_an_event_with_the_same_id_and_payload(injected_run):
    events, _, _ = injected_run
    originals = {e.payload["id"]: e for e in events if e.injected != "duplicate"}
    duplicates = [e for e in events if e.injected == "duplicate"]
    assert duplicates
    for d in duplicates:
        original = originals[d.payload["id"]]
        assert to_json_bytes(d.payload) == to_json_bytes(original.payload)
        assert (d.stream, d.key) == (original.stream, original.key)
        assert timedelta(0) < d.emit_time - _ts(d) < timedelta(seconds=60)


def test_late_events_are_sent_after_later_events_within_the_limit(injected_run):
    events, _, options = injected_run
    emit_times = [e.emit_time for e in events]
    assert emit_times == sorted(emit_times)
    newest: dict[str, datetime] = {}
    overtaken = 0
    late = [e for e in events if e.injected == "late"]
    for e in events:
        if e.injected == "late" and newest.get(e.key, _ts(e)) > _ts(e):
            overtaken += 1
        newest[e.key] = max(newest.get(e.key, _ts(e)), _ts(e))
    for e in late:
        assert timedelta(0) < e.emit_time - _ts(e) <= timedelta(seconds=options.late_max_seconds)
    assert overtaken > 0.9 * len(late)


# -- options -----------------------------------------------------------------------------------


def test_max_events_bounds_the_stream():
    sim = Simulation(replace(DEFAULT, vehicles=100, max_events=1234))
    assert sum(1 for _ in sim.events()) == 1234
    assert sim.stats.events == 1234
    assert list(simulate(replace(DEFAULT, max_events=0))) == []


@pytest.mark.parametrize("vehicles", [0, -1, MAX_VEHICLES + 1])
def test_the_number_of_vehicles_must_be_from_1_to_10000(vehicles):
    with pytest.raises(ValueError, match="vehicles"):
        SimulationOptions(vehicles=vehicles)


def test_the_largest_fleet_is_accepted_and_starts_lazily():
    first = list(simulate(SimulationOptions(vehicles=MAX_VEHICLES, max_events=20_000)))
    assert len(first) == 20_000
    assert len({e.key for e in first}) > 1000  # many vehicles on the road, none finished
    assert not any(e.payload.get("speed") == 0.0 for e in first)


@pytest.mark.parametrize(
    "bad",
    [
        {"start_time": datetime(2026, 1, 5, 8, 0)},
        {"tick_seconds": 0},
        {"late_fraction": 1.5},
        {"duplicate_fraction": -0.1},
        {"max_events": -1},
        {"weather_every_seconds": 0},
        {"incident_rate_per_hour": -1},
    ],
)
def test_bad_options_are_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        SimulationOptions(**bad)


def test_the_start_time_may_have_any_offset_and_timestamps_are_utc():
    start = datetime(2026, 6, 1, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    first = next(iter(simulate(replace(DEFAULT, start_time=start, max_events=1))))
    assert first.payload["timestamp"].startswith("2026-06-01T0")
    assert _ts(first) >= datetime(2026, 6, 1, 9, 30, tzinfo=UTC)


def test_a_longer_tick_still_ends_at_birmingham():
    events = list(simulate(replace(DEFAULT, vehicles=2, tick_seconds=120.0)))
    for evs in _by_vehicle(events, "gps").values():
        assert _distance_m(evs[-1].payload, *DESTINATION) < 100
    assert Counter(
        e.payload["cameraId"] for e in events if e.stream == "traffic_camera"
    ) == Counter({c.id: 2 for c in ROUTE.cameras})


# -- wire form ---------------------------------------------------------------------------------


def test_the_wire_form_is_compact_json_that_round_trips(default_events):
    payload = default_events[0].payload
    data = to_json_bytes(payload)
    assert isinstance(data, bytes) and b" " not in data.replace(b"Model 3", b"")
    assert from_json_bytes(data) == payload
    assert data.startswith(b'{"id":"')
    assert not math.isnan(from_json_bytes(data)["speed"])
