"""Alerts and road conditions: the rules on a scripted scenario, road conditions against a batch
computation over the lake, a SIGKILL mid-stream, bad input, and the pieces the rules share.

The integration tests run the real job (all four queries) against the real broker and read the
results back from the Iceberg tables through the catalog and from the Kafka topics.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from alert_scenario import EXPECTED, Record, scenario
from confluent_kafka import Consumer, Producer
from jobrunner import run_job
from pyspark.sql import functions as F
from test_pipeline_integration import _commits, _kill, _start_driver

from emr_jobs.alerts import _sha_id, alert_id, with_placement
from emr_jobs.core.contracts import CONTRACTS, parse_timestamp
from emr_jobs.core.contracts.roads import place, sections
from emr_jobs.core.settings import SettingsError
from emr_jobs.settings import AlertSettings, JobSettings
from producer.kafka_producer import send_events
from producer.simulator import SimulationOptions, simulate
from producer.simulator.route import load_route
from producer.wire import to_json_bytes
from scripts import lake

ALERTS_ON = {"ALERTS_ENABLED": "true"}


# --- the shared pieces -------------------------------------------------------------------------


def test_the_spark_placement_is_the_python_one(spark):
    """Every waypoint, every camera, points along the route and points off it: the nearest
    section, its route km and the distance off the route agree between Spark and Python."""
    route = load_route()
    rng = random.Random(7)
    points = [(w.lat, w.lon) for w in route.waypoints]
    points += [(c.lat, c.lon) for c in route.cameras]
    for _ in range(300):
        lat, lon = route.position(rng.uniform(0, route.total_m))
        points.append((lat + rng.uniform(-0.02, 0.02), lon + rng.uniform(-0.02, 0.02)))
    points += [(53.5, -3.0), (51.0, 0.5)]
    frame = spark.createDataFrame(
        [({"latitude": a, "longitude": b},) for a, b in points],
        "location struct<latitude:double,longitude:double>",
    )
    placed = with_placement(frame, 1.0).select(F.col("place").alias("p")).collect()
    assert len(placed) == len(points)
    on_route = 0
    for (lat, lon), row in zip(points, placed, strict=True):
        want = place(lat, lon)
        got = row["p"]
        expected_section = want.section.id if want.off_route_km <= 1.0 else None
        assert got["section"] == expected_section, (lat, lon)
        assert got["road"] == want.section.road
        assert got["limitKmh"] == want.section.limit_kmh
        assert math.isclose(got["routeKm"], want.route_km, abs_tol=1e-9)
        assert math.isclose(got["offKm"], want.off_route_km, abs_tol=1e-9)
        on_route += got["section"] is not None
    assert len(points) / 2 < on_route < len(points)  # both cases are in the sample


def test_alert_ids_are_deterministic_and_the_same_in_spark_and_python(spark):
    row = (
        spark.range(1)
        .select(
            alert_id("stopped_vehicle", *[F.lit(x) for x in ("vehicle-1", "2026-01-05T08:00:00")])
        )
        .first()[0]
    )
    assert row == _sha_id("stopped_vehicle", "vehicle-1", "2026-01-05T08:00:00")
    assert len(row) == 32 and row != _sha_id("stopped_vehicle", "vehicle-2", "2026-01-05T08:00:00")


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"ALERT_APPROACH_KM": "far"}, "ALERT_APPROACH_KM must be a number"),
        ({"ALERT_APPROACH_KM": "0"}, "ALERT_APPROACH_KM must be at least"),
        ({"ALERT_WATERMARK": "ten seconds"}, "ALERT_WATERMARK must look like"),
        ({"ROAD_CONDITIONS_WINDOW": "0 seconds"}, "ROAD_CONDITIONS_WINDOW must be at least 1"),
        ({"ALERTS_ENABLED": "maybe"}, "ALERTS_ENABLED must be true or false"),
        ({"ALERT_SPEEDING_TOLERANCE_KMH": "-1"}, "ALERT_SPEEDING_TOLERANCE_KMH must be at least"),
    ],
)
def test_a_wrong_alert_setting_names_itself(env, needle):
    with pytest.raises(SettingsError, match=needle):
        AlertSettings.from_env(env)


def test_road_sections_cover_the_route_with_limits_from_the_route_data():
    road = sections()
    assert len(road) == len(load_route().waypoints) - 1
    assert len({s.id for s in road}) == len(road)
    assert road[0].start_km == 0 and math.isclose(road[-1].end_km, 178.15, abs_tol=0.01)
    assert {s.road_class: s.limit_kmh for s in road} == {
        "urban": 48.0,
        "a_road": 113.0,
        "motorway": 113.0,
    }


# --- the real job --------------------------------------------------------------------------------


def produce(kafka_settings, records: list[Record]) -> None:
    producer = Producer({"bootstrap.servers": kafka_settings.bootstrap_servers, "linger.ms": 5})
    for r in records:
        producer.produce(
            kafka_settings.topic(r.stream), key=r.key.encode(), value=to_json_bytes(r.payload)
        )
    assert producer.flush(30) == 0


def topic_values(kafka_settings, stream: str) -> list[dict]:
    """Every record on a derived topic, decoded (the topic is at least once)."""
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_settings.bootstrap_servers,
            "group.id": f"test-{stream}-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([kafka_settings.topic(stream)])
    values, idle_since = [], time.monotonic()
    while time.monotonic() - idle_since < 5:
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        idle_since = time.monotonic()
        values.append(json.loads(message.value()))
    consumer.close()
    return values


def lake_rows(lake_dir, table: str) -> list[dict]:
    return lake.read_table(table, JobSettings(lake_uri=lake_dir.as_uri())).to_pylist()


def alert_keys(rows: list[dict]) -> Counter:
    return Counter((r["rule"], r["deviceId"], r["incidentId"], r["status"]) for r in rows)


@pytest.mark.integration
def test_the_scripted_scenario_raises_exactly_the_expected_alerts(kafka_settings, lake_dir):
    """An incident at km 80 of the M40 and vehicles around it: exactly the expected alerts,
    each once, on the topic and in the table; bad input gets its documented outcome."""
    records = scenario()
    produce(kafka_settings, records)
    result = run_job(kafka_settings, lake_dir, "--available-now", **ALERTS_ON)
    # A normal run is quiet: no ERROR line, no Python traceback, no Java stack trace.
    noise = [
        line
        for line in result.stderr.splitlines()
        if " ERROR " in line or line.startswith(("Traceback", "\tat "))
    ]
    assert not noise, "\n".join(noise[:20])

    rows = lake_rows(lake_dir, "alerts")
    assert alert_keys(rows) == EXPECTED
    assert len({r["id"] for r in rows}) == len(rows)
    on_topic = topic_values(kafka_settings, "alerts")
    assert {v["id"] for v in on_topic} == {r["id"] for r in rows}
    for value in on_topic:
        assert CONTRACTS["alerts"].violations(value) == [], value

    by_rule = {r["rule"]: r for r in rows}
    approach = by_rule["approaching_incident"]
    assert approach["section"] and 0 <= approach["value"] <= 5.0
    assert by_rule["speeding"]["value"] == 131.0 and by_rule["speeding"]["section"] == "m40_j8"
    stopped = by_rule["stopped_vehicle"]
    assert stopped["value"] == 2.0 and stopped["section"] == "m40_j10"
    assert stopped["timestamp"].replace(tzinfo=UTC) == datetime(2026, 1, 5, 8, 3, tzinfo=UTC)
    weather = [r for r in rows if r["rule"] == "severe_weather"]
    assert {r["section"] for r in weather} == {"bucknell"}
    assert sorted(r["timestamp"].minute for r in weather) == [2, 16]  # first of each period
    for r in rows:
        assert r["detectedAt"] >= r["timestamp"]  # raised after the event, by the job's clock

    # The weather event without a temperature is quarantined, and raised nothing.
    quarantined = lake_rows(lake_dir, "weather_quarantine")
    assert [q["reason"] for q in quarantined] == ["temperature: required"]
    # Off the route (no section): no alert, and no road condition anywhere near it.
    conditions = lake_rows(lake_dir, "road_conditions")
    assert conditions and all(c["section"] for c in conditions)
    assert "new_street" not in {c["section"] for c in conditions}


def batch_road_conditions(lake_dir, window_s: int = 60) -> dict[tuple, dict]:
    """The road conditions recomputed from the lake's data tables, in plain Python."""
    groups: dict[tuple, dict] = defaultdict(lambda: defaultdict(list))

    def key(row: dict) -> tuple | None:
        loc = row["location"]
        p = place(loc["latitude"], loc["longitude"])
        if p.off_route_km > 1.0:
            return None
        ts = row["timestamp"].replace(tzinfo=UTC)
        start = datetime.fromtimestamp(ts.timestamp() // window_s * window_s, UTC)
        return (p.section.id, start)

    for row in lake_rows(lake_dir, "gps"):
        if (k := key(row)) is not None:
            groups[k]["devices"].append(row["deviceId"])
            groups[k]["speed"].append(row["speed"])
    for row in lake_rows(lake_dir, "weather"):
        if (k := key(row)) is not None:
            for name in ("temperature", "precipitation", "windSpeed", "airQualityIndex"):
                groups[k][name].append(row[name])
    for row in lake_rows(lake_dir, "emergency"):
        if row["status"] == "Active" and (k := key(row)) is not None:
            groups[k]["incidents"].append(row["incidentId"])

    def mean(values: list[float]) -> float | None:
        return round(sum(values) / len(values), 2) if values else None

    out = {}
    for k, g in groups.items():
        out[k] = {
            "vehicleCount": len(set(g["devices"])),
            "avgSpeed": mean(g["speed"]),
            "p95Speed": round(float(np.percentile(g["speed"], 95)), 2) if g["speed"] else None,
            "temperature": mean(g["temperature"]),
            "precipitation": mean(g["precipitation"]),
            "windSpeed": mean(g["windSpeed"]),
            "airQualityIndex": mean(g["airQualityIndex"]),
            "activeIncidents": len(set(g["incidents"])),
        }
    return out


@pytest.mark.integration
def test_road_conditions_equal_a_batch_computation_over_the_lake(kafka_settings, lake_dir):
    """Every window the stream emitted equals the same numbers computed from the lake's rows
    (duplicates included in the input, so the stream's own dedupe is tested too)."""
    options = SimulationOptions(
        vehicles=3, seed=31, duplicate_fraction=0.03, incident_rate_per_hour=3.0
    )
    events = list(simulate(options))
    assert send_events(events, kafka_settings, show_progress=False).ok
    run_job(kafka_settings, lake_dir, "--available-now", **ALERTS_ON)

    streamed = {
        (r["section"], r["timestamp"].replace(tzinfo=UTC)): r
        for r in lake_rows(lake_dir, "road_conditions")
    }
    batch = batch_road_conditions(lake_dir)
    newest = max(parse_timestamp(e.payload["timestamp"]) for e in events)
    closed = {k for k in batch if k[1] + timedelta(seconds=70) <= newest}  # window + watermark
    assert len(streamed) > 100
    assert closed <= set(streamed), "a window the watermark closed was never emitted"
    extra = sorted(set(streamed) - set(batch))
    sample = [streamed[k] for k in extra[:3]]
    assert not extra, f"{len(extra)} windows that the lake's rows do not make, e.g. {sample}"
    for k, row in streamed.items():
        want = batch[k]
        for name, value in want.items():
            assert row[name] == pytest.approx(value, abs=0.011), (k, name)
    assert any(r["activeIncidents"] for r in streamed.values())
    limits = {s.id: s.limit_kmh for s in sections()}
    assert all(r["speedLimit"] == limits[r["section"]] for r in streamed.values())


def _wait_for_batch_in_flight(checkpoint, deadline: float) -> int:
    """The id of a batch the query has started (offsets logged) and not yet committed."""
    while time.monotonic() < deadline:
        offsets = {int(p.name) for p in (checkpoint / "offsets").glob("[0-9]*")}
        commits = {int(p.name) for p in (checkpoint / "commits").glob("[0-9]*")}
        open_batches = offsets - commits
        if open_batches and max(offsets) > 0:
            return max(open_batches)
        time.sleep(0.02)
    raise AssertionError("no alerts batch was ever in flight")


@pytest.mark.integration
@pytest.mark.slow
def test_a_sigkill_mid_stream_repeats_no_alert_id_in_the_table(kafka_settings, lake_dir, tmp_path):
    """Kill the driver while the alert queries are running, restart it: the table still holds
    each alert id once and exactly the expected alerts, whatever the topic got twice."""
    records = scenario()
    half = len(records) // 2
    produce(kafka_settings, records[:half])
    env = {**ALERTS_ON, "JOB_TRIGGER_INTERVAL": "2 seconds", "ALERT_TRIGGER_INTERVAL": "1 second"}
    log_file = tmp_path / "driver.log"
    with open(log_file, "wb") as out:
        driver = _start_driver(kafka_settings, lake_dir, out, **env)
    try:
        deadline = time.monotonic() + 300
        while _commits(lake_dir) < 1:
            assert driver.poll() is None, log_file.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the job committed no batch"
            time.sleep(0.5)
        produce(kafka_settings, records[half:])
        # Kill while an alerts batch is in flight: its offsets are logged, its commit is not.
        in_flight = _wait_for_batch_in_flight(lake_dir / "checkpoints" / "alerts", deadline)
        time.sleep(0.2)
        _kill(driver)
    finally:
        _kill(driver)
    run_job(kafka_settings, lake_dir, "--available-now", **ALERTS_ON)
    rows = lake_rows(lake_dir, "alerts")
    assert len({r["id"] for r in rows}) == len(rows), "an alert id is in the table twice"
    assert alert_keys(rows) == EXPECTED
    on_topic = topic_values(kafka_settings, "alerts")
    assert {v["id"] for v in on_topic} == {r["id"] for r in rows}
    repeated = sum(n - 1 for n in Counter(v["id"] for v in on_topic).values())
    print(
        f"alerts on the topic: {len(on_topic)} records, {repeated} repeats; killed in batch "
        f"{in_flight}"
    )
    duplicates = [d for d in lake_rows(lake_dir, "duplicates") if d["stream"] == "alerts"]
    assert len(on_topic) - len(rows) == len(duplicates)


def test_every_alert_setting_is_in_the_readme_settings_table():
    import re

    from emr_jobs.core.paths import REPO_ROOT

    names = [variable for variable, _ in AlertSettings.variables()]
    assert len(names) == len(AlertSettings.model_fields) == 15
    readme = (REPO_ROOT / "emr_jobs" / "README.md").read_text(encoding="utf-8")
    table = re.search(r"^### Alert settings\n(.*?)(?=^##|\Z)", readme, re.S | re.M)
    assert table, "emr_jobs/README.md has no '### Alert settings' section"
    missing = [n for n in names if f"| `{n}` |" not in table.group(1)]
    assert not missing, f"not in emr_jobs/README.md's alert settings table: {missing}"
    assert AlertSettings.from_env({}) == AlertSettings()  # one set of defaults
