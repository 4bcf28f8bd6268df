"""The broker crashes (SIGKILL) while the producer CLI is sending, and comes back on the same
data directory and port.

A short outage loses nothing and duplicates nothing (idempotent producer). An outage longer
than the delivery timeout makes the producer exit 1, and the events it counts as failed are
exactly the produced events that are not in Kafka: no event is lost silently.

Each test starts its own broker, because it kills it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from emr_jobs.core.contracts import ALL_STREAMS, CONTRACTS
from emr_jobs.core.kafka import KafkaSettings
from emr_jobs.core.paths import REPO_ROOT
from scripts.local_broker import EmbeddedKafka, free_port
from scripts.topics import TopicSpec, ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

#: Realtime pace: about 95 events per wall second with the default 5 vehicles at speedup 50,
#: so EVENTS takes about 25 s to send and the crash lands in the middle of it.
SPEEDUP = "50"
EVENTS = 2400
#: Records in Kafka before the crash: the producer is mid-production, not starting up.
CRASH_AFTER = 300


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedKafka]:
    node = EmbeddedKafka(tmp_path / "broker", port=free_port())
    node.start()
    yield node
    node.stop()


@pytest.fixture
def settings(broker: EmbeddedKafka) -> KafkaSettings:
    kafka = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers,
        topics={s: "outage-" + CONTRACTS[s].default_topic for s in ALL_STREAMS},
    )
    ensure_topics(kafka, TopicSpec(partitions=3))
    return kafka


def start_producer(
    settings: KafkaSettings, workdir: Path, **variables: str
) -> tuple[subprocess.Popen, Path]:
    env = {**os.environ, **settings.to_env()}
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        **variables,
    )
    report = workdir / "report.json"
    args = ["--pace", "realtime", "--speedup", SPEEDUP, "--max-events", str(EVENTS)]
    with open(workdir / "producer.out", "w") as out, open(workdir / "producer.err", "w") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "producer.cli",
                *args,
                "--no-progress",
                "--report-json",
                str(report),
            ],
            env=env,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=err,
        )
    return proc, report


def records_in_kafka(settings: KafkaSettings) -> int:
    """Sum of the high watermarks of every partition of the five topics (0 while new topics
    have no leader yet)."""
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": "watermarks"})
    try:
        metadata = consumer.list_topics(timeout=10)
        return sum(
            consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
            for t in settings.topics.values()
            for p in metadata.topics[t].partitions
        )
    except KafkaException:
        return 0
    finally:
        consumer.close()


def event_ids_in_kafka(settings: KafkaSettings, timeout: float = 60.0) -> list[tuple[str, str]]:
    """(topic, event id) of every record, read from the start to each partition's end."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"verify-{time.monotonic_ns()}",
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(timeout=10)
        partitions = [
            TopicPartition(t, p, OFFSET_BEGINNING)
            for t in settings.topics.values()
            for p in metadata.topics[t].partitions
        ]
        ends = {
            (tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=10)[1]
            for tp in partitions
        }
        unread = {key for key, end in ends.items() if end > 0}
        consumer.assign(partitions)
        ids: list[tuple[str, str]] = []
        deadline = time.monotonic() + timeout
        while unread and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            ids.append((msg.topic(), json.loads(msg.value())["id"]))
            if msg.offset() + 1 >= ends[(msg.topic(), msg.partition())]:
                unread.discard((msg.topic(), msg.partition()))
        assert not unread, f"partitions not read to their end within {timeout:.0f}s: {unread}"
        return ids
    finally:
        consumer.close()


def crash_and_restart(broker: EmbeddedKafka, settings: KafkaSettings, down_for: float) -> dict:
    """Wait until the producer is mid-production, SIGKILL the broker, keep it down for
    ``down_for`` seconds, start it again on the same data directory and port."""
    deadline = time.monotonic() + 30
    while (before := records_in_kafka(settings)) < CRASH_AFTER:
        assert time.monotonic() < deadline, "the producer did not start sending"
        time.sleep(0.2)
    cluster = broker.stored_cluster_id
    broker.kill()
    killed = time.monotonic()
    time.sleep(down_for)
    broker.start()
    assert broker.stored_cluster_id == cluster  # the same cluster, not a re-formatted one
    return {"in_kafka_at_crash": before, "outage_seconds": time.monotonic() - killed}


def finish(proc: subprocess.Popen, report_file: Path, workdir: Path) -> tuple[dict, str]:
    proc.wait(timeout=90)
    stderr = (workdir / "producer.err").read_text()
    assert "Traceback" not in stderr, stderr
    return json.loads(report_file.read_text()), stderr


def test_a_short_outage_loses_nothing_and_duplicates_nothing(broker, settings, tmp_path):
    proc, report_file = start_producer(settings, tmp_path)
    try:
        outage = crash_and_restart(broker, settings, down_for=3)
        report, stderr = finish(proc, report_file, tmp_path)
    finally:
        proc.kill()
    print(f"outage {outage}, report {report}")
    assert outage["in_kafka_at_crash"] < EVENTS  # the crash came mid-production
    assert outage["outage_seconds"] < 30  # well under the default delivery timeout
    assert proc.returncode == 0, stderr
    # The outage is reported, but each kind of client error once, not once per reconnect.
    client_errors = [line for line in stderr.splitlines() if " ERROR " in line]
    print("\n".join(client_errors))
    assert 0 < len(client_errors) <= 10
    assert report["produced"] == report["acknowledged"] == EVENTS
    assert report["failed"] == 0
    ids = event_ids_in_kafka(settings)
    assert len(ids) == EVENTS
    duplicates = [key for key, n in Counter(ids).items() if n > 1]
    assert duplicates == []
    in_kafka = Counter(topic for topic, _ in ids)
    assert in_kafka == {t: c["acknowledged"] for t, c in report["topics"].items()}


def test_an_outage_longer_than_the_delivery_timeout_counts_exactly_the_missing_events(
    broker, settings, tmp_path
):
    proc, report_file = start_producer(settings, tmp_path, PRODUCER_DELIVERY_TIMEOUT_SECONDS="2")
    try:
        outage = crash_and_restart(broker, settings, down_for=6)
        report, stderr = finish(proc, report_file, tmp_path)
    finally:
        proc.kill()
    print(f"outage {outage}, report {report}")
    assert outage["outage_seconds"] > 2 * 2
    assert proc.returncode == 1, stderr
    assert report["produced"] == EVENTS
    assert report["failed"] > 0
    ids = event_ids_in_kafka(settings)
    assert len(set(ids)) == len(ids)  # nothing duplicated either
    # Every event is accounted for: what is not in Kafka is exactly what was counted failed.
    assert report["failed"] == report["produced"] - len(ids)
    assert report["acknowledged"] == len(ids)
    in_kafka = Counter(topic for topic, _ in ids)
    for topic, counts in report["topics"].items():
        assert counts["produced"] - counts["failed"] == in_kafka[topic], topic
    last = stderr.strip().splitlines()[-1]
    assert last == f"error: {report['failed']} of {EVENTS} events were not delivered"
