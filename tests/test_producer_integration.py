"""The producer against the real embedded broker: delivery accounting, back-pressure, failures,
unreachable brokers, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from emr_jobs.core.contracts import ALL_STREAMS, CONTRACTS
from emr_jobs.core.kafka import KafkaSettings
from emr_jobs.core.paths import REPO_ROOT
from producer.kafka_producer import ProducerError, send_events
from producer.simulator import SimulationOptions, simulate

pytestmark = pytest.mark.integration


def consume_all(settings: KafkaSettings, topic: str, expected: int, timeout: float = 30.0) -> list:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"verify-{topic}-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages = []
    deadline = time.monotonic() + timeout
    while len(messages) < expected and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            messages.append(msg)
    # Anything beyond the expected count would be a duplicate: give it a moment to show up.
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        msg = consumer.poll(0.2)
        if msg is not None and msg.error() is None:
            messages.append(msg)
    consumer.close()
    return messages


def test_every_event_is_acknowledged_counted_per_topic_and_keyed_by_device(kafka_settings):
    events = list(simulate(SimulationOptions(vehicles=2, seed=3, max_events=3000)))
    report = send_events(events, kafka_settings, show_progress=False)
    assert report.ok
    expected = Counter(kafka_settings.topic(e.stream) for e in events)
    assert {t: c.produced for t, c in report.topics.items() if c.produced} == dict(expected)
    assert {t: c.acknowledged for t, c in report.topics.items() if c.produced} == dict(expected)
    vehicle_topic = kafka_settings.topic("vehicle")
    received = consume_all(kafka_settings, vehicle_topic, expected[vehicle_topic])
    assert len(received) == expected[vehicle_topic]
    for msg in received:
        assert msg.key().decode() == json.loads(msg.value())["deviceId"]


def test_a_full_local_queue_is_drained_by_polling_not_lost(kafka_settings):
    """With a tiny queue, produce() raises BufferError constantly; every event still arrives."""
    events = list(simulate(SimulationOptions(vehicles=1, seed=5, max_events=2000)))
    report = send_events(
        events,
        kafka_settings,
        config_overrides={"queue.buffering.max.messages": 10, "linger.ms": 1},
        show_progress=False,
    )
    assert report.ok
    assert report.acknowledged == len(events) == 2000


def test_rejected_deliveries_are_counted_as_failed(kafka_broker, topic_prefix):
    """A topic that refuses the batches: every event ends failed, none disappear."""
    topics = {s: topic_prefix + CONTRACTS[s].default_topic for s in ALL_STREAMS}
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap_servers})
    futures = admin.create_topics(
        [
            NewTopic(t, num_partitions=1, replication_factor=1, config={"max.message.bytes": "64"})
            for t in topics.values()
        ]
    )
    for f in futures.values():
        f.result()
    settings = KafkaSettings(bootstrap_servers=kafka_broker.bootstrap_servers, topics=topics)
    events = list(simulate(SimulationOptions(vehicles=1, seed=5, max_events=50)))
    report = send_events(events, settings, flush_timeout=30, show_progress=False)
    assert not report.ok
    assert report.produced == 50
    assert report.failed == 50
    assert report.acknowledged == 0
    assert report.first_error


def test_an_unreachable_broker_is_a_clear_error_within_seconds():
    from scripts.local_broker import free_port

    settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(
        ProducerError, match=r"cannot reach Kafka at 127\.0\.0\.1:\d+ \(KAFKA_BOOTSTRAP_SERVERS\)"
    ):
        send_events(iter(()), settings, connect_timeout=3, show_progress=False)
    # Behaviour, not performance: it must give up instead of hanging.
    assert time.monotonic() - started < 30


def test_missing_topics_are_named_in_the_error(kafka_broker, topic_prefix):
    settings = KafkaSettings(
        bootstrap_servers=kafka_broker.bootstrap_servers,
        topics={s: topic_prefix + "never-created-" + s for s in ALL_STREAMS},
    )
    with pytest.raises(ProducerError, match="topics missing.*scripts.topics create"):
        send_events(iter(()), settings, show_progress=False)


def _cli_env(settings: KafkaSettings) -> dict[str, str]:
    return {**os.environ, **settings.to_env(), "PYTHONPATH": str(REPO_ROOT)}


def test_sigterm_stops_the_cli_cleanly_and_everything_produced_is_flushed(kafka_settings, tmp_path):
    report_file = tmp_path / "report.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "producer.cli",
            "--vehicles",
            "3",
            "--pace",
            "realtime",
            "--speedup",
            "50",
            "--no-progress",
            "--report-json",
            str(report_file),
        ],
        env=_cli_env(kafka_settings),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(6)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped early by SIGTERM" in out
    report = json.loads(report_file.read_text())
    assert report["interrupted_by"] == "SIGTERM"
    assert 0 < report["produced"] == report["acknowledged"]
    assert report["failed"] == 0
    topic = kafka_settings.topic("gps")
    sent = report["topics"][topic]["acknowledged"]
    assert len(consume_all(kafka_settings, topic, sent)) == sent


def test_cli_exits_2_and_names_the_setting_when_a_setting_is_wrong(kafka_settings):
    env = _cli_env(kafka_settings)
    env["SIM_VEHICLES"] = "20000"
    result = subprocess.run(
        [sys.executable, "-m", "producer.cli"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "SIM_VEHICLES" in result.stderr


def test_cli_prints_the_delivery_table_and_exits_0(kafka_settings):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "producer.cli",
            "--vehicles",
            "1",
            "--max-events",
            "500",
            "--no-progress",
        ],
        env=_cli_env(kafka_settings),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    total = [line for line in result.stdout.splitlines() if line.startswith("total")]
    assert total and total[0].split()[1:4] == ["500", "500", "0"]
    # A normal run is quiet: no error lines from the producer or from librdkafka.
    noisy = [line for line in result.stderr.splitlines() if " ERROR " in line or "error:" in line]
    assert noisy == [], result.stderr
    assert "Traceback" not in result.stderr
