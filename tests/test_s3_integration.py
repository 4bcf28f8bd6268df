"""The real job with its lake on an S3-compatible store: S3A against moto's S3 server.

No Docker and no AWS: ``moto.server.ThreadedMotoServer`` serves the S3 HTTP API on loopback, the
job reaches it through S3A (``hadoop-aws`` 3.3.4 + ``aws-java-sdk-bundle``, resolved by Maven
into ``.cache/jars/s3a``), and the test reads the objects back with boto3 and pyarrow. The
``--conf spark.hadoop.fs.s3a.*`` settings are the ones the README gives for MinIO or any other
S3-compatible endpoint.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer
from jobrunner import job_env

from emr_jobs.contracts import LAKE, STREAMS
from emr_jobs.settings import REPO_ROOT
from producer.kafka_producer import send_events
from producer.simulator import SimulationOptions, simulate
from scripts.lake import committed_s3_files, read_table, s3_filesystem
from scripts.run_job import S3A_JARS_DIR, spark_submit_command

pytestmark = pytest.mark.integration

BUCKET = "smartcity-lake-test"
REGION = "eu-west-2"
FAKE_KEY = "testing"  # the value fake_aws_credentials puts in AWS_ACCESS_KEY_ID / SECRET

#: Raw values that are not events; each lands in quarantine with this reason.
MALFORMED = {
    "vehicle": b"{definitely not json",
    "gps": b"[1, 2, 3]",
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
    """What points S3A at an S3-compatible endpoint (README: "The lake on any S3-compatible
    store"). Only this test passes keys as settings, and they are moto's fake ones."""
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


def test_the_job_writes_its_lake_and_checkpoints_to_s3_through_s3a(kafka_settings, s3_endpoint):
    import boto3

    assert any(S3A_JARS_DIR.glob("hadoop-aws-3.3.4.jar")), (
        f"S3A jars missing in {S3A_JARS_DIR}: run `make setup` (local/maven/s3a/pom.xml)"
    )
    events = list(simulate(SimulationOptions(vehicles=1, seed=5, max_events=1500)))
    expected = {s: {e.payload["id"] for e in events if e.stream == s} for s in STREAMS}
    producer = Producer({"bootstrap.servers": kafka_settings.bootstrap_servers})
    for stream, value in MALFORMED.items():
        producer.produce(kafka_settings.topic(stream), value=value, key=b"bad")
    assert producer.flush(10) == 0
    assert send_events(events, kafka_settings, show_progress=False).ok

    lake_uri = f"s3a://{BUCKET}"
    result = subprocess.run(
        spark_submit_command(
            ["--available-now", "--lake-uri", lake_uri],
            extra_jar_dirs=[S3A_JARS_DIR],
            conf=s3a_conf(s3_endpoint),
        ),
        env=job_env(kafka_settings),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert result.returncode == 0, f"job failed ({result.returncode}):\n{result.stderr[-4000:]}"

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION)
    fs = s3_filesystem(s3_endpoint, REGION)
    for stream in STREAMS:
        # Rows: exactly the unique events sent, read from the committed files only.
        table = read_table(lake_uri, LAKE.data_prefix, stream, filesystem=fs)
        ids = table.column("id").to_pylist() if table is not None else []
        assert len(ids) == len(set(ids)), f"{stream}: an id was written twice"
        assert set(ids) == expected[stream], f"{stream}: rows differ from the events sent"

        # Partitions: every committed file is an object under date=YYYY-MM-DD/hour=H/.
        table_key = f"{LAKE.data_prefix}/{stream}"
        keys = set(object_keys(s3, table_key + "/"))
        assert f"{table_key}/_spark_metadata/0" in keys
        committed = committed_s3_files(f"{lake_uri}/{table_key}", fs)
        assert committed, f"{stream}: the sink committed no file"
        for path in committed:
            key = path.removeprefix(BUCKET + "/")
            assert key in keys, f"{stream}: committed file {key} is not in the bucket"
            assert re.fullmatch(
                rf"{table_key}/date=\d{{4}}-\d{{2}}-\d{{2}}/hour=\d{{1,2}}/part-[^/]+\.parquet", key
            ), key

        # Checkpoints: both queries of the stream keep theirs in the bucket too.
        for area in (LAKE.data_prefix, LAKE.quarantine_prefix):
            checkpoint = set(object_keys(s3, f"{LAKE.checkpoints_prefix}/{stream}/{area}/"))
            for part in ("metadata", "offsets/0", "commits/0"):
                assert f"{LAKE.checkpoints_prefix}/{stream}/{area}/{part}" in checkpoint, (
                    f"{stream}/{area}: no {part} in the S3 checkpoint"
                )

        # Quarantine: the malformed records, with the raw value and the reason.
        bad = read_table(lake_uri, LAKE.quarantine_prefix, stream, filesystem=fs)
        got = (
            sorted(zip(bad.column("rawValue").to_pylist(), bad.column("reason").to_pylist(),
                       strict=True))
            if bad is not None
            else []
        )
        want = [(MALFORMED[stream].decode(), MALFORMED_REASON)] if stream in MALFORMED else []
        assert got == want, f"{stream}: quarantine differs"

    # The hour of driving spans two clock hours: one partition per event date and hour.
    sent = [e.payload["timestamp"] for e in events if e.stream == "vehicle"]
    vehicle = read_table(lake_uri, LAKE.data_prefix, "vehicle", filesystem=fs)
    assert set(vehicle.column("date").to_pylist()) == {t[:10] for t in sent}
    assert {int(h) for h in vehicle.column("hour").to_pylist()} == {int(t[11:13]) for t in sent}
    assert len({int(t[11:13]) for t in sent}) >= 2
