"""Wrong settings fail fast, and the message names the setting."""

from __future__ import annotations

import pytest

from emr_jobs.core.kafka import KafkaSettings, spark_kafka_options
from emr_jobs.core.settings import SettingsError
from emr_jobs.settings import JobSettings
from producer.kafka_config import producer_config
from producer.settings import ProducerSettings


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"LAKE_URI": "/tmp/lake"}, "LAKE_URI"),
        ({"LAKE_URI": "hdfs://x/lake"}, "LAKE_URI"),
        ({"JOB_TRIGGER": "once"}, "JOB_TRIGGER"),
        ({"JOB_TRIGGER_INTERVAL": "10s"}, "JOB_TRIGGER_INTERVAL"),
        ({"JOB_DEDUPE_WINDOW": "two minutes"}, "JOB_DEDUPE_WINDOW"),
        ({"JOB_LATE_AFTER": "2m"}, "JOB_LATE_AFTER"),
        ({"JOB_MAX_FUTURE": "soon"}, "JOB_MAX_FUTURE"),
        ({"JOB_EVENT_TIME_FLOOR": "2000-01-01"}, "JOB_EVENT_TIME_FLOOR"),
        ({"LAKE_CATALOG": "hive"}, "LAKE_CATALOG"),
        ({"LAKE_URI": "s3a://bucket/lake"}, "LAKE_CATALOG_URI"),
        ({"LAKE_CATALOG_URI": "sqlite:///tmp/c.db"}, "LAKE_CATALOG_URI"),
        ({"LAKE_CATALOG": "glue"}, "LAKE_CATALOG=glue needs an s3:// LAKE_URI"),
        ({"LAKE_DATABASE": "Smart-City"}, "LAKE_DATABASE"),
        ({"JOB_MAX_OFFSETS_PER_TRIGGER": "0"}, "JOB_MAX_OFFSETS_PER_TRIGGER"),
        ({"JOB_MAX_OFFSETS_PER_TRIGGER": "lots"}, "JOB_MAX_OFFSETS_PER_TRIGGER"),
        ({"JOB_STARTING_OFFSETS": "middle"}, "JOB_STARTING_OFFSETS"),
    ],
)
def test_job_settings_name_the_wrong_variable(env, setting):
    with pytest.raises(SettingsError, match=setting):
        JobSettings.from_env(env)


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"KAFKA_BOOTSTRAP_SERVERS": "localhost"}, "KAFKA_BOOTSTRAP_SERVERS"),
        ({"KAFKA_AUTH_MODE": "sasl-plain"}, "KAFKA_AUTH_MODE"),
        ({"KAFKA_AUTH_MODE": "msk-iam"}, "AWS_REGION"),
        ({"GPS_TOPIC": "vehicle_data"}, "VEHICLE_TOPIC and GPS_TOPIC are all 'vehicle_data'"),
    ],
)
def test_kafka_settings_name_the_wrong_variable(env, setting):
    with pytest.raises(SettingsError, match=setting):
        KafkaSettings.from_env(env)


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"SIM_VEHICLES": "0"}, "SIM_VEHICLES"),
        ({"SIM_VEHICLES": "10001"}, "SIM_VEHICLES"),
        ({"SIM_PACE": "fast"}, "SIM_PACE"),
        ({"SIM_LATE_FRACTION": "1.5"}, "SIM_LATE_FRACTION"),
        ({"SIM_DUPLICATE_FRACTION": "-0.1"}, "SIM_DUPLICATE_FRACTION"),
        ({"SIM_START_TIME": "2026-01-05T08:00:00"}, "SIM_START_TIME"),
        ({"SIM_START_TIME": "tomorrow"}, "SIM_START_TIME"),
        ({"SIM_MAX_EVENTS": "0"}, "SIM_MAX_EVENTS"),
        ({"PRODUCER_DELIVERY_TIMEOUT_SECONDS": "0.5"}, "PRODUCER_DELIVERY_TIMEOUT_SECONDS"),
        ({"PRODUCER_DELIVERY_TIMEOUT_SECONDS": "soon"}, "PRODUCER_DELIVERY_TIMEOUT_SECONDS"),
    ],
)
def test_producer_settings_name_the_wrong_variable(env, setting):
    with pytest.raises(SettingsError, match=setting):
        ProducerSettings.from_env(env)


def test_defaults_are_the_reference_names():
    settings = KafkaSettings.from_env({})
    assert settings.bootstrap_servers == "localhost:9092"
    assert dict(settings.topics) == {
        "vehicle": "vehicle_data",
        "gps": "gps_data",
        "traffic_camera": "traffic_data",
        "weather": "weather_data",
        "emergency": "emergency_data",
        "alerts": "alerts",
        "road_conditions": "road_conditions",
    }
    job = JobSettings.from_env({})
    assert job.dedupe_window == "2 minutes"
    assert (job.catalog, job.database) == ("jdbc", "smartcity")
    assert job.catalog_uri == "jdbc:sqlite:" + job.lake_uri.removeprefix("file://") + "/catalog.db"
    assert job.lake_uri.startswith("file://") and job.lake_uri.endswith("/lake")
    assert job.max_offsets_per_trigger is None


def test_the_producer_delivery_timeout_defaults_to_the_clients_message_timeout():
    """PRODUCER_DELIVERY_TIMEOUT_SECONDS keeps the 30 s that producer_config has always set."""
    assert ProducerSettings.from_env({}).delivery_timeout_seconds == 30.0
    assert producer_config(KafkaSettings())["message.timeout.ms"] == 30_000
    assert (
        ProducerSettings.from_env(
            {"PRODUCER_DELIVERY_TIMEOUT_SECONDS": "2.5"}
        ).delivery_timeout_seconds
        == 2.5
    )


def test_producer_config_is_idempotent_acks_all_compressed_and_batched():
    config = producer_config(KafkaSettings())
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"
    assert config["compression.type"] in ("lz4", "zstd", "snappy", "gzip")
    assert config["linger.ms"] > 0
    assert config["security.protocol"] == "PLAINTEXT"


def test_spark_options_keep_the_consumer_group_prefix_the_iam_policy_names():
    from emr_jobs.core.contracts import LAKE

    options = spark_kafka_options(KafkaSettings(bootstrap_servers="b-1:9092"))
    assert options["groupIdPrefix"] == LAKE.consumer_group_prefix
    assert options["kafka.bootstrap.servers"] == "b-1:9092"
    assert "kafka.security.protocol" not in options


def test_job_flags_override_their_variables_and_are_checked_once():
    """``--lake-uri`` wins over LAKE_URI before anything is checked: a glue catalog with an
    s3:// lake given only as a flag is valid."""
    from emr_jobs.job import parse_args, settings_from

    env = {"LAKE_CATALOG": "glue", "LAKE_URI": "file:///tmp/lake", "LAKE_DATABASE": "city"}
    kafka, job, streams = settings_from(
        parse_args(["--lake-uri", "s3://lake-bucket", "--available-now"]), env
    )
    assert (job.lake_uri, job.catalog, job.database, job.trigger) == (
        "s3://lake-bucket",
        "glue",
        "city",
        "availableNow",
    )
    with pytest.raises(SettingsError, match="--streams"):
        settings_from(parse_args(["--streams", "vehicle,bus"]), {})
