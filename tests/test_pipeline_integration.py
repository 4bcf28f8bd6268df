"""The real job against the real broker: exactly once, quarantine, crash and restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Producer
from jobrunner import job_env, run_job

from emr_jobs.contracts import LAKE, STREAMS
from emr_jobs.settings import REPO_ROOT
from producer.kafka_producer import send_events
from producer.simulator import SimulationOptions, simulate
from producer.wire import to_json_bytes
from scripts.lake import committed_files, read_table
from scripts.run_job import spark_submit_command

pytestmark = pytest.mark.integration


def job_summary(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("JOB_SUMMARY ")]
    assert lines, "the job printed no JOB_SUMMARY line"
    return json.loads(lines[-1].removeprefix("JOB_SUMMARY "))


def lake_rows(lake: Path, area: str, stream: str) -> list[str]:
    """Committed rows as sorted canonical JSON, without the ingest time (it differs per run)."""
    table = read_table(lake.as_uri(), area, stream)
    if table is None:
        return []
    rows = []
    for row in table.to_pylist():
        row.pop("ingestTime", None)
        rows.append(json.dumps(row, sort_keys=True, default=str))
    return sorted(rows)


def unique_events(events) -> dict[str, dict[str, dict]]:
    by_stream: dict[str, dict[str, dict]] = {s: {} for s in STREAMS}
    for e in events:
        by_stream[e.stream][e.payload["id"]] = e.payload
    return by_stream


def test_every_produced_event_lands_exactly_once(kafka_settings, lake_dir):
    options = SimulationOptions(vehicles=2, seed=11, duplicate_fraction=0.03, late_fraction=0.03)
    events = list(simulate(options))
    injected = Counter(e.injected for e in events)
    assert injected["duplicate"] > 0 and injected["late"] > 0, "the run must exercise both"
    report = send_events(events, kafka_settings, show_progress=False)
    assert report.ok

    result = run_job(kafka_settings, lake_dir, "--available-now")
    summary = job_summary(result.stdout)
    expected = unique_events(events)
    for stream in STREAMS:
        table = read_table(lake_dir.as_uri(), LAKE.data_prefix, stream)
        ids = table.column("id").to_pylist() if table is not None else []
        assert len(ids) == len(set(ids)), f"{stream}: an id was written twice"
        assert set(ids) == set(expected[stream]), f"{stream}: rows differ from produced events"
        assert lake_rows(lake_dir, LAKE.quarantine_prefix, stream) == []
        duplicates_sent = sum(1 for e in events if e.stream == stream and e.injected == "duplicate")
        assert summary[stream]["duplicates_dropped"] == duplicates_sent
        assert summary[stream]["late_rows_dropped"] == 0
    vehicle = read_table(lake_dir.as_uri(), LAKE.data_prefix, "vehicle")
    assert {"date", "hour"} <= set(vehicle.column_names)
    assert set(vehicle.column("date").to_pylist()) == {"2026-01-05"}
    assert len(set(vehicle.column("hour").to_pylist())) >= 2, "a journey spans several hours"
    assert (lake_dir / "checkpoints" / "vehicle" / "data" / "commits").is_dir()


BAD_VALUES = [
    (b"{definitely not json", "malformed JSON: not a JSON object"),
    (b"", "malformed JSON: not a JSON object"),
    (b"[1, 2, 3]", "malformed JSON: not a JSON object"),
]


def test_malformed_and_invalid_records_land_in_quarantine_while_good_rows_flow(
    kafka_settings, lake_dir
):
    events = list(simulate(SimulationOptions(vehicles=1, seed=2, max_events=1500)))
    good = unique_events(events)
    producer = Producer({"bootstrap.servers": kafka_settings.bootstrap_servers})
    expected_bad: dict[str, list[tuple[str, str]]] = {s: [] for s in STREAMS}
    for stream in STREAMS:
        topic = kafka_settings.topic(stream)
        sample = next(iter(good[stream].values()), None) or next(
            e.payload for e in simulate(SimulationOptions(vehicles=3, seed=9)) if e.stream == stream
        )
        wrong_type = {**sample, "id": "bad-type-" + stream, "location": "51.5,-0.1"}
        out_of_range = {
            **sample,
            "id": "bad-range-" + stream,
            "location": {"latitude": 123.0, "longitude": 0.0},
        }
        cases = [(v, r) for v, r in BAD_VALUES] + [
            (to_json_bytes(wrong_type), "location: expected location"),
            (to_json_bytes(out_of_range), "location.latitude: out of range [-90, 90]"),
        ]
        for value, reason in cases:
            producer.produce(topic, value=value, key=b"bad")
            expected_bad[stream].append((value.decode(), reason))
    assert producer.flush(10) == 0
    report = send_events(events, kafka_settings, show_progress=False)
    assert report.ok

    run_job(kafka_settings, lake_dir, "--available-now")
    for stream in STREAMS:
        table = read_table(lake_dir.as_uri(), LAKE.quarantine_prefix, stream)
        got = sorted(
            zip(
                table.column("rawValue").to_pylist(),
                table.column("reason").to_pylist(),
                strict=True,
            )
        )
        assert got == sorted(expected_bad[stream])
        coords = table.select(["kafkaTopic", "kafkaPartition", "kafkaOffset"]).to_pylist()
        assert all(
            c["kafkaTopic"] == kafka_settings.topic(stream) and c["kafkaOffset"] >= 0
            for c in coords
        )
        data = read_table(lake_dir.as_uri(), LAKE.data_prefix, stream)
        written = set(data.column("id").to_pylist()) if data is not None else set()
        assert written == set(good[stream])


def _committed_batches(lake: Path, stream: str) -> int:
    commits = lake / "checkpoints" / stream / "data" / "commits"
    return len([p for p in commits.glob("[0-9]*")]) if commits.is_dir() else 0


@pytest.mark.slow
def test_a_killed_driver_restarts_from_its_checkpoint_with_nothing_lost_or_doubled(
    kafka_settings, lake_dir, tmp_path
):
    """SIGKILL the driver while events are still arriving, restart it from its checkpoint, and
    the lake must equal the lake of an uninterrupted run: nothing lost, nothing doubled.

    "Mid-stream" is arranged, not timed: a backlog is produced first, the job starts on it, and
    the rest of the journey arrives slowly (realtime pace) while the driver is killed.
    """
    options = SimulationOptions(vehicles=2, seed=23, duplicate_fraction=0.02, late_fraction=0.02)
    events = list(simulate(options))
    split = len(events) // 3
    assert send_events(events[:split], kafka_settings, show_progress=False).ok
    tail_report = {}

    def produce_tail() -> None:
        # The rest of the journey (about 80 simulated minutes) over about 80 wall seconds.
        tail_report["report"] = send_events(
            events[split:], kafka_settings, pace="realtime", speedup=60, show_progress=False
        )

    env = job_env(kafka_settings, JOB_TRIGGER_INTERVAL="2 seconds")
    # The driver's output goes to a file: an unread pipe fills up and blocks the driver.
    driver_log = tmp_path / "driver.log"
    with open(driver_log, "wb") as log_file:
        driver = subprocess.Popen(
            spark_submit_command(["--lake-uri", lake_dir.as_uri()]),
            env=env,
            cwd=REPO_ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def driver_tail() -> str:
        return driver_log.read_text(errors="replace")[-3000:]

    producing = threading.Thread(target=produce_tail)
    try:
        deadline = time.monotonic() + 300
        while _committed_batches(lake_dir, "vehicle") < 1:
            assert driver.poll() is None, driver_tail()
            assert time.monotonic() < deadline, "the job committed no batch\n" + driver_tail()
            time.sleep(0.5)
        producing.start()
        committed = _committed_batches(lake_dir, "vehicle")
        while _committed_batches(lake_dir, "vehicle") < committed + 2:
            assert driver.poll() is None, driver_tail()
            assert time.monotonic() < deadline, (
                "the job stopped committing batches\n" + driver_tail()
            )
            time.sleep(0.5)
        assert producing.is_alive(), "the kill must happen while events still arrive"
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(30)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        if producing.is_alive() or producing.ident is not None:
            producing.join(600)
    assert tail_report["report"].ok
    rows_at_kill = len(lake_rows(lake_dir, LAKE.data_prefix, "vehicle"))

    run_job(kafka_settings, lake_dir, "--available-now")
    uninterrupted = tmp_path / "uninterrupted-lake"
    run_job(kafka_settings, uninterrupted, "--available-now")

    expected = unique_events(events)
    assert 0 < rows_at_kill < len(expected["vehicle"])
    for stream in STREAMS:
        for area in (LAKE.data_prefix, LAKE.quarantine_prefix):
            restarted = lake_rows(lake_dir, area, stream)
            assert restarted == lake_rows(uninterrupted, area, stream), f"{area}/{stream} differs"
        ids = [json.loads(r)["id"] for r in lake_rows(lake_dir, LAKE.data_prefix, stream)]
        assert sorted(ids) == sorted(expected[stream]), f"{stream}: lost or doubled rows"
        # After the restart, listing the folder gives the committed files and nothing else.
        table = lake_dir / LAKE.data_prefix / stream
        assert sorted(str(p) for p in table.rglob("part-*.parquet")) == committed_files(
            table.as_uri()
        )


def _run_job_expecting_failure(env: dict[str, str], lake: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        spark_submit_command(["--available-now", "--lake-uri", lake.as_uri()]),
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_job_fails_fast_naming_the_setting_when_the_broker_is_unreachable(
    kafka_settings, lake_dir
):
    from scripts.local_broker import free_port

    env = job_env(kafka_settings, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")
    result = _run_job_expecting_failure(env, lake_dir)
    output = result.stdout + result.stderr  # spark-submit pipes the driver's stderr to stdout
    assert result.returncode == 2, output[-3000:]
    assert "cannot reach Kafka at 127.0.0.1:" in output
    assert "KAFKA_BOOTSTRAP_SERVERS" in output
    assert "TimeoutException" in output, "the Java root cause is shown, not a py4j wrapper"
    assert not (lake_dir / "checkpoints").exists(), "no query may start"


def test_the_job_names_missing_topics_and_their_settings(kafka_settings, lake_dir):
    env = job_env(kafka_settings, WEATHER_TOPIC="no-such-weather-topic")
    result = _run_job_expecting_failure(env, lake_dir)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "no-such-weather-topic (WEATHER_TOPIC)" in output
    assert "scripts.topics create" in output


def test_a_restart_after_an_interrupted_batch_deletes_only_that_batchs_uncommitted_files(
    kafka_settings, lake_dir
):
    """What a crash between writing files and committing them leaves: ``offsets/N`` without
    ``commits/N`` and a part file no log lists. The restart removes that file, so a plain folder
    listing (Athena, a DuckDB glob) sees each row once. Files it cannot explain stay."""
    import shutil

    from emr_jobs.sink_log import batch_ids

    events = list(simulate(SimulationOptions(vehicles=1, seed=31, max_events=800)))
    assert send_events(events, kafka_settings, show_progress=False).ok
    run_job(kafka_settings, lake_dir, "--available-now")

    vehicle = lake_dir / "data" / "vehicle"
    committed = committed_files(vehicle.as_uri())
    orphan = Path(committed[0]).with_name(
        "part-00000-00000000-dead-beef-0000-000000000000.c000.snappy.parquet"
    )
    shutil.copy(committed[0], orphan)
    checkpoint = lake_dir / "checkpoints" / "vehicle" / "data"
    last = max(batch_ids(p.name for p in (checkpoint / "offsets").iterdir()))
    shutil.copy(checkpoint / "offsets" / str(last), checkpoint / "offsets" / str(last + 1))
    gps = lake_dir / "data" / "gps"
    gps_file = Path(committed_files(gps.as_uri())[0])
    stray = gps_file.with_name(
        "part-00000-00000000-0000-0000-0000-5a5a5a5a5a5a.c000.snappy.parquet"
    )
    shutil.copy(gps_file, stray)

    run_job(kafka_settings, lake_dir, "--available-now")

    assert not orphan.exists()
    assert stray.exists(), "no interrupted gps batch: an unexplained file is not deleted"
    on_disk = sorted(str(p) for p in vehicle.rglob("part-*.parquet"))
    assert on_disk == committed_files(vehicle.as_uri())
    ids = read_table(lake_dir.as_uri(), LAKE.data_prefix, "vehicle").column("id").to_pylist()
    assert sorted(ids) == sorted(unique_events(events)["vehicle"])
