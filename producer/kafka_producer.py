"""Sends simulated events to Kafka: idempotent, batched, keyed by deviceId, counted.

The loop follows confluent-kafka's own examples: ``produce(..., on_delivery=cb)``, then
``poll(0)``; on ``BufferError`` it polls and retries; ``flush()`` runs once, at shutdown, and
what it could not deliver is reported as failed.
"""

from __future__ import annotations

import logging
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from confluent_kafka import KafkaException, Producer

from emr_jobs.core.contracts import CONTRACTS, STREAMS
from emr_jobs.core.kafka import KafkaSettings
from producer.kafka_config import TokenCallback, producer_config

log = logging.getLogger("producer")


_KEY_CACHE_SIZE = 100_000  # encoded Kafka keys kept by send_events (a fleet has at most 10,000)


class ProducerError(RuntimeError):
    """The producer cannot start: unreachable broker, missing topics, bad settings."""


@dataclass
class TopicCounts:
    produced: int = 0
    acknowledged: int = 0
    failed: int = 0
    bytes: int = 0


@dataclass
class DeliveryReport:
    """What happened to every event, per topic. Every produced event ends acknowledged or failed."""

    topics: dict[str, TopicCounts] = field(default_factory=dict)
    first_error: str | None = None
    not_flushed: int = 0
    interrupted_by: str | None = None
    seconds: float = 0.0

    def counts(self, topic: str) -> TopicCounts:
        counts = self.topics.get(topic)
        if counts is None:
            counts = self.topics[topic] = TopicCounts()
        return counts

    def on_delivery(self, err: Any, msg: Any) -> None:
        topic = msg.topic()
        counts = self.topics.get(topic) or self.counts(topic)  # runs once per event: no extra call
        if err is None:
            counts.acknowledged += 1
        else:
            counts.failed += 1
            if self.first_error is None:
                self.first_error = str(err)

    @property
    def produced(self) -> int:
        return sum(c.produced for c in self.topics.values())

    @property
    def acknowledged(self) -> int:
        return sum(c.acknowledged for c in self.topics.values())

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self.topics.values()) + self.not_flushed

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.acknowledged == self.produced

    def table(self) -> str:
        rows = [f"{'topic':<18}{'produced':>10}{'acked':>10}{'failed':>8}{'MB':>9}"]
        for topic, c in sorted(self.topics.items()):
            rows.append(
                f"{topic:<18}{c.produced:>10}{c.acknowledged:>10}{c.failed:>8}{c.bytes / 1e6:>9.2f}"
            )
        total_bytes = sum(c.bytes for c in self.topics.values())
        rows.append(
            f"{'total':<18}{self.produced:>10}{self.acknowledged:>10}{self.failed:>8}"
            f"{total_bytes / 1e6:>9.2f}"
        )
        rate = self.produced / self.seconds if self.seconds else 0.0
        rows.append(f"{self.seconds:.1f}s, {rate:,.0f} events/s")
        if self.not_flushed:
            rows.append(f"{self.not_flushed} events were still queued when flush() timed out")
        if self.first_error:
            rows.append(f"first delivery error: {self.first_error}")
        if self.interrupted_by:
            rows.append(f"stopped early by {self.interrupted_by}; everything produced was flushed")
        return "\n".join(rows)


class Pacer:
    """``max``: no waiting. ``realtime``: simulated time advances ``speedup`` times wall time."""

    def __init__(self, pace: str, speedup: float, idle: Callable[[float], object]) -> None:
        self.realtime = pace == "realtime"
        self.speedup = speedup
        self.idle = idle
        self.sim_origin: datetime | None = None
        self.wall_origin = 0.0

    def wait_until(self, emit_time: datetime, should_stop: Callable[[], bool]) -> None:
        if not self.realtime:
            return
        if self.sim_origin is None:
            self.sim_origin, self.wall_origin = emit_time, time.monotonic()
            return
        target = self.wall_origin + (emit_time - self.sim_origin).total_seconds() / self.speedup
        while not should_stop():
            ahead = target - time.monotonic()
            if ahead <= 0:
                return
            self.idle(min(ahead, 0.2))  # poll() serves delivery callbacks while waiting


def check_connection(producer: Producer, settings: KafkaSettings, timeout: float) -> None:
    """Fail within ``timeout`` seconds if the broker is unreachable or a topic is missing."""
    try:
        metadata = producer.list_topics(timeout=timeout)
    except KafkaException as err:
        reason = unreachable_reason(settings.bootstrap_servers) or (
            err.args[0].str() if err.args else str(err)
        )
        raise ProducerError(
            f"cannot reach Kafka at {settings.bootstrap_servers} (KAFKA_BOOTSTRAP_SERVERS) "
            f"within {timeout:.0f}s: {reason}"
        ) from None
    missing = [s for s in STREAMS if settings.topic(s) not in metadata.topics]
    if missing:
        names = ", ".join(f"{settings.topic(s)} ({CONTRACTS[s].topic_env})" for s in missing)
        raise ProducerError(
            f"topics missing on {settings.bootstrap_servers}: {names}; "
            "create them with `python -m scripts.topics create` or set the variable"
        )


def unreachable_reason(bootstrap_servers: str) -> str | None:
    """Why no bootstrap server answers, in plain words, or None when a TCP connection works.

    librdkafka's own reason ("Broker transport failure") does not tell a misspelt host from a
    closed port, and its detailed log lines would arrive one per retry.
    """
    reasons = []
    for hostport in bootstrap_servers.split(","):
        host, _, port = hostport.strip().rpartition(":")
        try:
            infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            reasons.append(f"host {host!r} does not resolve")
            continue
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(2.0)
            try:
                sock.connect(address)
            except ConnectionRefusedError:
                reasons.append(f"nothing listens on {host}:{port} (connection refused)")
            except OSError as err:
                reasons.append(f"{host}:{port}: {err.strerror or err}")
            else:
                return None  # TCP works: the failure is past the socket (TLS, auth, protocol)
    return "; ".join(reasons)


class RepeatFilter(logging.Filter):
    """Lets a librdkafka log line through once per ``window`` seconds.

    While a broker is down, librdkafka logs the same connection failure on every reconnect
    attempt, several times a second. The first one is shown; repeats within the window are
    counted and reported with the next one shown. Numbers (timings) are ignored when comparing.
    """

    def __init__(self, window: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self.clock = clock
        self.seen: dict[str, tuple[float, int]] = {}  # shape -> (last shown, repeats since)

    def filter(self, record: logging.LogRecord) -> bool:
        shape = re.sub(r"\d+", "#", record.getMessage())
        now = self.clock()
        shown = self.seen.get(shape)
        if shown is not None and now - shown[0] < self.window:
            self.seen[shape] = (shown[0], shown[1] + 1)
            return False
        if shown is not None and shown[1]:
            record.msg = f"{record.getMessage()} ({shown[1]} like it suppressed since the last)"
            record.args = ()
        if len(self.seen) > 1000:
            self.seen.clear()
        self.seen[shape] = (now, 0)
        return True


def quiet_client_logs(logger_name: str = "producer.librdkafka") -> None:
    """Install :class:`RepeatFilter` on the client's logger (once)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RepeatFilter) for f in logger.filters):
        logger.addFilter(RepeatFilter())


class _Stop:
    def __init__(self) -> None:
        self.signal_name: str | None = None

    def __call__(self) -> bool:
        return self.signal_name is not None

    def handler(self, signum: int, _frame: object) -> None:
        self.signal_name = signal.Signals(signum).name


def send_events(
    events: Iterable[Any],
    settings: KafkaSettings,
    *,
    pace: str = "max",
    speedup: float = 1.0,
    flush_timeout: float = 30.0,
    connect_timeout: float = 5.0,
    delivery_timeout: float | None = None,
    token_callback: TokenCallback | None = None,
    config_overrides: Mapping[str, object] | None = None,
    serialize: Callable[[dict], bytes] | None = None,
    progress_total: int | None = None,
    show_progress: bool | None = None,
    on_connected: Callable[[], object] | None = None,
) -> DeliveryReport:
    """Produce every event (``.stream``, ``.key``, ``.payload``, ``.emit_time``) to its topic.

    ``delivery_timeout`` (seconds; None keeps ``producer_config``'s) bounds how long an event
    may wait for its acknowledgement, retries included, before it is counted as failed.
    ``on_connected`` runs once the broker answered and every topic exists, before the first
    event. SIGINT/SIGTERM stop the loop; what was produced is still flushed and counted.
    """
    if serialize is None:
        from producer.wire import to_json_bytes

        serialize = to_json_bytes
    report = DeliveryReport()
    config = producer_config(settings, token_callback=token_callback)
    if delivery_timeout is not None:
        config["message.timeout.ms"] = int(delivery_timeout * 1000)
    config.update(config_overrides or {})
    quiet_client_logs()
    producer = Producer(config)
    check_connection(producer, settings, connect_timeout)
    if on_connected is not None:
        on_connected()
    topic_of = {s: settings.topic(s) for s in STREAMS}
    counts = {s: report.counts(topic_of[s]) for s in STREAMS}
    stop = _Stop()
    # Signal handlers can only be installed from the main thread (tests drive this from others).
    in_main = threading.current_thread() is threading.main_thread()
    previous = (
        {s: signal.signal(s, stop.handler) for s in (signal.SIGINT, signal.SIGTERM)}
        if in_main
        else {}
    )
    pacer = Pacer(pace, speedup, producer.poll)
    bar = _progress(progress_total, show_progress)
    on_delivery = report.on_delivery
    # The loop runs once per event, so it avoids per-event work that does not vary: bound
    # methods are looked up once, the pacer is skipped at pace=max, each deviceId is encoded
    # once (a fleet has at most 10,000), and the progress bar is called every 1,024 events.
    produce, poll = producer.produce, producer.poll
    realtime = pacer.realtime
    keys: dict[str, bytes] = {}
    started = time.monotonic()
    try:
        for n, event in enumerate(events, 1):
            if stop.signal_name is not None:
                break
            if realtime:
                pacer.wait_until(event.emit_time, stop)
            value = serialize(event.payload)
            stream = event.stream
            key = keys.get(event.key)
            if key is None:
                if len(keys) >= _KEY_CACHE_SIZE:
                    keys.clear()
                key = keys[event.key] = event.key.encode()
            while True:
                try:
                    produce(topic_of[stream], value=value, key=key, on_delivery=on_delivery)
                    break
                except BufferError:
                    poll(0.05)  # queue full: let deliveries drain, then retry
            poll(0)
            c = counts[stream]
            c.produced += 1
            c.bytes += len(value)
            if not n & 1023:
                bar.tick(n, report)
    finally:
        report.interrupted_by = stop.signal_name
        # Keep the signal handlers during flush so a second Ctrl-C does not lose the report.
        report.not_flushed = producer.flush(flush_timeout)
        report.seconds = time.monotonic() - started
        bar.close(report)
        for s, handler in previous.items():
            signal.signal(s, handler)
    return report


class _progress:
    """tqdm on a terminal; a log line every 10 s otherwise."""

    def __init__(self, total: int | None, show: bool | None) -> None:
        self.tty = sys.stderr.isatty() if show is None else show
        self.last = time.monotonic()
        self.bar = None
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, unit="ev", unit_scale=True, desc="producing", smoothing=0.1
            )
        self.reported = 0

    def tick(self, n: int, report: DeliveryReport) -> None:
        if self.bar is not None:
            self.bar.update(n - self.reported)
            self.reported = n
            return
        now = time.monotonic()
        if now - self.last >= 10:
            self.last = now
            log.info(
                "produced %d, acknowledged %d, failed %d",
                report.produced,
                report.acknowledged,
                report.failed,
            )

    def close(self, report: DeliveryReport) -> None:
        if self.bar is not None:
            self.bar.update(report.produced - self.reported)
            self.bar.close()
