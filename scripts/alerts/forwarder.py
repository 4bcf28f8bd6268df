"""The forwarder's loop: consume the alerts topic, notify once per alert id, commit behind it.

Per record: decode and check it against the alerts contract (bad: a warning, counted, skipped);
skip it if older than ``ALERT_MAX_AGE_MINUTES``; claim its id in the ledger; publish to every
channel the claim has not delivered yet; mark it sent. A failed publish releases the claim and
*defers* the record: its partition is rewound to it (``seek``) and tried again after a backoff,
so nothing behind it in that partition is committed. Offsets are committed synchronously after
each batch, and only up to the first record of each partition that is not done.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from emr_jobs.core.contracts import CONTRACTS, parse_timestamp
from emr_jobs.core.kafka import KafkaSettings
from producer.kafka_config import TokenCallback, admin_config
from producer.kafka_producer import RepeatFilter, unreachable_reason
from scripts.alerts.ledger import ClaimState, Ledger, LedgerError, open_ledger
from scripts.alerts.notifiers import Alert, Notifier, NotifyError, build_notifiers
from scripts.alerts.settings import MAX_RETRY_DELAY_SECONDS, ForwarderSettings

log = logging.getLogger("alerts")
CONTRACT = CONTRACTS["alerts"]
#: Records fetched per ``consume()`` call; offsets are committed after each batch.
BATCH_SIZE = 100


class ForwarderError(RuntimeError):
    """The forwarder cannot start or go on: unreachable broker, missing topic, ledger, settings."""


class Stop(threading.Event):
    """Set to stop the forwarder after the record in hand; ``reason`` says who asked."""

    def __init__(self) -> None:
        super().__init__()
        self.reason = ""

    def request(self, reason: str) -> None:
        self.reason = reason
        self.set()


@dataclass
class Counts:
    """Every record ends as exactly one of notified, already notified, skipped old or bad, so
    ``received`` is their sum. ``deferred`` counts the times a record had to wait (publish
    failed, or another claim on its id was live); it is received once, when it is done."""

    received: int = 0
    notified: int = 0
    already_notified: int = 0
    skipped_old: int = 0
    bad: int = 0
    deferred: int = 0

    def line(self) -> str:
        return (
            f"received {self.received}, notified {self.notified}, "
            f"already notified {self.already_notified}, skipped old {self.skipped_old}, "
            f"bad {self.bad}, deferred {self.deferred}"
        )


@dataclass
class Result:
    counts: Counts
    stopped_by: str
    #: Alert ids that were deferred and not done when the forwarder stopped (sent next start).
    outstanding: frozenset[str]


def consumer_config(
    kafka: KafkaSettings,
    settings: ForwarderSettings,
    *,
    token_callback: TokenCallback | None = None,
) -> dict[str, object]:
    """The consumer's config: the connection and authentication of ``admin_config`` (the one
    owner of auth), plus the forwarder's group, manual commits and ``earliest`` for a new group
    (a first start misses nothing; ``ALERT_MAX_AGE_MINUTES`` keeps it from notifying stale
    alerts)."""
    config = admin_config(kafka, token_callback=token_callback)
    worst_wait = settings.publish_budget_seconds + MAX_RETRY_DELAY_SECONDS + 60
    config.update(
        {
            "client.id": f"{kafka.client_id}-alert-forwarder",
            "group.id": settings.group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            # After a crash the group waits this long for the dead member before a restarted
            # forwarder gets the partitions (the default is 45 s). Heartbeats run on a
            # background thread, so a slow publish does not count against it.
            "session.timeout.ms": 10_000,
            # A slow publish must not get the consumer thrown out of its group.
            "max.poll.interval.ms": int(min(max(300.0, worst_wait), 86_400.0) * 1000),
            # Brokers close idle connections (MSK after 10 minutes); that is not news.
            "log.connection.close": False,
            "logger": logging.getLogger("alerts.librdkafka"),
        }
    )
    return config


def check_connection(consumer: Consumer, kafka: KafkaSettings, timeout: float) -> None:
    """Fail within ``timeout`` seconds if the broker is unreachable or the topic is missing."""
    topic = kafka.topic("alerts")
    try:
        metadata = consumer.list_topics(timeout=timeout)
    except KafkaException as err:
        reason = unreachable_reason(kafka.bootstrap_servers) or (
            err.args[0].str() if err.args else str(err)
        )
        raise ForwarderError(
            f"cannot reach Kafka at {kafka.bootstrap_servers} (KAFKA_BOOTSTRAP_SERVERS) "
            f"within {timeout:.0f}s: {reason}"
        ) from None
    if topic not in metadata.topics or metadata.topics[topic].error is not None:
        raise ForwarderError(
            f"topic {topic!r} ({CONTRACT.topic_env}) does not exist on "
            f"{kafka.bootstrap_servers}; create it with `python -m scripts.topics create` "
            f"or set {CONTRACT.topic_env}"
        )


class AlertHandler:
    """Decides and does what one record needs; returns None when it is done, or the seconds
    to wait before it is tried again."""

    def __init__(
        self,
        settings: ForwarderSettings,
        ledger: Ledger,
        notifiers: list[Notifier],
        stop: Stop,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.notifiers = notifiers
        self.stop = stop
        self.clock = clock
        self.counts = Counts()
        self.failures: dict[str, int] = {}  # alert id -> failed rounds (for the backoff)
        self.waiting: set[str] = set()  # deferred and not done yet

    def handle(self, msg: Message) -> float | None:
        alert = self.decode(msg)
        if alert is None:
            self.counts.bad += 1
            return None
        if self.too_old(alert):
            self.counts.skipped_old += 1
            self.done(alert)
            return None
        try:
            claim = self.ledger.claim(alert.id)
        except LedgerError as err:
            return self.defer(alert, f"the ledger failed: {err}")
        if claim.state is ClaimState.SENT:
            self.counts.already_notified += 1
            self.done(alert)
            return None
        if claim.state is ClaimState.BUSY:
            wait = max(claim.lease_until - self.clock(), 0.0) + 0.1
            log.info(
                "alert %s is claimed by another forwarder or an interrupted run until its "
                "lease runs out in %.0fs; it is sent then if that claim is not completed",
                alert.id,
                wait,
            )
            self.counts.deferred += 1
            self.waiting.add(alert.id)
            return min(wait, MAX_RETRY_DELAY_SECONDS)
        delivered = set(claim.delivered)
        for notifier in self.notifiers:
            if notifier.name in delivered:
                continue
            if not self.publish(notifier, alert):
                try:
                    self.ledger.release(alert.id, claim.token, frozenset(delivered))
                except LedgerError as err:
                    log.warning("could not release the claim on %s (%s); it expires", alert.id, err)
                return self.defer(alert, f"{notifier.target} failed")
            delivered.add(notifier.name)
        if not self.retrying(lambda: self.ledger.mark_sent(alert.id, frozenset(delivered))):
            # Published, but not recorded as sent. Releasing with every channel delivered lets
            # the retry just mark it; if that write fails too, the lease runs out and the
            # alert is sent again (the documented window).
            with contextlib.suppress(LedgerError):
                self.ledger.release(alert.id, claim.token, frozenset(delivered))
            return self.defer(alert, "the ledger could not mark it sent")
        self.counts.notified += 1
        self.done(alert)
        return None

    def done(self, alert: Alert) -> None:
        self.failures.pop(alert.id, None)
        self.waiting.discard(alert.id)

    def decode(self, msg: Message) -> Alert | None:
        topic, partition, offset = _position(msg)
        where = f"{topic} partition {partition} offset {offset}"
        value = msg.value()
        if not value:
            log.warning("skipped a bad record at %s: empty value", where)
            return None
        try:
            record = orjson.loads(value)
        except orjson.JSONDecodeError as err:
            log.warning("skipped a bad record at %s: not JSON (%s)", where, err)
            return None
        problems = CONTRACT.violations(record)
        if not problems and not record["id"].strip():
            problems = ["id: empty"]
        if problems:
            log.warning(
                "skipped a bad record at %s: breaks the alerts contract: %s",
                where,
                "; ".join(problems),
            )
            return None
        return Alert(
            id=record["id"],
            record=record,
            raw=value,
            topic=topic,
            partition=partition,
            offset=offset,
        )

    def too_old(self, alert: Alert) -> bool:
        if not self.settings.max_age_minutes:
            return False
        detected = parse_timestamp(alert.record["detectedAt"])
        assert detected is not None  # the contract checked it
        return self.clock() - detected.timestamp() > self.settings.max_age_minutes * 60

    def publish(self, notifier: Notifier, alert: Alert) -> bool:
        """Up to ``ALERT_PUBLISH_ATTEMPTS`` tries with doubling waits; a WARNING per failure."""
        attempts = self.settings.publish_attempts
        for attempt in range(1, attempts + 1):
            try:
                notifier.send(alert)
                return True
            except NotifyError as err:
                if attempt == attempts or self.stop.is_set():
                    log.warning(
                        "%s failed for alert %s (attempt %d/%d): %s",
                        notifier.target,
                        alert.id,
                        attempt,
                        attempts,
                        err,
                    )
                    return False
                wait = self.backoff(attempt - 1)
                log.warning(
                    "%s failed for alert %s (attempt %d/%d): %s; retrying in %.1fs",
                    notifier.target,
                    alert.id,
                    attempt,
                    attempts,
                    err,
                    wait,
                )
                if self.stop.wait(wait):
                    return False
        return False

    def retrying(self, write: Callable[[], None]) -> bool:
        for attempt in range(self.settings.publish_attempts):
            try:
                write()
                return True
            except LedgerError as err:
                log.warning("ledger write failed: %s", err)
                if self.stop.wait(self.backoff(attempt)):
                    return False
        return False

    def defer(self, alert: Alert, why: str) -> float:
        n = self.failures.get(alert.id, 0)
        self.failures[alert.id] = n + 1
        self.waiting.add(alert.id)
        self.counts.deferred += 1
        wait = self.backoff(n)
        log.warning(
            "alert %s deferred: %s; tried again in %.1fs (its offset is not committed)",
            alert.id,
            why,
            wait,
        )
        return wait

    def backoff(self, n: int) -> float:
        return min(self.settings.retry_backoff_seconds * 2**n, MAX_RETRY_DELAY_SECONDS)

    @property
    def outstanding(self) -> frozenset[str]:
        return frozenset(self.waiting)


class OffsetBook:
    """Per partition: the next offset to commit (every record before it is done)."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.done: dict[tuple[str, int], int] = {}
        self.committed: dict[tuple[str, int], int] = {}

    def advance(self, msg: Message) -> None:
        topic, partition, offset = _position(msg)
        self.done[(topic, partition)] = offset + 1

    def commit(self, only: set[tuple[str, int]] | None = None) -> None:
        offsets = [
            TopicPartition(topic, partition, offset)
            for (topic, partition), offset in self.done.items()
            if self.committed.get((topic, partition)) != offset
            and (only is None or (topic, partition) in only)
        ]
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as err:
            # Not fatal: the records are redelivered and the ledger knows they were sent.
            log.warning("offset commit failed (records will be read again): %s", err.args[0])
            return
        for tp in offsets:
            self.committed[(tp.topic, tp.partition)] = tp.offset

    def on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        self.commit(only=revoked)
        for key in revoked:
            self.done.pop(key, None)
            self.committed.pop(key, None)


class _Progress:
    def __init__(self, every: float) -> None:
        self.every = every
        self.last = time.monotonic()

    def maybe(self, counts: Counts) -> None:
        if self.every and time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            log.info("progress: %s", counts.line())


def _position(msg: Message) -> tuple[str, int, int]:
    """A consumed record's topic, partition and offset. librdkafka sets all three on every
    record that is not an error event; without them nothing could be committed or rewound."""
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    if topic is None or partition is None or offset is None:
        raise ForwarderError(
            f"Kafka handed over a record without a position (topic {topic!r}, "
            f"partition {partition}, offset {offset})"
        )
    return topic, partition, offset


def _consumer_error(err: KafkaError) -> None:
    if err.fatal():
        raise ForwarderError(f"Kafka consumer failed: {err.str()}")
    log.warning("Kafka: %s", err.str())


def run_loop(
    consumer: Consumer,
    handler: AlertHandler,
    book: OffsetBook,
    stop: Stop,
    *,
    max_messages: int | None,
    idle_exit: float | None,
    progress_seconds: float,
) -> str:
    """Consume until stopped; returns why it stopped."""
    progress = _Progress(progress_seconds)
    last_activity = time.monotonic()
    while True:
        if stop.is_set():
            return stop.reason or "a stop request"
        if max_messages is not None and handler.counts.received >= max_messages:
            return f"--max-messages {max_messages}"
        messages = consumer.consume(BATCH_SIZE, timeout=0.5)
        progress.maybe(handler.counts)
        if not messages:
            if idle_exit is not None and time.monotonic() - last_activity >= idle_exit:
                return f"--idle-exit {idle_exit:g}s"
            continue
        last_activity = time.monotonic()
        blocked: set[tuple[str, int]] = set()
        wait = 0.0
        for msg in messages:
            err = msg.error()
            if err is not None:
                _consumer_error(err)
                continue
            topic, partition, _offset = _position(msg)
            key = (topic, partition)
            if key in blocked:
                continue  # behind a deferred record: read again after the rewind
            if stop.is_set() or (
                max_messages is not None and handler.counts.received >= max_messages
            ):
                break  # not handled, not committed: read again at the next start
            retry_in = handler.handle(msg)
            if retry_in is None:
                handler.counts.received += 1
                book.advance(msg)
                continue
            blocked.add(key)
            wait = max(wait, retry_in)
            _rewind(consumer, msg)
        book.commit()
        if wait:
            stop.wait(wait)


def _rewind(consumer: Consumer, msg: Message) -> None:
    """Fetch ``msg``'s partition again from ``msg`` (librdkafka drops what it prefetched)."""
    topic, partition, offset = _position(msg)
    try:
        consumer.seek(TopicPartition(topic, partition, offset))
    except KafkaException as err:
        # Going on could commit past the deferred record; stopping keeps it for the next start.
        raise ForwarderError(
            f"cannot rewind {topic} partition {partition} to offset {offset} "
            f"to retry an alert: {err.args[0]}"
        ) from None


def forward(
    settings: ForwarderSettings,
    kafka: KafkaSettings,
    *,
    max_messages: int | None = None,
    idle_exit: float | None = None,
    progress_seconds: float = 30.0,
    ledger: Ledger | None = None,
    notifiers: list[Notifier] | None = None,
    out: TextIO | None = None,
    stop: Stop | None = None,
    token_callback: TokenCallback | None = None,
    consumer_overrides: Mapping[str, object] | None = None,
    on_connected: Callable[[], object] | None = None,
) -> Result:
    """Run the forwarder until ``max_messages`` records are done, it was idle ``idle_exit``
    seconds, ``stop`` is set, or SIGINT/SIGTERM arrives (main thread only). Offsets of what is
    done are committed before it returns. Raises :class:`ForwarderError` if it cannot start."""
    stop = stop or Stop()
    logger = logging.getLogger("alerts.librdkafka")
    if not any(isinstance(f, RepeatFilter) for f in logger.filters):
        logger.addFilter(RepeatFilter())
    config = consumer_config(kafka, settings, token_callback=token_callback)
    config.update(consumer_overrides or {})
    consumer = Consumer(config)
    try:
        check_connection(consumer, kafka, settings.connect_timeout_seconds)
    except ForwarderError:
        # librdkafka hands over its connection failures as the consumer closes; the one
        # `error:` line already says it.
        muted = _Mute()
        logger.addFilter(muted)
        try:
            consumer.close()
        finally:
            logger.removeFilter(muted)
        raise
    own_ledger = ledger is None
    try:
        if ledger is None:
            try:
                ledger = open_ledger(settings)
            except LedgerError as err:
                raise ForwarderError(str(err)) from None
        if notifiers is None:
            notifiers = build_notifiers(settings, out=out)
        if on_connected is not None:
            on_connected()
        handler = AlertHandler(settings, ledger, notifiers, stop)
        book = OffsetBook(consumer)
        consumer.subscribe([kafka.topic("alerts")], on_revoke=book.on_revoke)
        with _signals_set(stop):
            try:
                stopped_by = run_loop(
                    consumer,
                    handler,
                    book,
                    stop,
                    max_messages=max_messages,
                    idle_exit=idle_exit,
                    progress_seconds=progress_seconds,
                )
            finally:
                book.commit()
        return Result(handler.counts, stopped_by, handler.outstanding)
    finally:
        consumer.close()
        if own_ledger and ledger is not None:
            ledger.close()


class _Mute(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


class _signals_set:
    """SIGINT/SIGTERM set ``stop`` (and name themselves) while the loop runs, in the main
    thread only (tests run the forwarder in threads too)."""

    def __init__(self, stop: Stop) -> None:
        self.stop = stop
        self.previous: dict[int, Any] = {}

    def handler(self, signum: int, _frame: object) -> None:
        self.stop.request(signal.Signals(signum).name)

    def __enter__(self) -> _signals_set:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self.previous[s] = signal.signal(s, self.handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, previous in self.previous.items():
            signal.signal(s, previous)
