"""Settings -> Kafka client options, for the producer (confluent-kafka) and the job (Spark).

This is the only place that knows about authentication. Moving between the embedded broker,
the compose stack and Amazon MSK changes settings, never code paths elsewhere.

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

Standard library only (the signer is imported lazily): the producer imports this module.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from emr_jobs.contracts import ALL_STREAMS, CONTRACTS, LAKE
from emr_jobs.settings import SettingsError, check_choice, env_str

AUTH_MODES = ("none", "msk-iam", "oauthbearer-unsecured")

#: ``oauth_cb`` contract of confluent-kafka: config string -> (token, expiry in epoch SECONDS).
TokenCallback = Callable[[str], tuple[str, float]]

log = logging.getLogger(__name__)


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


def producer_config(
    settings: KafkaSettings,
    *,
    token_callback: TokenCallback | None = None,
    overrides: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """confluent-kafka Producer config: idempotent, acks=all, compressed, batched.

    ``token_callback`` replaces the default token source for the OAUTHBEARER modes (tests use
    it to shorten the token lifetime); ``overrides`` wins over everything (benchmarks).
    """
    config: dict[str, object] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": settings.client_id,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": 20,
        "batch.size": 256 * 1024,
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 512 * 1024,
        # An unreachable broker must fail fast, not hang: metadata and delivery give up quickly.
        "message.timeout.ms": 30_000,
        "socket.connection.setup.timeout.ms": 5_000,
        "logger": logging.getLogger("producer.librdkafka"),
    }
    config.update(_producer_auth(settings, token_callback))
    if overrides:
        config.update(overrides)
    return config


def admin_config(
    settings: KafkaSettings, *, token_callback: TokenCallback | None = None
) -> dict[str, object]:
    """confluent-kafka AdminClient config with the same authentication as the producer."""
    config: dict[str, object] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": f"{settings.client_id}-admin",
        "socket.connection.setup.timeout.ms": 5_000,
        "logger": logging.getLogger("admin.librdkafka"),
    }
    config.update(_producer_auth(settings, token_callback))
    return config


def _producer_auth(
    settings: KafkaSettings, token_callback: TokenCallback | None
) -> dict[str, object]:
    if settings.auth_mode == "none":
        return {"security.protocol": "PLAINTEXT"}
    if settings.auth_mode == "msk-iam":
        return {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "OAUTHBEARER",
            "oauth_cb": token_callback or msk_iam_token_callback(settings.aws_region),
        }
    # oauthbearer-unsecured: a local broker with Kafka's unsecured JWT validator.
    return {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "OAUTHBEARER",
        "oauth_cb": token_callback or unsecured_jwt_callback(settings.client_id),
    }


def msk_iam_token_callback(
    region: str, *, aws_profile: str = "", role_arn: str = ""
) -> TokenCallback:
    """``oauth_cb`` backed by ``aws-msk-iam-sasl-signer-python``.

    The signer returns the expiry in **milliseconds** since the epoch; confluent-kafka wants
    **seconds**. Credentials come from the default chain unless a profile or role is named.
    """

    def callback(_config: str) -> tuple[str, float]:
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

        if role_arn:
            token, expiry_ms = MSKAuthTokenProvider.generate_auth_token_from_role_arn(
                region, role_arn
            )
        elif aws_profile:
            token, expiry_ms = MSKAuthTokenProvider.generate_auth_token_from_profile(
                region, aws_profile
            )
        else:
            token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
        return token, expiry_ms / 1000.0

    return callback


def unsecured_jwt_callback(principal: str, lifetime_seconds: float = 3600.0) -> TokenCallback:
    """Tokens for Kafka's unsecured JWT validator (``alg: none``); local testing only.

    The ``exp`` claim is whole seconds and the expiry handed to librdkafka is that same value,
    so the client and the broker (which ends the SASL session at ``exp``) agree on it.
    """
    import base64
    import json
    import time

    def b64(doc: dict[str, object]) -> str:
        raw = json.dumps(doc, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def callback(_config: str) -> tuple[str, float]:
        now = time.time()
        expiry = int(now + lifetime_seconds)
        token = ".".join(
            [b64({"alg": "none"}), b64({"sub": principal, "iat": int(now), "exp": expiry}), ""]
        )
        return token, float(expiry)

    return callback


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
