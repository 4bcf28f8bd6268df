"""Shared fixtures: one local SparkSession and one embedded Kafka broker per test session."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# pyspark.testing imports pandas-on-Spark, which insists on this before any session starts.
os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")


@pytest.fixture(scope="session")
def spark():
    """A small local SparkSession (no Kafka jars: the transforms run on batch DataFrames)."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("smartcity-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


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
    import re

    return re.sub(r"[^a-zA-Z0-9]", "-", request.node.name)[:40] + "-"


@pytest.fixture
def kafka_settings(kafka_broker, topic_prefix):
    from emr_jobs.contracts import CONTRACTS, STREAMS
    from emr_jobs.kafka_options import KafkaSettings
    from scripts.topics import TopicSpec, ensure_topics

    settings = KafkaSettings(
        bootstrap_servers=kafka_broker.bootstrap_servers,
        topics={s: topic_prefix + CONTRACTS[s].default_topic for s in STREAMS},
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
