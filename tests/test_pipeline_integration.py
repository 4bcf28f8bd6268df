"""The real job against the real broker, on the Iceberg lake: exactly once across the eleven
tables, quarantine, poison, late events, faults after k commits, SIGKILLs and restarts.

Every assertion reads the lake through its catalog (pyiceberg), as a user would.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from jobrunner import job_env, run_job

from emr_jobs.core.contracts import CONTRACTS, LAKE, STREAMS
from emr_jobs.core.paths import REPO_ROOT
from emr_jobs.lake_writer import CRASH_AFTER_COMMITS_ENV
from emr_jobs.settings import JobSettings
from producer.kafka_producer import send_events
from producer.simulator import SimulationOptions, simulate
from producer.wire import to_json_bytes
from scripts import lake
from scripts.run_job import spark_submit_command

pytestmark = pytest.mark.integration

COORDS = ("kafkaTopic", "kafkaPartition", "kafkaOffset")


def job_summary(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("JOB_SUMMARY ")]
    assert lines, "the job printed no JOB_SUMMARY line"
    return json.loads(lines[-1].removeprefix("JOB_SUMMARY "))


def settings(lake_dir: Path) -> JobSettings:
    return JobSettings(lake_uri=lake_dir.as_uri())


def table(lake_dir: Path, name: str) -> list[dict]:
    return lake.read_table(name, settings(lake_dir)).to_pylist()


def canonical(rows: list[dict]) -> list[str]:
    """Rows as sorted JSON without the ingest time (it differs per run)."""
    return sorted(
        json.dumps({k: v for k, v in r.items() if k != "ingestTime"}, sort_keys=True, default=str)
        for r in rows
    )


def coordinates(rows: list[dict]) -> list[tuple[str, int, int]]:
    return [tuple(r[c] for c in COORDS) for r in rows]


def unique_events(events) -> dict[str, dict[str, dict]]:
    by_stream: dict[str, dict[str, dict]] = {s: {} for s in STREAMS}
    for e in events:
        by_stream[e.stream][e.payload["id"]] = e.payload
    return by_stream


def topic_records(kafka_settings) -> set[tuple[str, int, int]]:
    """The coordinates of every record in the five topics, read to each partition's end."""
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_settings.bootstrap_servers,
            "group.id": f"audit-{time.monotonic_ns()}",
            "enable.auto.commit": False,
        }
    )
    found: set[tuple[str, int, int]] = set()
    try:
        for stream in STREAMS:
            topic = kafka_settings.topic(stream)
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            for p in partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                found.update((topic, p, o) for o in range(low, high))
    finally:
        consumer.close()
    return found


def lake_partition_of_records(lake_dir: Path) -> Counter:
    """How often each Kafka record appears across data, quarantine and duplicates tables."""
    seen: Counter = Counter()
    for name in LAKE.tables(STREAMS):
        seen.update(coordinates(table(lake_dir, name)))
    return seen


def assert_every_record_is_in_exactly_one_place(kafka_settings, lake_dir: Path) -> int:
    records = topic_records(kafka_settings)
    seen = lake_partition_of_records(lake_dir)
    missing = records - set(seen)
    twice = {c: n for c, n in seen.items() if n > 1}
    assert not missing, f"{len(missing)} records are in no table, e.g. {sorted(missing)[:5]}"
    assert not twice, f"records in more than one place: {list(twice.items())[:5]}"
    assert set(seen) == records
    return len(records)


def test_every_produced_event_lands_exactly_once(kafka_settings, lake_dir):
    options = SimulationOptions(vehicles=2, seed=11, duplicate_fraction=0.03, late_fraction=0.03)
    events = list(simulate(options))
    injected = Counter(e.injected for e in events)
    assert injected["duplicate"] > 0 and injected["late"] > 0, "the run must exercise both"
    assert send_events(events, kafka_settings, show_progress=False).ok

    result = run_job(kafka_settings, lake_dir, "--available-now")
    summary = job_summary(result.stdout)
    expected = unique_events(events)
    duplicates = Counter(r["stream"] for r in table(lake_dir, LAKE.duplicates_table))
    for stream in STREAMS:
        ids = [r["id"] for r in table(lake_dir, stream)]
        assert len(ids) == len(set(ids)), f"{stream}: an id was written twice"
        assert set(ids) == set(expected[stream]), f"{stream}: rows differ from produced events"
        assert table(lake_dir, LAKE.quarantine_table(stream)) == []
        sent = sum(1 for e in events if e.stream == stream and e.injected == "duplicate")
        assert duplicates[stream] == sent
        counts = summary[stream]
        assert counts["duplicates"] == sent and counts["written"] == len(ids)
        assert counts["read"] == counts["written"] + counts["quarantined"] + counts["duplicates"]
    catalog = lake.catalog(settings(lake_dir))
    vehicle = catalog.load_table(("smartcity", "vehicle"))
    assert [str(f.transform) for f in vehicle.spec().fields] == ["hour"]
    hours = {
        r["timestamp"].replace(minute=0, second=0, microsecond=0)
        for r in table(lake_dir, "vehicle")
    }
    assert len(hours) >= 2, "a journey spans several hours"
    assert (lake_dir / "checkpoints" / "job" / "commits").is_dir()
    assert not (lake_dir / "data").exists(), "no Parquet folders outside the Iceberg tables"
    assert_every_record_is_in_exactly_one_place(kafka_settings, lake_dir)


def poison_records(sample: dict) -> list[tuple[bytes, str]]:
    """Records no table may take, each with the reason its quarantine row must carry."""
    return [
        (b"{definitely not json", "malformed JSON: not a JSON object"),
        (b"", "malformed JSON: not a JSON object"),
        (b"[1, 2, 3]", "malformed JSON: not a JSON object"),
        (b'{"id": "\xff\xfe", "schemaVersion": 1}', "required"),
        (
            to_json_bytes(
                {**sample, "id": f"future-{sample['id']}", "timestamp": "9999-12-31T23:59:59.000Z"}
            ),
            "timestamp: more than 300s after the Kafka record time (JOB_MAX_FUTURE)",
        ),
        (
            to_json_bytes(
                {**sample, "id": f"epoch-{sample['id']}", "timestamp": "1970-01-01T00:00:00.000Z"}
            ),
            "timestamp: before 2000-01-01 00:00:00 UTC (JOB_EVENT_TIME_FLOOR)",
        ),
        (
            to_json_bytes({**sample, "id": f"v9-{sample['id']}", "schemaVersion": 9}),
            f"schemaVersion: 9 is newer than this job's contract ({CONTRACTS['vehicle'].version})",
        ),
        (
            to_json_bytes({**sample, "id": f"type-{sample['id']}", "location": "51.5,-0.1"}),
            "location: expected location",
        ),
    ]


def produce_raw(kafka_settings, stream: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": kafka_settings.bootstrap_servers})
    for value in values:
        producer.produce(kafka_settings.topic(stream), value=value, key=b"bad")
    assert producer.flush(10) == 0


def first_payloads(seed: int) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for e in simulate(SimulationOptions(vehicles=3, seed=seed)):
        out.setdefault(e.stream, e.payload)
        if len(out) == len(STREAMS):
            return out
    raise AssertionError("the simulation did not emit every stream")


def test_bad_records_land_in_quarantine_readable_by_duckdb_and_pyarrow(kafka_settings, lake_dir):
    events = list(simulate(SimulationOptions(vehicles=1, seed=2, max_events=1500)))
    samples = first_payloads(9)
    expected: dict[str, list[tuple[bytes, str]]] = {}
    for stream in STREAMS:
        expected[stream] = poison_records(samples[stream])
        produce_raw(kafka_settings, stream, [v for v, _ in expected[stream]])
    assert send_events(events, kafka_settings, show_progress=False).ok

    run_job(kafka_settings, lake_dir, "--available-now")
    good = unique_events(events)
    for stream in STREAMS:
        rows = table(lake_dir, LAKE.quarantine_table(stream))
        got = sorted((bytes(r["rawBytes"]), r["reason"]) for r in rows)
        want = sorted(expected[stream])
        assert [g[0] for g in got] == [w[0] for w in want], "the exact bytes are kept"
        for (_, reason), (_, expected_reason) in zip(got, want, strict=True):
            assert expected_reason in reason, (reason, expected_reason)
        for r in rows:
            assert r["rawValue"] == bytes(r["rawBytes"]).decode("utf-8", errors="replace")
            assert r["kafkaTopic"] == kafka_settings.topic(stream) and r["kafkaOffset"] >= 0
        written = {r["id"] for r in table(lake_dir, stream)}
        assert written == set(good[stream])
    # Every quarantine row of a poison run reads in DuckDB and in pyarrow, text and bytes.
    job = settings(lake_dir)
    for stream in STREAMS:
        name = LAKE.quarantine_table(stream)
        arrow = lake.read_table(name, job)
        assert len(arrow.column("rawValue").to_pylist()) == len(expected[stream])
        result = lake.query(f"SELECT rawValue, rawBytes, reason FROM {name}", job).fetchall()
        assert len(result) == len(expected[stream])


def _commits(lake_dir: Path) -> int:
    folder = lake_dir / "checkpoints" / "job" / "commits"
    return len(list(folder.glob("[0-9]*"))) if folder.is_dir() else 0


def _start_driver(kafka_settings, lake_dir: Path, log_file, **env: str) -> subprocess.Popen:
    # The driver's output goes to a file: an unread pipe fills up and blocks the driver.
    return subprocess.Popen(
        spark_submit_command(["--lake-uri", lake_dir.as_uri()]),
        env=job_env(kafka_settings, **env),
        cwd=REPO_ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _kill(driver: subprocess.Popen) -> None:
    if driver.poll() is None:
        os.killpg(driver.pid, signal.SIGKILL)
    driver.wait(30)


def assert_lake_holds(lake_dir: Path, events, bad: dict[str, int] | None = None) -> None:
    """Each unique event once in its table; each repeat once in duplicates; bad rows once."""
    expected = unique_events(events)
    duplicates = Counter(r["stream"] for r in table(lake_dir, LAKE.duplicates_table))
    for stream in STREAMS:
        ids = [r["id"] for r in table(lake_dir, stream)]
        assert sorted(ids) == sorted(expected[stream]), f"{stream}: lost or doubled rows"
        sent = sum(1 for e in events if e.stream == stream)
        assert duplicates[stream] == sent - len(expected[stream]), f"{stream}: duplicates"
        quarantined = len(table(lake_dir, LAKE.quarantine_table(stream)))
        assert quarantined == (bad or {}).get(stream, 0), f"{stream}: quarantine"


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

    driver_log = tmp_path / "driver.log"
    producing = threading.Thread(target=produce_tail)
    with open(driver_log, "wb") as log_file:
        driver = _start_driver(kafka_settings, lake_dir, log_file, JOB_TRIGGER_INTERVAL="2 seconds")

    def driver_tail() -> str:
        return driver_log.read_text(errors="replace")[-3000:]

    try:
        deadline = time.monotonic() + 300
        while _commits(lake_dir) < 1:
            assert driver.poll() is None, driver_tail()
            assert time.monotonic() < deadline, "the job committed no batch\n" + driver_tail()
            time.sleep(0.5)
        producing.start()
        committed = _commits(lake_dir)
        while _commits(lake_dir) < committed + 2:
            assert driver.poll() is None, driver_tail()
            assert time.monotonic() < deadline, "the job stopped committing\n" + driver_tail()
            time.sleep(0.5)
        assert producing.is_alive(), "the kill must happen while events still arrive"
        _kill(driver)
    finally:
        _kill(driver)
        if producing.ident is not None:
            producing.join(600)
    assert tail_report["report"].ok
    rows_at_kill = len(table(lake_dir, "vehicle"))

    run_job(kafka_settings, lake_dir, "--available-now")
    uninterrupted = tmp_path / "uninterrupted-lake"
    run_job(kafka_settings, uninterrupted, "--available-now")

    assert 0 < rows_at_kill < len(unique_events(events)["vehicle"])
    for name in LAKE.tables(STREAMS):
        assert canonical(table(lake_dir, name)) == canonical(table(uninterrupted, name)), name
    assert_lake_holds(lake_dir, events)


@pytest.mark.parametrize("crash_after", [1, 11])
def test_a_crash_after_k_of_the_eleven_table_commits_then_a_restart_writes_each_row_once(
    kafka_settings, lake_dir, crash_after
):
    """One batch writes all eleven tables (every stream has good, bad and repeated records).
    The driver dies right after commit k; the restart replays the batch, skips the k tables
    that hold it, writes the others, and every row is in every table exactly once. k = 11:
    every table committed, only the checkpoint's own commit is missing."""
    events = list(
        simulate(SimulationOptions(vehicles=1, seed=5, max_events=2500, duplicate_fraction=0.05))
    )
    samples = first_payloads(9)
    for stream in STREAMS:
        produce_raw(
            kafka_settings,
            stream,
            [b"{broken", to_json_bytes(samples[stream]), to_json_bytes(samples[stream])],
        )
    assert send_events(events, kafka_settings, show_progress=False).ok
    # The samples: one copy per stream is a repeat, unless the simulation sent that id too.
    crashed = subprocess.run(
        spark_submit_command(["--available-now", "--lake-uri", lake_dir.as_uri()]),
        env=job_env(kafka_settings, **{CRASH_AFTER_COMMITS_ENV: str(crash_after)}),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert crashed.returncode != 0, "the fault must stop the driver"
    assert f"dying after commit {crash_after}" in crashed.stdout + crashed.stderr
    assert _commits(lake_dir) == 0, "the batch must not be committed in the checkpoint"
    written_before = sum(1 for name in LAKE.tables(STREAMS) if table(lake_dir, name))
    assert written_before == crash_after

    run_job(kafka_settings, lake_dir, "--available-now")
    assert_every_record_is_in_exactly_one_place(kafka_settings, lake_dir)
    for stream in STREAMS:
        ids = [r["id"] for r in table(lake_dir, stream)]
        expected = set(unique_events(events)[stream]) | {samples[stream]["id"]}
        assert sorted(ids) == sorted(expected), f"{stream}: lost or doubled rows"
        assert len(table(lake_dir, LAKE.quarantine_table(stream))) == 1, "the one {broken record"
    for name in LAKE.tables(STREAMS):
        batches = [s["batch"] for s in lake.snapshots(name, settings(lake_dir))]
        assert batches == ["0"], f"{name}: the batch is in it exactly once, got {batches}"


@pytest.mark.slow
def test_sigkills_at_random_moments_leave_the_lake_an_uninterrupted_run_would(
    kafka_settings, lake_dir, tmp_path
):
    events = list(simulate(SimulationOptions(vehicles=2, seed=41, duplicate_fraction=0.02)))
    assert send_events(events, kafka_settings, show_progress=False).ok
    rng = random.Random(7)
    kills = 0
    for attempt in range(3):
        with open(tmp_path / f"driver-{attempt}.log", "wb") as log_file:
            driver = _start_driver(
                kafka_settings,
                lake_dir,
                log_file,
                JOB_TRIGGER_INTERVAL="1 second",
                JOB_MAX_OFFSETS_PER_TRIGGER="600",
            )
        try:
            # Wait for the query to run, then kill at a random moment inside a batch or between.
            deadline = time.monotonic() + 240
            start = _commits(lake_dir)
            while _commits(lake_dir) == start and driver.poll() is None:
                assert time.monotonic() < deadline, "no batch committed"
                time.sleep(0.2)
            time.sleep(rng.uniform(0.0, 4.0))
            if driver.poll() is None:
                kills += 1
        finally:
            _kill(driver)
    assert kills >= 2, "most attempts must be killed mid-run"
    run_job(kafka_settings, lake_dir, "--available-now")
    assert_lake_holds(lake_dir, events)
    assert_every_record_is_in_exactly_one_place(kafka_settings, lake_dir)


@pytest.mark.slow
def test_poison_late_events_and_a_crash_never_lose_a_record(kafka_settings, lake_dir):
    """The accounting identity: every record in every topic is in exactly one of a data table,
    a quarantine table or ``duplicates``, after poison (year 9999, 1970, invalid UTF-8, a newer
    schema), repeats, a crash and restart, and a second simulation with the same start time
    run after the first (all its events are behind the first one's newest event: late)."""
    first = list(simulate(SimulationOptions(vehicles=1, seed=61, duplicate_fraction=0.03)))
    samples = first_payloads(9)
    for stream in STREAMS:
        produce_raw(kafka_settings, stream, [v for v, _ in poison_records(samples[stream])])
    assert send_events(first, kafka_settings, show_progress=False).ok
    crashed = subprocess.run(
        spark_submit_command(["--available-now", "--lake-uri", lake_dir.as_uri()]),
        env=job_env(kafka_settings, **{CRASH_AFTER_COMMITS_ENV: "6"}),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert crashed.returncode != 0
    restarted = job_summary(run_job(kafka_settings, lake_dir, "--available-now").stdout)

    second = list(simulate(SimulationOptions(vehicles=1, seed=62, duplicate_fraction=0.03)))
    assert send_events(second, kafka_settings, show_progress=False).ok
    later = job_summary(run_job(kafka_settings, lake_dir, "--available-now").stdout)

    total = assert_every_record_is_in_exactly_one_place(kafka_settings, lake_dir)
    assert total == len(first) + len(second) + 8 * len(STREAMS)
    expected = unique_events(first + second)
    for stream in STREAMS:
        ids = {r["id"] for r in table(lake_dir, stream)}
        assert ids == set(expected[stream]), f"{stream}: a valid event is missing"
        reasons = [r["reason"] for r in table(lake_dir, LAKE.quarantine_table(stream))]
        assert len(reasons) == 8
        assert any("JOB_MAX_FUTURE" in r for r in reasons)
        for summary in (restarted, later):
            c = summary[stream]
            assert c["read"] == c["written"] + c["quarantined"] + c["duplicates"]
    # The second run's events all lie behind the first's newest event time: late, and written.
    assert sum(later[s]["late"] for s in STREAMS) > 0.9 * sum(later[s]["written"] for s in STREAMS)
    assert sum(later[s]["read"] for s in STREAMS) == len(second)


def _run_job_expecting_failure(env: dict[str, str], lake_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        spark_submit_command(["--available-now", "--lake-uri", lake_dir.as_uri()]),
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def assert_one_error_line(result: subprocess.CompletedProcess, *needles: str) -> str:
    output = result.stdout + result.stderr  # spark-submit pipes the driver's stderr to stdout
    assert result.returncode == 2, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output[-3000:]
    for needle in needles:
        assert needle in errors[0], errors[0]
    assert "Traceback" not in output and "\tat " not in output, "no stack trace"
    return errors[0]


def test_the_job_fails_fast_naming_the_setting_when_the_broker_is_unreachable(
    kafka_settings, lake_dir
):
    from scripts.local_broker import free_port

    env = job_env(kafka_settings, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")
    line = assert_one_error_line(
        _run_job_expecting_failure(env, lake_dir),
        "cannot reach Kafka at 127.0.0.1:",
        "KAFKA_BOOTSTRAP_SERVERS",
    )
    assert "TimeoutException" in line, "the Java root cause is shown, not a py4j wrapper"
    assert not (lake_dir / "checkpoints").exists(), "no query may start"


def test_a_host_that_does_not_resolve_is_one_line_naming_the_setting(kafka_settings, lake_dir):
    env = job_env(kafka_settings, KAFKA_BOOTSTRAP_SERVERS="nohost.invalid:1")
    line = assert_one_error_line(
        _run_job_expecting_failure(env, lake_dir), "KAFKA_BOOTSTRAP_SERVERS", "nohost.invalid:1"
    )
    assert "No resolvable bootstrap urls" in line


def test_the_job_names_missing_topics_and_their_settings(kafka_settings, lake_dir):
    env = job_env(kafka_settings, WEATHER_TOPIC="no-such-weather-topic")
    assert_one_error_line(
        _run_job_expecting_failure(env, lake_dir),
        "no-such-weather-topic (WEATHER_TOPIC)",
        "scripts.topics create",
    )


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"LAKE_URI": "hdfs://namenode/lake"}, "LAKE_URI"),
        ({"LAKE_CATALOG": "nessie"}, "LAKE_CATALOG"),
        ({"LAKE_CATALOG_URI": "jdbc:sqlite:/proc/no/such/dir/catalog.db"}, "LAKE_CATALOG_URI"),
    ],
)
def test_a_wrong_lake_setting_is_one_line_naming_it(kafka_settings, lake_dir, env, needle):
    result = subprocess.run(
        spark_submit_command(["--available-now"]),
        env=job_env(kafka_settings, **{"LAKE_URI": lake_dir.as_uri(), **env}),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert_one_error_line(result, needle)
