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

No pyspark and no confluent-kafka: the producer, the job and the scripts all import it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import Field, field_validator, model_validator

# typing.Self is Python 3.11; the compose stack's Spark image runs the job on 3.10.
from typing_extensions import Self  # noqa: UP035

from emr_jobs.core.contracts import ALL_STREAMS, CONTRACTS, LAKE
from emr_jobs.core.settings import Settings, SettingsError, setting

AUTH_MODES = ("none", "msk-iam", "oauthbearer-unsecured")
AuthMode = Literal["none", "msk-iam", "oauthbearer-unsecured"]


def default_topics(env: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """Stream -> topic for every contract: its variable in ``env`` (default: the process
    environment), else the contract's default topic."""
    env = os.environ if env is None else env
    return {s: env.get(CONTRACTS[s].topic_env) or CONTRACTS[s].default_topic for s in ALL_STREAMS}


class KafkaSettings(Settings):
    """Where Kafka is and how to authenticate; the topic of every stream."""

    bootstrap_servers: str = setting(
        "KAFKA_BOOTSTRAP_SERVERS",
        "localhost:9092",
        "host:port[,host:port...]",
        flag="--bootstrap-servers",
    )
    auth_mode: AuthMode = setting(
        "KAFKA_AUTH_MODE", "none", "none | msk-iam | oauthbearer-unsecured", flag="--auth-mode"
    )
    aws_region: str = setting(
        "AWS_REGION",
        "",
        "msk-iam: region of the MSK cluster",
        flag="--aws-region",
        also=("AWS_DEFAULT_REGION",),
    )
    client_id: str = setting("KAFKA_CLIENT_ID", "smartcity", "client.id of every client")
    #: Stream -> topic, from each contract's variable (``VEHICLE_TOPIC``... ``ALERTS_TOPIC``).
    topics: Mapping[str, str] = Field(default_factory=lambda: default_topics({}))

    @classmethod
    def extra_from_env(cls, env: Mapping[str, str | None]) -> dict[str, object]:
        """The topic variables, which the contracts name, with their defaults."""
        return {"topics": default_topics(env)}

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        for hostport in value.split(","):
            host, _, port = hostport.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError("must be host:port[,host:port...]")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.auth_mode == "msk-iam" and not self.aws_region:
            raise ValueError("AWS_REGION must be set when KAFKA_AUTH_MODE=msk-iam")
        missing = [s for s in ALL_STREAMS if not self.topics.get(s)]
        if missing:
            raise ValueError(
                "no topic for " + ", ".join(f"{s} ({CONTRACTS[s].topic_env})" for s in missing)
            )
        by_topic: dict[str, list[str]] = {}
        for stream, topic in self.topics.items():
            by_topic.setdefault(topic, []).append(CONTRACTS[stream].topic_env)
        shared = {topic: names for topic, names in by_topic.items() if len(names) > 1}
        if shared:
            raise ValueError(
                "each stream needs its own topic: "
                + "; ".join(f"{' and '.join(n)} are all {t!r}" for t, n in shared.items())
            )
        return self

    def to_env(self) -> dict[str, str]:
        env = super().to_env()
        env.update({CONTRACTS[s].topic_env: t for s, t in self.topics.items()})
        return env

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
