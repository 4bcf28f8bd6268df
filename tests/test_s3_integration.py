"""The real job with its Iceberg lake on an S3-compatible store: S3A against moto's S3 server.

No Docker and no AWS: ``moto.server.ThreadedMotoServer`` serves the S3 HTTP API on loopback.
The job (spark-submit, local master) keeps its Iceberg catalog in a SQLite file on the driver
(``LAKE_CATALOG=jdbc``, ``LAKE_CATALOG_URI``) and writes the tables' metadata and data files and
its checkpoint through S3A (``hadoop-aws`` 3.3.4 + ``aws-java-sdk-bundle``, resolved by Maven
into ``.cache/jars/s3a``; Iceberg's HadoopFileIO). The test reads the tables back the way an
operator does, ``scripts.lake`` (pyiceberg's SqlCatalog and its pyarrow S3 FileIO), and lists the
objects with boto3. The ``--conf spark.hadoop.fs.s3a.*`` settings are the ones local/README.md
gives for MinIO or any other S3-compatible endpoint; the compose stack uses the same settings.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from confluent_kafka import Producer
from jobrunner import job_env

from emr_jobs.core.contracts import CONTRACTS, LAKE, STREAMS
from emr_jobs.core.paths import REPO_ROOT
from emr_jobs.settings import JobSettings
from producer.kafka_producer import send_events
from producer.simulator import SimulationOptions, simulate
from scripts import lake
from scripts.run_job import S3A_JARS_DIR, spark_submit_command

pytestmark = pytest.mark.integration

BUCKET = "smartcity-lake-test"
#: The lake sits under a prefix of the bucket, as it may on a shared store.
PREFIX = "lake"
REGION = "eu-west-2"
DATABASE = "smartcity_s3"
FAKE_KEY = "testing"  # the value fake_aws_credentials puts in AWS_ACCESS_KEY_ID / SECRET

#: Raw values that are not events, per stream; each lands in quarantine, byte for byte.
MALFORMED = {
    "vehicle": [b"{definitely not json"],
    "gps": [b"[1, 2, 3]", b'\xff\xfe{"id": "not UTF-8"}'],
}
MALFORMED_REASON = "malformed JSON: not a JSON object"


@pytest.fixture
def s3_endpoint(fake_aws_credentials) -> Iterator[str]:
    """moto's S3 server on a free loopback port, with the lake bucket created; its URL."""
    import boto3
    from moto.server import ThreadedMotoServer

    from scripts.local_broker import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=endpoint, region_name=REGION).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield endpoint
    finally:
        server.stop()


def s3a_conf(endpoint: str) -> dict[str, str]:
    """What points S3A at an S3-compatible endpoint (local/README.md: "The lake on any
    S3-compatible store"). Only this test passes keys as settings, and they are moto's fake ones."""
    return {
        "spark.hadoop.fs.s3a.endpoint": endpoint,
        "spark.hadoop.fs.s3a.endpoint.region": REGION,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        ),
        "spark.hadoop.fs.s3a.access.key": FAKE_KEY,
        "spark.hadoop.fs.s3a.secret.key": FAKE_KEY,
        # Fail within seconds instead of retrying for minutes if the server goes away.
        "spark.hadoop.fs.s3a.attempts.maximum": "3",
        "spark.hadoop.fs.s3a.retry.limit": "3",
    }


def object_keys(client, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def object_key(uri: str) -> str:
    """``s3a://bucket/key`` (or ``s3://``) -> ``key``, checking the bucket."""
    parsed = urlparse(uri)
    assert parsed.scheme in ("s3", "s3a") and parsed.netloc == BUCKET, uri
    return parsed.path.lstrip("/")


def test_the_job_writes_its_iceberg_lake_and_checkpoint_to_s3_through_s3a(
    kafka_settings, s3_endpoint, tmp_path, monkeypatch
):
    import boto3

    assert any(S3A_JARS_DIR.glob("hadoop-aws-3.3.4.jar")), (
        f"S3A jars missing in {S3A_JARS_DIR}: run `make setup` (local/maven/s3a/pom.xml)"
    )
    events = list(simulate(SimulationOptions(vehicles=1, seed=5, max_events=1500)))
    expected = {s: {e.payload["id"] for e in events if e.stream == s} for s in STREAMS}
    repeated = next(e for e in events if e.stream == "gps")
    producer = Producer({"bootstrap.servers": kafka_settings.bootstrap_servers})
    for stream, values in MALFORMED.items():
        for value in values:
            producer.produce(kafka_settings.topic(stream), value=value, key=b"bad")
    assert producer.flush(10) == 0
    # One event sent twice: the second copy goes to the duplicates table, not the gps table.
    assert send_events([*events, repeated], kafka_settings, show_progress=False).ok

    # The job reads its lake settings from the environment, as in the compose stack.
    job = JobSettings(
        lake_uri=f"s3a://{BUCKET}/{PREFIX}",
        catalog="jdbc",
        catalog_uri=f"jdbc:sqlite:{tmp_path / 'catalog.db'}",
        database=DATABASE,
    )
    lake_env = {
        "LAKE_URI": job.lake_uri,
        "LAKE_CATALOG": job.catalog,
        "LAKE_CATALOG_URI": job.catalog_uri,
        "LAKE_DATABASE": job.database,
    }
    assert JobSettings.from_env(lake_env) == job
    result = subprocess.run(
        spark_submit_command(
            ["--available-now"], extra_jar_dirs=[S3A_JARS_DIR], conf=s3a_conf(s3_endpoint)
        ),
        env=job_env(kafka_settings, **lake_env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert result.returncode == 0, f"job failed ({result.returncode}):\n{result.stderr[-4000:]}"
    errors = [line for line in result.stderr.splitlines() if re.search(r"\bERROR\b", line)]
    assert not errors, "a normal run logs no ERROR:\n" + "\n".join(errors[:20])

    # Read back the operator's way: scripts.lake, the catalog file and the S3 endpoint.
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    catalog = lake.catalog(job)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION)
    keys = object_keys(s3, f"{PREFIX}/")

    for stream in STREAMS:
        # Rows: every event sent, exactly once, in the stream's table.
        ids = lake.read_table(stream, job, columns=["id"]).column("id").to_pylist()
        assert len(ids) == len(set(ids)), f"{stream}: an id was written twice"
        assert set(ids) == expected[stream], f"{stream}: rows differ from the events sent"

        # Quarantine: the malformed records, byte for byte, with the reason.
        bad = lake.read_table(LAKE.quarantine_table(stream), job)
        got = sorted(
            zip(bad.column("rawBytes").to_pylist(), bad.column("reason").to_pylist(), strict=True)
        )
        want = sorted((value, MALFORMED_REASON) for value in MALFORMED.get(stream, []))
        assert got == want, f"{stream}: quarantine differs"
        if stream in MALFORMED:
            texts = set(bad.column("rawValue").to_pylist())
            assert texts == {v.decode("utf-8", errors="replace") for v in MALFORMED[stream]}
            assert set(bad.column("kafkaTopic").to_pylist()) == {kafka_settings.topic(stream)}

    duplicates = lake.read_table(LAKE.duplicates_table, job)
    assert duplicates.select(["stream", "eventId"]).to_pylist() == [
        {"stream": "gps", "eventId": repeated.payload["id"]}
    ]

    # Objects: each table's metadata and data files live under <lake>/tables/<table>/.
    for name in LAKE.tables(STREAMS):
        table = catalog.load_table((job.database, name))
        prefix = f"{PREFIX}/{LAKE.tables_prefix}/{name}/"
        assert object_key(table.location()).rstrip("/") + "/" == prefix, table.location()
        assert object_key(table.metadata_location) in keys, f"{name}: no metadata object"
        assert object_key(table.metadata_location).startswith(prefix + "metadata/")
        files = [task.file.file_path for task in table.scan().plan_files()]
        assert bool(files) == (table.scan().count() > 0), f"{name}: rows without data files"
        for path in files:
            key = object_key(path)
            assert key in keys, f"{name}: data file {key} is not in the bucket"
            assert key.startswith(prefix + "data/") and key.endswith(".parquet"), key
        # Every append carries the job's query and batch id (the exactly-once guard).
        for snapshot in lake.snapshots(name, job):
            assert snapshot["batch"] is not None, f"{name}: an untagged snapshot"

    # Hidden hourly partitions: the drive spans two clock hours, one folder per event hour.
    vehicle_data = f"{PREFIX}/{LAKE.tables_prefix}/vehicle/data/"
    hours = {
        m.group(1)
        for k in keys
        if (m := re.fullmatch(re.escape(vehicle_data) + r"timestamp_hour=([0-9-]+)/[^/]+", k))
    }
    sent = {e.payload["timestamp"][:13].replace("T", "-") for e in events if e.stream == "vehicle"}
    assert hours == sent and len(sent) >= 2, (hours, sent)
    assert CONTRACTS["vehicle"].event_time_field == "timestamp"

    # The checkpoint: one query, under <lake>/checkpoints/job/.
    checkpoint = f"{PREFIX}/{LAKE.checkpoints_prefix}/job/"
    for part in ("metadata", "offsets/0", "commits/0"):
        assert checkpoint + part in keys, f"no {part} in the S3 checkpoint"

    # Nothing else: no file-sink commit log, no data/ or quarantine/ folders of the old layout.
    tables = f"{PREFIX}/{LAKE.tables_prefix}/"
    stray = [k for k in keys if not k.startswith((tables, checkpoint))]
    assert not stray, f"objects outside tables/ and checkpoints/job/: {stray[:10]}"
    assert not [k for k in keys if "_spark_metadata" in k]
    assert not [k for k in keys if k.startswith((f"{PREFIX}/data/", f"{PREFIX}/quarantine/"))]
