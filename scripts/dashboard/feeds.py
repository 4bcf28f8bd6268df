"""The live topics, read with confluent-kafka into :class:`~scripts.dashboard.state.LiveState`.

One consumer in one thread reads ``vehicle``, ``emergency``, ``weather``, ``alerts`` and
``road_conditions``. It has its own consumer group id (``DASHBOARD_CONSUMER_GROUP``) but never
joins or commits: it assigns itself every partition at the latest offset. So a dashboard shows
what happens from the moment it starts, and two dashboards never split the partitions between
them. A topic that does not exist yet is picked up once it does.

Authentication comes from the project's one builder of Kafka client options
(``emr_jobs.core.kafka``), so the dashboard reads MSK with IAM like every other client.
"""

from __future__ import annotations

import logging
import threading
import time

import orjson
from confluent_kafka import (
    OFFSET_END,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from emr_jobs.core.kafka import KafkaSettings
from producer.kafka_config import TokenCallback, admin_config
from scripts.dashboard.state import LiveState

log = logging.getLogger(__name__)

#: The streams the page shows; gps and traffic_camera only count (from the broker's offsets).
LIVE_STREAMS = ("vehicle", "emergency", "weather", "alerts", "road_conditions")
BATCH = 1_000
RETRY_MISSING_S = 5.0


def consumer_config(
    kafka: KafkaSettings, group: str, *, token_callback: TokenCallback | None = None
) -> dict[str, object]:
    """A consumer that starts at the latest offset and never commits, with the project's auth."""
    config = admin_config(kafka, token_callback=token_callback)
    config.update(
        {
            "client.id": f"{kafka.client_id}-dashboard",
            "group.id": group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "latest",
            "fetch.wait.max.ms": 100,
            "logger": logging.getLogger("dashboard.librdkafka"),
        }
    )
    return config


class LiveFeed(threading.Thread):
    """Reads the live topics until :meth:`stop`; every record goes to ``state``."""

    def __init__(
        self,
        kafka: KafkaSettings,
        state: LiveState,
        group: str,
        *,
        token_callback: TokenCallback | None = None,
    ) -> None:
        super().__init__(name="dashboard-kafka", daemon=True)
        self.kafka = kafka
        self.state = state
        self.streams = {kafka.topic(s): s for s in LIVE_STREAMS}
        self.consumer = Consumer(consumer_config(kafka, group, token_callback=token_callback))
        self.assigned: set[str] = set()
        self.missing: list[str] = []
        self.error: str | None = None
        self._halt = threading.Event()
        self.ready = threading.Event()  # set once the first assignment is in place

    def stop(self, timeout: float = 10.0) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout)

    def _assign_new(self) -> None:
        topics = self.consumer.list_topics(timeout=5).topics
        new = [
            TopicPartition(topic, p, OFFSET_END)
            for topic in self.streams
            if topic not in self.assigned and topic in topics and topics[topic].error is None
            for p in topics[topic].partitions
        ]
        if new:
            self.consumer.incremental_assign(new)
            self.assigned.update(tp.topic for tp in new)
        missing = sorted(set(self.streams) - self.assigned)
        if missing and missing != self.missing:
            log.warning("topics not there yet (read once they are): %s", ", ".join(missing))
        self.missing = missing

    def run(self) -> None:
        try:
            self._run()
        except Exception as err:  # noqa: BLE001 - reported on the health panel and the log
            self.error = f"{type(err).__name__}: {err}"
            log.error("the live feed stopped: %s", self.error)
        finally:
            self.ready.set()
            self.consumer.close()

    def _run(self) -> None:
        self._assign_new()
        self.ready.set()
        next_check = time.monotonic() + RETRY_MISSING_S
        ingest, ingest_vehicles = self.state.ingest, self.state.ingest_vehicles
        vehicle_topic = self.kafka.topic("vehicle")
        while not self._halt.is_set():
            if self.missing and time.monotonic() >= next_check:
                next_check = time.monotonic() + RETRY_MISSING_S
                try:
                    self._assign_new()
                except KafkaException as err:
                    log.warning("cannot list topics: %s", err)
            messages = self.consumer.consume(BATCH, timeout=0.2)
            if not messages:
                continue
            vehicles: list[dict] = []
            for msg in messages:
                error = msg.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("kafka: %s", error)
                    continue
                topic = msg.topic()
                if topic is None:  # librdkafka names the topic of every record that is no error
                    raise RuntimeError(
                        f"kafka handed over a record without a topic "
                        f"(partition {msg.partition()}, offset {msg.offset()})"
                    )
                try:
                    value = orjson.loads(msg.value() or b"null")
                except orjson.JSONDecodeError:
                    self.state.stream(self.streams[topic]).invalid += 1
                    continue
                if topic == vehicle_topic:
                    if isinstance(value, dict):
                        vehicles.append(value)
                    else:
                        self.state.stream("vehicle").invalid += 1
                else:
                    kind, ms = msg.timestamp()
                    ingest(
                        self.streams[topic], value, None if kind == TIMESTAMP_NOT_AVAILABLE else ms
                    )
            if vehicles:
                ingest_vehicles(vehicles)
