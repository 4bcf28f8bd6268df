"""Kafka settings, and the options of Spark's Kafka source, for every auth mode.

Shared by the producer, the job and the operator scripts. With ``producer.kafka_config`` (the
same settings turned into confluent-kafka options, with the OAUTHBEARER token callbacks), these
are the only places that know about authentication. Moving between the embedded broker, the
compose stack and Amazon MSK changes settings, never code paths elsewhere.

Auth modes (``KAFKA_AUTH_MODE``):

``none``
    PLAINTEXT; the embedded broker and the compose stack.
``msk-iam``
    Amazon MSK with IAM: TLS on port 9098. The producer uses SASL OAUTHBEARER with a token
    from ``aws-msk-iam-sasl-signer-python``; the job uses the ``AWS_MSK_IAM`` mechanism of
    ``software.amazon.msk:aws-msk-iam-auth``. Credentials come from the default AWS chain.
``oauthbearer-unsecured``
    SASL_PLAINTEXT with OAUTHBEARER against a broker that uses Kafka's built-in unsecured JWT
    validator. It exists to prove the producer's token path locally; never use it in production.

Standard library only: the producer imports this module and must not pull in pyspark.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from emr_jobs.core.contracts import ALL_STREAMS, CONTRACTS, LAKE
from emr_jobs.core.settings import SettingsError, check_choice, env_str

AUTH_MODES = ("none", "msk-iam", "oauthbearer-unsecured")



def default_topics(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Stream -> topic for every contract (``VEHICLE_TOPIC``... ``ALERTS_TOPIC``), with defaults."""
    env = os.environ if env is None else env
    return {
        s: env_str(env, CONTRACTS[s].topic_env, CONTRACTS[s].default_topic) for s in ALL_STREAMS
    }


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = "localhost:9092"  # [KAFKA_BOOTSTRAP_SERVERS]
    auth_mode: str = "none"  # [KAFKA_AUTH_MODE] none | msk-iam | oauthbearer-unsecured
    aws_region: str = ""  # [AWS_REGION] required for msk-iam
    topics: Mapping[str, str] = field(default_factory=lambda: default_topics({}))
    client_id: str = "smartcity"  # [KAFKA_CLIENT_ID]

    def __post_init__(self) -> None:
        if not self.bootstrap_servers.strip():
            raise SettingsError("KAFKA_BOOTSTRAP_SERVERS must not be empty")
        for hostport in self.bootstrap_servers.split(","):
            host, _, port = hostport.strip().rpartition(":")
            if not host or not port.isdigit():
                raise SettingsError(
                    "KAFKA_BOOTSTRAP_SERVERS must be host:port[,host:port...]; "
                    f"got {self.bootstrap_servers!r}"
                )
        check_choice("KAFKA_AUTH_MODE", self.auth_mode, AUTH_MODES)
        if self.auth_mode == "msk-iam" and not self.aws_region:
            raise SettingsError("AWS_REGION must be set when KAFKA_AUTH_MODE=msk-iam")
        missing = [s for s in ALL_STREAMS if not self.topics.get(s)]
        if missing:
            raise SettingsError(
                "no topic for " + ", ".join(f"{s} ({CONTRACTS[s].topic_env})" for s in missing)
            )
        by_topic: dict[str, list[str]] = {}
        for stream, topic in self.topics.items():
            by_topic.setdefault(topic, []).append(CONTRACTS[stream].topic_env)
        shared = {topic: names for topic, names in by_topic.items() if len(names) > 1}
        if shared:
            raise SettingsError(
                "each stream needs its own topic: "
                + "; ".join(f"{' and '.join(n)} are all {t!r}" for t, n in shared.items())
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KafkaSettings:
        env = os.environ if env is None else env
        return cls(
            bootstrap_servers=env_str(env, "KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
            auth_mode=env_str(env, "KAFKA_AUTH_MODE", "none"),
            aws_region=env_str(env, "AWS_REGION", env_str(env, "AWS_DEFAULT_REGION", "")),
            topics=default_topics(env),
            client_id=env_str(env, "KAFKA_CLIENT_ID", "smartcity"),
        )

    def topic(self, stream: str) -> str:
        return self.topics[stream]


def spark_kafka_options(settings: KafkaSettings) -> dict[str, str]:
    """Options of Spark's Kafka source (``kafka.*``) for the job, in every auth mode."""
    options = {
        "kafka.bootstrap.servers": settings.bootstrap_servers,
        # The IAM policy grants group access to this prefix only (infra/modules/iam).
        "groupIdPrefix": LAKE.consumer_group_prefix,
        # Fail fast on an unreachable broker instead of retrying metadata forever.
        "kafka.request.timeout.ms": "30000",
        "kafka.default.api.timeout.ms": "60000",
    }
    if settings.auth_mode == "msk-iam":
        options.update(
            {
                "kafka.security.protocol": "SASL_SSL",
                "kafka.sasl.mechanism": "AWS_MSK_IAM",
                "kafka.sasl.jaas.config": "software.amazon.msk.auth.iam.IAMLoginModule required;",
                "kafka.sasl.client.callback.handler.class": (
                    "software.amazon.msk.auth.iam.IAMClientCallbackHandler"
                ),
            }
        )
    elif settings.auth_mode == "oauthbearer-unsecured":
        raise SettingsError(
            "KAFKA_AUTH_MODE=oauthbearer-unsecured is for the producer's local token test; "
            "the job supports none and msk-iam"
        )
    return options
