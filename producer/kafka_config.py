"""confluent-kafka client options (producer, admin, consumer) and the OAUTHBEARER token callbacks.

The settings come from ``emr_jobs.core.kafka.KafkaSettings``, shared with the job; this module is
the confluent-kafka half of turning them into client options, so it stays out of the EMR
artifact. Auth modes (``KAFKA_AUTH_MODE``):

``none``
    PLAINTEXT; the embedded broker and the compose stack.
``msk-iam``
    Amazon MSK with IAM: SASL OAUTHBEARER over TLS on port 9098, with a token from
    ``aws-msk-iam-sasl-signer-python`` (imported lazily). Credentials come from the default
    AWS chain.
``oauthbearer-unsecured``
    SASL_PLAINTEXT with OAUTHBEARER against a broker that uses Kafka's built-in unsecured JWT
    validator. It exists to prove the token path locally; never use it in production.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from emr_jobs.core.kafka import KafkaSettings

#: ``oauth_cb`` contract of confluent-kafka: config string -> (token, expiry in epoch SECONDS).
TokenCallback = Callable[[str], tuple[str, float]]


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
