"""Create the seven topics (five sensor streams, alerts, road conditions). Idempotent.

Works against the embedded broker (``KAFKA_AUTH_MODE=none``) and against Amazon MSK with IAM
(``KAFKA_AUTH_MODE=msk-iam``; run it inside the VPC, for example as a one-off ECS task).

    python -m scripts.topics create [--partitions 3] [--replication-factor 1]
                                    [--retention-hours 168]
    python -m scripts.topics describe
"""

from __future__ import annotations

import argparse
import sys

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from emr_jobs.core.contracts import ALL_STREAMS
from emr_jobs.core.kafka import KafkaSettings
from emr_jobs.core.settings import Settings, SettingsError, setting
from producer.kafka_config import TokenCallback, admin_config


class TopicSpec(Settings):
    """How the topics are created."""

    partitions: int = setting(
        "TOPIC_PARTITIONS", 3, "partitions per topic", flag="--partitions", ge=1, le=1000
    )
    replication_factor: int = setting(
        "TOPIC_REPLICATION_FACTOR",
        1,
        "copies of each partition; 3 on MSK",
        flag="--replication-factor",
        ge=1,
        le=5,
    )
    retention_hours: int = setting(
        "TOPIC_RETENTION_HOURS", 168, "how long records stay", flag="--retention-hours", ge=1
    )


def connect(
    settings: KafkaSettings, *, timeout: float = 10.0, token_callback: TokenCallback | None = None
) -> AdminClient:
    """An admin client that has reached the cluster, or a clear error within ``timeout``."""
    # confluent-kafka's stub types the config as str/int/float/bool values only, but AdminClient
    # takes the callables and objects librdkafka's Python binding documents ("logger", "oauth_cb").
    admin = AdminClient(
        admin_config(settings, token_callback=token_callback)  # type: ignore[arg-type]
    )
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException as err:
        raise ConnectionError(
            f"cannot reach Kafka at {settings.bootstrap_servers} "
            f"(KAFKA_BOOTSTRAP_SERVERS, auth {settings.auth_mode}) within {timeout:.0f}s: {err}"
        ) from None
    return admin


def ensure_topics(
    settings: KafkaSettings,
    spec: TopicSpec,
    *,
    admin: AdminClient | None = None,
    timeout: float = 30.0,
) -> dict[str, str]:
    """Create every missing topic; returns topic -> ``created`` or ``exists``."""
    admin = admin or connect(settings)
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = [settings.topic(s) for s in ALL_STREAMS]
    result = {t: "exists" for t in wanted if t in existing}
    new = [
        NewTopic(
            t,
            num_partitions=spec.partitions,
            replication_factor=spec.replication_factor,
            config={"retention.ms": str(spec.retention_hours * 3_600_000)},
        )
        for t in wanted
        if t not in existing
    ]
    if new:
        for topic, future in admin.create_topics(new, operation_timeout=timeout).items():
            try:
                future.result()
                result[topic] = "created"
            except KafkaException as err:
                if err.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    result[topic] = "exists"  # created concurrently by someone else
                else:
                    raise
    return result


def describe(settings: KafkaSettings, admin: AdminClient | None = None) -> dict[str, int]:
    """Topic -> partition count for the seven topics (0 when missing)."""
    admin = admin or connect(settings)
    topics = admin.list_topics(timeout=10).topics
    return {
        settings.topic(s): len(topics[settings.topic(s)].partitions)
        if settings.topic(s) in topics
        else 0
        for s in ALL_STREAMS
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.topics", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["create", "describe"])
    TopicSpec.add_flags(parser)
    args = parser.parse_args(argv)
    try:
        settings = KafkaSettings.from_env()
        spec = TopicSpec.from_args(args)
        if args.command == "create":
            for topic, state in ensure_topics(settings, spec).items():
                print(f"{topic:<20} {state}")
        else:
            for topic, partitions in describe(settings).items():
                print(
                    f"{topic:<20} {partitions} partitions" if partitions else f"{topic:<20} missing"
                )
    except (SettingsError, ConnectionError, KafkaException) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
