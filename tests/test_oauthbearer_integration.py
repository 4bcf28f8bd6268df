"""The producer's OAUTHBEARER token path, proved locally against the embedded broker.

The broker's SASL_PLAINTEXT listener validates unsecured JWTs with Kafka's built-in validator,
and it ends every SASL session when the session's token expires (KIP-368: the session lifetime
it returns is ``exp - now``). So the producer keeps its connections only if the token callback
is called again before the token expires and the connection re-authenticates with the new
token. This is the same ``oauth_cb`` path the producer uses against MSK with IAM (``msk-iam``).

Why a 15 s token and not a shorter one: librdkafka checks "refresh at 80 % of the lifetime"
on a one-second timer, so the refresh lands up to 1 s after 0.8 x lifetime, while a connection
re-authenticates at 0.9 x its session lifetime. Below ~10 s the re-authentication can come
first, with the old token, and the broker then closes the connection. MSK tokens live 900 s.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

import pytest

from emr_jobs.core.contracts import ALL_STREAMS, CONTRACTS
from emr_jobs.core.kafka import KafkaSettings
from producer.kafka_config import producer_config, unsecured_jwt_callback
from producer.kafka_producer import ProducerError, send_events
from producer.simulator import SimulationOptions, simulate
from scripts.topics import TopicSpec, ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TOKEN_LIFETIME_SECONDS = 15.0
RUN_TICKS = 16  # one simulated tick per wall second: ~15 s of producing


class RecordingTokenCallback:
    """Wraps a token callback; records when it was called and each token's expiry."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls: list[tuple[float, float]] = []  # (called at, token expiry), epoch seconds
        self.lock = threading.Lock()

    def __call__(self, config: str) -> tuple[str, float]:
        token, expiry = self.inner(config)
        with self.lock:
            self.calls.append((time.time(), expiry))
        return token, expiry


class LogLines(logging.Handler):
    """Collects librdkafka's log lines (it logs through the ``logger`` config property)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelno, record.getMessage()))


@pytest.fixture
def oauth_settings(kafka_broker, topic_prefix) -> KafkaSettings:
    topics = {s: topic_prefix + CONTRACTS[s].default_topic for s in ALL_STREAMS}
    # Topics are created over the PLAINTEXT listener; the producer then uses the OAUTHBEARER one.
    plaintext = KafkaSettings(bootstrap_servers=kafka_broker.bootstrap_servers, topics=topics)
    ensure_topics(plaintext, TopicSpec(partitions=1))
    return KafkaSettings(
        bootstrap_servers=kafka_broker.oauth_bootstrap_servers,
        auth_mode="oauthbearer-unsecured",
        topics=topics,
        client_id="oauth-test",
    )


@pytest.fixture
def librdkafka_log():
    logger = logging.getLogger("tests.oauthbearer.librdkafka")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = LogLines()
    logger.addHandler(handler)
    yield logger, handler
    logger.removeHandler(handler)


def test_the_producer_config_uses_sasl_oauthbearer_with_the_given_callback(oauth_settings):
    callback = unsecured_jwt_callback("someone")
    config = producer_config(oauth_settings, token_callback=callback)
    assert config["security.protocol"] == "SASL_PLAINTEXT"
    assert config["sasl.mechanism"] == "OAUTHBEARER"
    assert config["oauth_cb"] is callback


def test_events_are_delivered_and_the_token_is_refreshed_before_it_expires(
    oauth_settings, librdkafka_log
):
    """Over ~15 s of real-time pacing with a 15 s token: every event is acknowledged, the
    callback is called again before the first token expires, the connection re-authenticates
    with the new token, and the broker never rejects a token or a re-authentication."""
    logger, log = librdkafka_log
    callback = RecordingTokenCallback(
        unsecured_jwt_callback("smartcity-producer", lifetime_seconds=TOKEN_LIFETIME_SECONDS)
    )
    # One vehicle, a tick every 5 simulated seconds, 5x speed-up: one tick per wall second.
    options = SimulationOptions(vehicles=1, seed=11, tick_seconds=5.0)
    events = []
    for event in simulate(options):
        origin = events[0].emit_time if events else event.emit_time
        if (event.emit_time - origin).total_seconds() >= RUN_TICKS * options.tick_seconds:
            break
        events.append(event)

    started = time.time()
    report = send_events(
        events,
        oauth_settings,
        pace="realtime",
        speedup=5.0,
        token_callback=callback,
        config_overrides={"debug": "security", "logger": logger},
        connect_timeout=10.0,
        flush_timeout=15.0,
        show_progress=False,
    )
    elapsed = time.time() - started

    assert report.ok, report.table()
    assert report.acknowledged == report.produced == len(events)
    expected = Counter(oauth_settings.topic(e.stream) for e in events)
    assert {t: c.acknowledged for t, c in report.topics.items() if c.produced} == dict(expected)
    assert RUN_TICKS - 2 <= elapsed <= RUN_TICKS + 15, f"paced run took {elapsed:.1f}s"

    calls = list(callback.calls)
    assert len(calls) >= 2, f"the token was never refreshed: {calls}"
    (first_at, first_expiry), (second_at, _) = calls[0], calls[1]
    lifetime = first_expiry - first_at  # the exp claim is whole seconds
    assert TOKEN_LIFETIME_SECONDS - 1 <= lifetime <= TOKEN_LIFETIME_SECONDS
    # librdkafka refreshes at 80 % of the lifetime (checked once a second), before expiry.
    assert first_at + 0.75 * TOKEN_LIFETIME_SECONDS <= second_at < first_expiry, (
        f"second token fetched {second_at - first_at:.2f}s after the first, "
        f"which expired after {first_expiry - first_at:.2f}s"
    )
    for (_, expiry), (next_at, _) in zip(calls, calls[1:], strict=False):
        assert next_at < expiry

    messages = [m for _, m in log.lines]
    failures = [
        m
        for level, m in log.lines
        if level >= logging.WARNING and ("SASL" in m or "invalid_token" in m or "uthenticat" in m)
    ]
    assert failures == [], "\n".join(failures)
    # The broker bounded each session by the token's expiry and the client re-authenticated
    # on the same connection (KIP-368) with the refreshed token.
    assert any("session lifetime" in m for m in messages), "the broker returned no session lifetime"
    assert any("Auth in state REAUTH" in m for m in messages), "no connection re-authenticated"


def test_a_token_the_broker_rejects_fails_fast_with_a_clear_error(oauth_settings):
    """An expired JWT is refused by the broker's validator: the producer does not start."""

    def expired(config: str) -> tuple[str, float]:
        token, _ = unsecured_jwt_callback("late", lifetime_seconds=-60)(config)
        return token, time.time() + 60  # librdkafka itself accepts only unexpired tokens

    with pytest.raises(ProducerError, match="cannot reach Kafka"):
        send_events(
            [], oauth_settings, token_callback=expired, connect_timeout=3.0, show_progress=False
        )
