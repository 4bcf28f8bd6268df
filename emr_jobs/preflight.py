"""The job's Kafka pre-flight: are the brokers reachable and the topics there, before any query?

Without it, an unreachable broker keeps Spark's Kafka source retrying for minutes, and a missing
topic (auto-creation is off) makes the query wait forever. :func:`check_kafka` turns both into
one error line within seconds that names the setting to fix (:class:`KafkaUnavailable`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyspark.sql import SparkSession

from emr_jobs.core.contracts import CONTRACTS
from emr_jobs.core.kafka import KafkaSettings, spark_kafka_options


class KafkaUnavailable(RuntimeError):
    """The brokers cannot be reached or a topic is missing; the message names the setting."""


def check_kafka(
    spark: SparkSession, kafka: KafkaSettings, streams: Sequence[str], timeout_seconds: int = 20
) -> None:
    """Fail within seconds, before the query starts, if the brokers or topics are not there.

    Uses the JVM Kafka AdminClient with the very options the Kafka source gets, so it also
    proves the MSK IAM login. Creating the client is inside the ``try``: a host name that does
    not resolve fails right there.
    """
    jvm = spark_jvm(spark)
    props = jvm.java.util.Properties()
    for key, value in spark_kafka_options(kafka).items():
        if key.startswith("kafka."):
            props.setProperty(key.removeprefix("kafka."), value)
    props.setProperty("request.timeout.ms", str(timeout_seconds * 1000))
    props.setProperty("default.api.timeout.ms", str(timeout_seconds * 1000))
    seconds = jvm.java.util.concurrent.TimeUnit.SECONDS
    admin = None
    try:
        admin = jvm.org.apache.kafka.clients.admin.AdminClient.create(props)
        names = set(admin.listTopics().names().get(timeout_seconds, seconds))
    except Exception as err:  # noqa: BLE001 - py4j wraps the Java exception
        raise KafkaUnavailable(
            f"cannot reach Kafka at {kafka.bootstrap_servers} (KAFKA_BOOTSTRAP_SERVERS, "
            f"auth {kafka.auth_mode}) within {timeout_seconds}s: {_root_cause(err)}"
        ) from None
    finally:
        if admin is not None:
            admin.close()
    missing = [
        f"{kafka.topic(s)} ({CONTRACTS[s].topic_env})"
        for s in streams
        if kafka.topic(s) not in names
    ]
    if missing:
        raise KafkaUnavailable(
            f"topics missing on {kafka.bootstrap_servers}: {', '.join(missing)}; "
            "create them with `python -m scripts.topics create`"
        )


def _root_cause(err: Exception) -> str:
    """The innermost Java exception of a py4j error, e.g. Kafka's ConfigException text."""
    java = getattr(err, "java_exception", None)
    while java is not None and java.getCause() is not None:
        java = java.getCause()
    text = java.toString() if java is not None else (str(err).strip().splitlines() or [""])[0]
    return text[:300]


def spark_jvm(spark: SparkSession) -> Any:
    """The driver's py4j view of the JVM (pyspark types it Optional: None once stopped)."""
    jvm = spark.sparkContext._jvm
    if jvm is None:
        raise RuntimeError("the Spark session has no JVM (was it stopped?)")
    return jvm
