"""Shared fixtures: one local SparkSession and one embedded Kafka broker per test session."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# pyspark.testing imports pandas-on-Spark, which insists on this before any session starts.
os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")


@pytest.fixture(scope="session")
def spark():
    """A small local SparkSession with the Iceberg runtime (no Kafka jars: the transforms run on
    batch DataFrames). Tests that need a lake take ``iceberg`` for a catalog of their own."""
    from pyspark.sql import SparkSession

    from emr_jobs.core.paths import REPO_ROOT
    from emr_jobs.iceberg import EXTENSIONS

    jars = sorted((REPO_ROOT / ".cache" / "jars" / "iceberg").glob("*.jar"))
    assert jars, "the Iceberg jars are missing in .cache/jars/iceberg: run `make setup`"
    # Python workers (pandas UDFs) run this interpreter, as the job's do (scripts/run_job.py).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("smartcity-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "1g")
        .config("spark.jars", ",".join(str(j) for j in jars))
        .config("spark.sql.extensions", EXTENSIONS)
        .config("spark.sql.constraintPropagation.enabled", "false")  # as the job: see job.py
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def iceberg(spark, tmp_path):
    """(session, JobSettings) for a fresh Iceberg lake in ``tmp_path`` with its own catalog."""
    from emr_jobs.iceberg import spark_catalog_conf
    from emr_jobs.settings import JobSettings

    job = JobSettings(lake_uri=(tmp_path / "lake").as_uri())
    (tmp_path / "lake").mkdir()
    session = spark.newSession()
    for key, value in spark_catalog_conf(job).items():
        if key != "spark.sql.extensions":
            session.conf.set(key, value)
    return session, job


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory) -> Iterator:
    """A real Kafka 4.x broker (KRaft, one node) on free loopback ports, with an OAUTHBEARER
    listener that validates unsecured JWTs for the token-path tests."""
    from scripts.local_broker import EmbeddedKafka, free_port

    broker = EmbeddedKafka(
        tmp_path_factory.mktemp("broker"), port=free_port(), oauth_port=free_port()
    )
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def topic_prefix(request) -> str:
    """Unique topic names per test, so tests sharing the broker never see each other's data."""
    import hashlib
    import re

    # Truncated names can collide (parametrized tests): a hash of the full id keeps them apart.
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:8]
    return re.sub(r"[^a-zA-Z0-9]", "-", request.node.name)[:32] + f"-{digest}-"


@pytest.fixture
def kafka_settings(kafka_broker, topic_prefix):
    from emr_jobs.core.contracts import ALL_STREAMS, CONTRACTS
    from emr_jobs.core.kafka import KafkaSettings
    from scripts.topics import TopicSpec, ensure_topics

    settings = KafkaSettings(
        bootstrap_servers=kafka_broker.bootstrap_servers,
        topics={s: topic_prefix + CONTRACTS[s].default_topic for s in ALL_STREAMS},
    )
    ensure_topics(settings, TopicSpec(partitions=3))
    return settings


@pytest.fixture
def lake_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="lake-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fake_aws_credentials(monkeypatch):
    """Credentials moto accepts; never real ones."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-2",
        "AWS_REGION": "eu-west-2",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    os.environ.pop("AWS_PROFILE", None)
