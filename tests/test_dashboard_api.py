"""The dashboard's server: settings, page, coalescing, server-sent events, health, lake history.

FastAPI's TestClient drives the app in-process. The health tests read a real broker's high
watermarks and a checkpoint laid out as Spark writes it; the history tests read a real Iceberg
lake (written with pyiceberg through the same SQLite catalog layout the job uses).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

with warnings.catch_warnings():
    # Starlette 1.x asks for `httpx2` and warns when its TestClient falls back to `httpx`
    # (pyproject's test extra has httpx); harmless once httpx2 is installed.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from emr_jobs.core.contracts import CONTRACTS, LAKE
from emr_jobs.core.contracts.roads import sections
from emr_jobs.core.paths import REPO_ROOT
from emr_jobs.core.settings import SettingsError
from emr_jobs.settings import JobSettings
from scripts.dashboard.app import FrontEndMissing, check_front_end, create_app
from scripts.dashboard.health import behind, read_checkpoint
from scripts.dashboard.positions import VehiclePositions
from scripts.dashboard.settings import DashboardSettings
from scripts.dashboard.state import LiveState

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def vehicle(device: str, lat: float, lon: float, speed: float, at: datetime) -> dict:
    return {
        "deviceId": device,
        "timestamp": iso(at),
        "speed": speed,
        "location": {"latitude": lat, "longitude": lon},
    }


def alert(alert_id: str, at: datetime, severity: str = "warning", **extra) -> dict:
    doc = {
        "id": alert_id,
        "schemaVersion": 1,
        "rule": "incident",
        "severity": severity,
        "status": "Active",
        "timestamp": iso(at),
        "detectedAt": iso(at + timedelta(seconds=3)),
        "location": {"latitude": 51.9, "longitude": -1.2},
        "message": f"alert {alert_id}",
    }
    doc.update(extra)
    assert not CONTRACTS["alerts"].violations(doc)
    return doc


def incident(incident_id: str, status: str, at: datetime, lat: float, lon: float) -> dict:
    doc = {
        "id": f"{incident_id}-{status}",
        "schemaVersion": 1,
        "deviceId": "vehicle-00007",
        "timestamp": iso(at),
        "location": {"latitude": lat, "longitude": lon},
        "incidentId": incident_id,
        "type": "Accident",
        "status": status,
        "description": "Collision: M40",
    }
    assert not CONTRACTS["emergency"].violations(doc)
    return doc


def road_condition(section, at: datetime, avg: float, rain: float = 0.0) -> dict:
    doc = {
        "id": f"{section.id}-{at:%H%M}",
        "schemaVersion": 1,
        "section": section.id,
        "road": section.road,
        "timestamp": iso(at),
        "windowEnd": iso(at + timedelta(minutes=1)),
        "vehicleCount": 12,
        "avgSpeed": avg,
        "p95Speed": avg + 10,
        "speedLimit": section.limit_kmh,
        "temperature": 6.5,
        "precipitation": rain,
        "windSpeed": 14.0,
        "airQualityIndex": 40.0,
        "activeIncidents": 0,
    }
    assert not CONTRACTS["road_conditions"].violations(doc)
    return doc


@pytest.fixture
def app_state(tmp_path):
    settings = DashboardSettings(coalesce_seconds=0.1)
    state = LiveState()
    job = JobSettings(lake_uri=(tmp_path / "lake").as_uri())
    app = create_app(settings, job, state=state, backfill=False)
    return app, state


def read_events(response, limit: int) -> list[tuple[str, dict]]:
    """Parse ``limit`` server-sent events from a streamed response."""
    events, name, data = [], None, []
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data.append(line.removeprefix("data: "))
        elif line == "" and name:
            events.append((name, json.loads("\n".join(data))))
            name, data = None, []
            if len(events) == limit:
                break
    return events


# --- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DASHBOARD_PORT": "web"}, "DASHBOARD_PORT"),
        ({"DASHBOARD_PORT": "70000"}, "DASHBOARD_PORT"),
        ({"DASHBOARD_HOST": "http://0.0.0.0"}, "DASHBOARD_HOST"),
        ({"DASHBOARD_TILE_URL": "ftp://tiles/{z}/{x}/{y}.png"}, "DASHBOARD_TILE_URL"),
        ({"DASHBOARD_TILE_URL": "https://tiles.example/map.png"}, "DASHBOARD_TILE_URL"),
        ({"DASHBOARD_CONSUMER_GROUP": "my group"}, "DASHBOARD_CONSUMER_GROUP"),
        ({"DASHBOARD_COALESCE_SECONDS": "0"}, "DASHBOARD_COALESCE_SECONDS"),
        ({"DASHBOARD_HISTORY_MINUTES": "half"}, "DASHBOARD_HISTORY_MINUTES"),
    ],
)
def test_a_wrong_setting_names_its_variable(env, variable):
    with pytest.raises(SettingsError, match=variable):
        DashboardSettings.from_env(env)


def test_the_dashboard_binds_to_loopback_unless_told_otherwise():
    default = DashboardSettings.from_env({})
    assert (default.host, default.port, default.is_loopback) == ("127.0.0.1", 8050, True)
    assert not DashboardSettings.from_env({"DASHBOARD_HOST": "0.0.0.0"}).is_loopback


@pytest.mark.parametrize(
    ("argv", "env", "line"),
    [
        (["--port", "0"], {}, "error: --port must be at least 1; got '0'"),
        ([], {"DASHBOARD_PORT": "0"}, "error: DASHBOARD_PORT must be at least 1; got '0'"),
    ],
)
def test_a_wrong_setting_stops_the_command_with_one_error_line(argv, env, line):
    """The error names what the user set: the flag, or else the variable."""
    result = subprocess.run(
        [sys.executable, "-m", "scripts.dashboard", *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **env},
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [line]


def test_the_flags_override_their_variables_and_are_the_settings_own():
    from emr_jobs.core.kafka import KafkaSettings
    from scripts.dashboard.__main__ import build_parser

    env = {
        "DASHBOARD_HOST": "127.0.0.2",
        "DASHBOARD_PORT": "8100",
        "KAFKA_BOOTSTRAP_SERVERS": "env:9092",
        "LAKE_URI": "file:///env/lake",
    }
    none = build_parser().parse_args([])
    assert (
        DashboardSettings.from_args(none, env).host,
        KafkaSettings.from_args(none, env).bootstrap_servers,
        JobSettings.from_args(none, env).lake_uri,
    ) == ("127.0.0.2", "env:9092", "file:///env/lake")
    flags = "--host 0.0.0.0 --port 9000 --bootstrap-servers flag:9092 --lake-uri file:///flag/lake"
    args = build_parser().parse_args(flags.split())
    dash = DashboardSettings.from_args(args, env)
    assert (dash.host, dash.port, dash.is_loopback) == ("0.0.0.0", 9000, False)
    assert KafkaSettings.from_args(args, env).bootstrap_servers == "flag:9092"
    assert JobSettings.from_args(args, env).lake_uri == "file:///flag/lake"
    help_text = build_parser().format_help()
    for flag, variable in (
        ("--host", "DASHBOARD_HOST"),
        ("--port", "DASHBOARD_PORT"),
        ("--lake-uri", "LAKE_URI"),
    ):
        assert flag in help_text and variable in help_text
    # Every variable of the dashboard is in the help, from the settings class.
    for variable, _ in DashboardSettings.variables():
        assert variable in help_text
    # The job's own flags (trigger, timeout) are not the dashboard's.
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--trigger-interval", "5 seconds"])


def test_an_unreachable_broker_is_an_error_within_seconds(tmp_path):
    from scripts.local_broker import free_port

    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.dashboard",
            "--port",
            str(free_port()),
            "--bootstrap-servers",
            f"127.0.0.1:{free_port()}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            **os.environ,
            "DASHBOARD_CONNECT_TIMEOUT_SECONDS": "3",
            "LAKE_URI": (tmp_path / "lake").as_uri(),
        },
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    assert "cannot reach Kafka" in result.stderr and "KAFKA_BOOTSTRAP_SERVERS" in result.stderr
    assert "Traceback" not in result.stderr
    assert elapsed < 20, f"took {elapsed:.1f}s"


def test_missing_front_end_libraries_say_how_to_install_them(tmp_path):
    with pytest.raises(FrontEndMissing, match="scripts/setup_dashboard.sh"):
        check_front_end(tmp_path / "node_modules")


# --- the page ------------------------------------------------------------------------------------


def test_the_page_and_its_libraries_come_from_this_server(app_state):
    app, _ = app_state
    with TestClient(app) as client:
        page = client.get("/")
        assert page.status_code == 200
        html = page.text
        assert "http://" not in html and "https://" not in html  # no CDN
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        for path, marker in [
            ("/vendor/leaflet/leaflet.js", "Leaflet"),
            ("/vendor/leaflet/leaflet.css", ".leaflet-pane"),
            ("/vendor/uplot/uPlot.iife.min.js", "uPlot"),
            ("/static/app.js", "EventSource"),
        ]:
            assert path in html or path == "/static/app.js"
            response = client.get(path)
            assert response.status_code == 200, path
            assert marker in response.text, path


def test_the_base_map_is_drawn_from_the_route_data(app_state):
    app, _ = app_state
    with TestClient(app) as client:
        base = client.get("/api/basemap").json()
    route = sections()
    assert [s["id"] for s in base["sections"]] == [s.id for s in route]
    assert base["sections"][0]["path"][0] == [route[0].start_lat, route[0].start_lon]
    assert base["waypoints"][0]["name"].startswith("Marble Arch")
    assert base["waypoints"][-1]["name"].startswith("Victoria Square")
    assert base["waypoints"][0]["label"] and base["waypoints"][-1]["label"]
    (south, west), (north, east) = base["bounds"]
    assert all(south <= w["lat"] <= north and west <= w["lon"] <= east for w in base["waypoints"])
    assert base["tileUrl"] == ""


def test_a_tile_url_is_allowed_by_the_content_security_policy(tmp_path):
    settings = DashboardSettings(tile_url="https://{s}.tiles.example/{z}/{x}/{y}.png")
    app = create_app(settings, JobSettings(lake_uri=tmp_path.as_uri()), backfill=False)
    with TestClient(app) as client:
        response = client.get("/api/basemap")
    assert response.json()["tileUrl"] == settings.tile_url
    assert (
        "img-src 'self' data: https://*.tiles.example"
        in response.headers["content-security-policy"]
    )


# --- coalescing ----------------------------------------------------------------------------------


def test_positions_are_coalesced_to_the_newest_one_per_vehicle():
    positions = VehiclePositions()
    base = int(NOW.timestamp() * 1000)
    positions.update_many(
        [("v1", 51.5 + i / 1000, -0.1, 50.0 + i, base + i * 100) for i in range(10)]
    )
    positions.update_many([("v2", 52.0, -1.0, 80.0, base)])
    changes = positions.take_changes()
    rows = {r[0]: r for r in changes.rows}
    assert len(changes.rows) == 2
    assert rows["v1"][1:4] == [51.509, -0.1, 59.0]
    assert changes.t0 + rows["v1"][4] == base + 900  # the row carries its event time


def test_only_what_changed_is_sent_again():
    positions = VehiclePositions()
    positions.update_many([("moving", 51.5, -0.1, 50.0, 1), ("parked", 52.0, -1.0, 0.0, 1)])
    assert len(positions.take_changes().rows) == 2
    positions.update_many([("moving", 51.501, -0.1, 52.0, 2), ("parked", 52.0, -1.0, 0.0, 2)])
    assert [r[0] for r in positions.take_changes().rows] == ["moving"]
    assert not positions.take_changes()  # nothing new: no frame at all


def test_a_late_reading_never_moves_a_vehicle_back():
    positions = VehiclePositions()
    positions.update_many([("v1", 51.6, -0.2, 60.0, 2_000)])
    positions.take_changes()
    positions.update_many([("v1", 51.5, -0.1, 40.0, 1_000)])
    assert not positions.take_changes()
    assert positions.stale == 1


def test_a_silent_vehicle_leaves_the_map():
    now = [100.0]
    positions = VehiclePositions(ttl_seconds=60, clock=lambda: now[0])
    positions.update_many([("arrived", 52.48, -1.9, 0.0, 1), ("driving", 52.0, -1.3, 90.0, 1)])
    positions.take_changes()
    now[0] = 130.0
    positions.update_many([("driving", 52.01, -1.3, 90.0, 2)])
    positions.take_changes()
    now[0] = 175.0
    changes = positions.take_changes()
    assert changes.gone == ["arrived"]
    assert len(positions) == 1


def test_ten_thousand_vehicles_make_one_compact_frame_per_tick():
    positions = VehiclePositions()
    base = int(NOW.timestamp() * 1000)
    for tick in range(5):  # five readings per vehicle before the tick
        positions.update_many(
            [
                (
                    f"vehicle-{i:05d}",
                    51.5 + i * 1e-4 + tick * 1e-3,
                    -0.1,
                    90.0,
                    base + tick * 1000 + i % 1000,
                )
                for i in range(10_000)
            ]
        )
    started = time.perf_counter()
    changes = positions.take_changes()
    took = time.perf_counter() - started
    assert len(changes.rows) == 10_000
    assert len({r[0] for r in changes.rows}) == 10_000
    size = len(json.dumps(changes.as_message(), separators=(",", ":")))
    assert size / 10_000 < 50, f"{size / 10_000:.1f} bytes per vehicle"
    assert took < 1.0, f"one tick took {took:.2f}s"  # generous: the tick runs once a second


# --- server-sent events --------------------------------------------------------------------------


def test_a_browser_gets_a_snapshot_then_only_the_changes(app_state):
    app, state = app_state
    state.ingest_vehicles(
        [
            vehicle("vehicle-00001", 51.51, -0.16, 30.0, NOW),
            vehicle("vehicle-00002", 51.52, -0.17, 40.0, NOW),
        ]
    )

    def later():
        time.sleep(0.5)
        state.ingest_vehicles(
            [
                vehicle("vehicle-00002", 51.53, -0.18, 45.0, NOW + timedelta(seconds=i))
                for i in range(1, 6)
            ]
        )

    with TestClient(app) as client:
        state.positions.take_changes()  # what browsers already have
        threading.Thread(target=later, daemon=True).start()
        with client.stream("GET", "/api/stream?limit=2") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = read_events(response, 2)
    (first, snapshot), (second, frame) = events
    assert first == "snapshot"
    assert {r[0] for r in snapshot["positions"]["v"]} == {"vehicle-00001", "vehicle-00002"}
    assert second == "positions"
    assert [r[:4] for r in frame["v"]] == [["vehicle-00002", 51.53, -0.18, 45.0]]
    assert frame["t0"] + frame["v"][0][4] == int((NOW + timedelta(seconds=5)).timestamp() * 1000)


def test_alerts_are_pushed_at_once_and_listed_newest_first(app_state):
    app, state = app_state

    def later():
        time.sleep(0.5)
        state.ingest("alerts", alert("late-news", NOW + timedelta(minutes=5), "critical"))

    with TestClient(app) as client:
        state.ingest("alerts", alert("a-old", NOW))
        state.ingest("alerts", alert("a-new", NOW + timedelta(minutes=1), "info"))
        state.ingest("alerts", alert("a-old", NOW))  # at least once: a repeat of the same id
        threading.Thread(target=later, daemon=True).start()
        with client.stream("GET", "/api/stream?limit=2") as response:
            events = read_events(response, 2)
        listed = client.get("/api/state").json()["alerts"]
    assert [a["id"] for a in events[0][1]["alerts"]] == ["a-new", "a-old"]
    assert events[1][0] == "alert" and events[1][1]["id"] == "late-news"
    assert events[1][1]["severity"] == "critical"
    assert [a["id"] for a in listed] == ["late-news", "a-new", "a-old"]


def test_a_record_that_breaks_its_contract_is_counted_not_shown():
    state = LiveState()
    bad = alert("x", NOW)
    bad["severity"] = "apocalyptic"
    state.ingest("alerts", bad)
    state.ingest("alerts", "not an object")
    assert state.alerts() == []
    assert state.stats["alerts"].invalid == 2


def test_an_incident_is_shown_on_its_section_until_resolved():
    state = LiveState()
    section = sections()[30]
    lat = (section.start_lat + section.end_lat) / 2
    lon = (section.start_lon + section.end_lon) / 2
    state.ingest("emergency", incident("inc-1", "Active", NOW, lat, lon))
    [shown] = state.incidents()
    assert (shown["incidentId"], shown["section"]) == ("inc-1", section.id)
    assert "incident" in state.section_flags()[section.id]
    state.ingest("emergency", incident("inc-1", "Resolved", NOW + timedelta(minutes=9), lat, lon))
    assert state.incidents() == []
    assert section.id not in state.section_flags()


def test_road_conditions_mark_slow_wet_and_foggy_sections():
    state = LiveState(history_minutes=30)
    slow, wet, foggy, fine = sections()[20], sections()[21], sections()[22], sections()[23]
    for minute in range(40):
        at = NOW + timedelta(minutes=minute)
        state.ingest("road_conditions", road_condition(slow, at, avg=0.3 * slow.limit_kmh))
        state.ingest("road_conditions", road_condition(wet, at, avg=wet.limit_kmh, rain=2.5))
        state.ingest("road_conditions", road_condition(fine, at, avg=fine.limit_kmh))
    state.ingest(
        "weather",
        {
            "timestamp": iso(NOW + timedelta(minutes=39)),
            "weatherCondition": "Fog",
            "location": {"latitude": foggy.start_lat, "longitude": foggy.start_lon},
        },
    )
    flags = state.section_flags()
    assert flags[slow.id] == ["slow"] and flags[wet.id] == ["wet"]
    assert flags[foggy.id] == ["fog"]
    assert fine.id not in flags
    history = state.conditions()[slow.id]
    assert len(history) == 31  # the last 30 minutes of one-minute windows
    assert history[0]["timestamp"] == iso(NOW + timedelta(minutes=9))


# --- health --------------------------------------------------------------------------------------


def write_checkpoint(folder: Path, batches: dict[int, dict], committed: list[int]) -> None:
    """A checkpoint as Spark writes it: ``offsets/<n>`` (three lines), ``commits/<n>``."""
    (folder / "offsets").mkdir(parents=True)
    (folder / "commits").mkdir()
    meta = {"batchWatermarkMs": 0, "batchTimestampMs": 1796009443992, "conf": {}}
    for batch, offsets in batches.items():
        (folder / "offsets" / str(batch)).write_text(
            "v1\n" + json.dumps(meta) + "\n" + json.dumps(offsets)
        )
    for batch in committed:
        (folder / "commits" / str(batch)).write_text('v1\n{"nextBatchWatermarkMs":0}')


def test_the_jobs_progress_is_its_newest_committed_batch(tmp_path):
    write_checkpoint(
        tmp_path,
        {
            0: {"vehicle_data": {"0": 10, "1": 12}},
            1: {"vehicle_data": {"0": 40, "1": 30}},
            2: {"vehicle_data": {"0": 90, "1": 80}},  # started, not committed yet
        },
        committed=[0, 1],
    )
    progress = read_checkpoint(tmp_path)
    assert progress.batch == 1
    assert progress.offsets == {"vehicle_data": {0: 40, 1: 30}}
    ends = {"vehicle_data": {0: 100, 1: 30, 2: 5}, "alerts": {0: 7}}
    assert behind(ends, progress.offsets) == {"vehicle_data": 65}  # partition 2: never read


def test_no_checkpoint_is_no_progress(tmp_path):
    assert read_checkpoint(tmp_path / "missing") is None


@pytest.mark.integration
def test_health_counts_events_per_second_and_the_jobs_lag(kafka_settings, tmp_path):
    """Against a real broker: rates from high watermarks, lag against the checkpoint."""
    from confluent_kafka import Producer

    from scripts.dashboard.health import HealthMonitor
    from scripts.topics import connect

    job = JobSettings(lake_uri=(tmp_path / "lake").as_uri())
    topic = kafka_settings.topic("vehicle")
    admin = connect(kafka_settings)
    monitor = HealthMonitor(kafka_settings, job, admin, lake_every=3600)
    deadline = time.monotonic() + 20  # new topics: leaders may take a moment
    while monitor.poll()["broker"] != "ok":
        assert time.monotonic() < deadline, monitor.doc["broker"]
        time.sleep(0.5)
    producer = Producer({"bootstrap.servers": kafka_settings.bootstrap_servers})
    for i in range(300):
        producer.produce(topic, key=f"v{i % 7}", value=b"{}", partition=i % 3)
    assert producer.flush(10) == 0
    producer.close()
    time.sleep(1.0)
    write_checkpoint(
        Path(job.checkpoint_location.removeprefix("file://")),
        {0: {topic: {"0": 60, "1": 100, "2": 40}}},
        committed=[0],
    )
    doc = monitor.poll()
    stream = doc["streams"]["vehicle"]
    assert stream["latestOffset"] == 300
    assert stream["eventsPerSecond"] > 0
    assert stream["behind"] == 300 - 200
    assert doc["job"]["state"] == "ok" and doc["job"]["batch"] == 0
    assert doc["streams"]["gps"]["eventsPerSecond"] == 0
    assert doc["lake"]["state"].startswith("unavailable")  # no lake yet: said, not crashed


# --- history from the lake -----------------------------------------------------------------------


@pytest.fixture
def lake(tmp_path):
    """A lake with ``vehicle``, ``vehicle_quarantine`` and ``emergency`` tables (pyiceberg)."""
    import pyarrow as pa
    from pyiceberg.catalog.sql import SqlCatalog

    job = JobSettings(lake_uri=(tmp_path / "lake").as_uri())
    (tmp_path / "lake").mkdir()
    cat = SqlCatalog(
        LAKE.catalog,
        uri=f"sqlite:///{tmp_path / 'lake' / 'catalog.db'}",
        warehouse=f"{job.lake_uri}/{LAKE.tables_prefix}",
    )
    cat.create_namespace(job.database)
    location = pa.struct([("latitude", pa.float64()), ("longitude", pa.float64())])
    ts = pa.timestamp("us", tz="UTC")
    vehicles = pa.table(
        {
            "deviceId": ["vehicle-00001"] * 5 + ["vehicle-00002"],
            "timestamp": pa.array(
                [NOW - timedelta(minutes=m) for m in (90, 50, 30, 10, 0)] + [NOW], ts
            ),
            "location": pa.array(
                [{"latitude": 51.5 + i / 100, "longitude": -0.2 - i / 100} for i in range(6)],
                location,
            ),
            "speed": [50.0, 60.0, 70.0, 80.0, 90.0, 10.0],
            "direction": [300.0] * 6,
            "odometerKm": [1.0, 2.0, 3.0, 4.0, 5.0, 1.0],
            "fuelLevel": [50.0] * 6,
        }
    )
    cat.create_table((job.database, "vehicle"), vehicles.schema).append(vehicles)
    for _ in range(2):  # two appends: the newest event time comes from the newest snapshot
        cat.load_table((job.database, "vehicle")).append(vehicles.slice(0, 1))
    quarantine = pa.table(
        {"reason": ["speed: above maximum 250"] * 2, "kafkaTimestamp": pa.array([NOW, NOW], ts)}
    )
    cat.create_table((job.database, "vehicle_quarantine"), quarantine.schema).append(quarantine)
    emergency = pa.table(
        {
            "incidentId": ["inc-9", "inc-9", "inc-8"],
            "timestamp": pa.array([NOW, NOW + timedelta(minutes=12), NOW], ts),
            "status": ["Active", "Resolved", "Active"],
            "type": ["Fire"] * 3,
            "description": ["Vehicle fire", "Cleared - Vehicle fire", "other"],
            "deviceId": ["vehicle-00003"] * 3,
            "location": pa.array([{"latitude": 52.0, "longitude": -1.3}] * 3, location),
        }
    )
    cat.create_table((job.database, "emergency"), emergency.schema).append(emergency)
    return job


def test_the_last_hour_of_one_vehicle_comes_from_the_lake(lake):
    app = create_app(DashboardSettings(), lake, backfill=False)
    with TestClient(app) as client:
        doc = client.get(
            "/api/history/vehicle/vehicle-00001", params={"minutes": 60, "until": NOW.isoformat()}
        ).json()
    assert [r["speed"] for r in doc["readings"]] == [60.0, 70.0, 80.0, 90.0]
    assert doc["readings"][0]["timestamp"] == iso(NOW - timedelta(minutes=50))
    assert doc["readings"][-1]["location"] == pytest.approx({"latitude": 51.54, "longitude": -0.24})


def test_an_incidents_timeline_comes_from_the_lake(lake):
    app = create_app(DashboardSettings(), lake, backfill=False)
    with TestClient(app) as client:
        doc = client.get("/api/history/incident/inc-9").json()
        bad = client.get("/api/history/incident/x' OR '1'='1")
    assert [(r["kind"], r["status"]) for r in doc["timeline"]] == [
        ("report", "Active"),
        ("report", "Resolved"),
    ]
    assert bad.status_code == 400


def test_history_without_a_lake_says_why(tmp_path):
    app = create_app(
        DashboardSettings(), JobSettings(lake_uri=(tmp_path / "none").as_uri()), backfill=False
    )
    with TestClient(app) as client:
        response = client.get("/api/history/incident/inc-1")
    assert response.status_code == 503
    assert "LAKE_CATALOG_URI" in response.json()["detail"]


def test_lake_health_reads_quarantine_rate_and_freshness_from_metadata(lake):
    from scripts.dashboard.health import lake_status

    status = lake_status(lake, int(NOW.timestamp() * 1000))
    vehicle_status = status["vehicle"]
    assert (vehicle_status["written"], vehicle_status["quarantined"]) == (8, 2)
    assert vehicle_status["quarantineRate"] == pytest.approx(0.2)
    # The newest snapshot appended the 90-minutes-old row again: its files' upper bound.
    assert vehicle_status["lakeNewestEventMs"] == int(
        (NOW - timedelta(minutes=90)).timestamp() * 1000
    )
    assert status["emergency"]["quarantineRate"] == 0.0
    assert "gps" not in status  # no table yet: not invented
