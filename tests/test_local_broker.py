"""The embedded broker's own commands and its start-up details."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from emr_jobs.core.paths import REPO_ROOT
from scripts.local_broker import BrokerError, EmbeddedKafka, cluster_id, free_port, port_open


def test_cluster_ids_never_start_with_a_dash_that_the_storage_tool_would_read_as_an_option():
    ids = [cluster_id() for _ in range(5000)]
    assert not any(i.startswith("-") for i in ids)
    assert all(len(i) == 22 for i in ids)
    assert len(set(ids)) == len(ids)


def test_properties_describe_one_kraft_node_on_loopback_without_auto_created_topics(tmp_path):
    broker = EmbeddedKafka(tmp_path, port=19092, controller_port=19093)
    props = dict(
        line.split("=", 1) for line in broker.properties().splitlines() if line and "=" in line
    )
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["auto.create.topics.enable"] == "false"
    assert "sasl.enabled.mechanisms" not in props


def test_a_port_in_use_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BrokerError, match=f"port {port}"):
            EmbeddedKafka(tmp_path, port=port).start()


@pytest.mark.integration
def test_the_operator_command_starts_reports_and_stops_a_background_broker(tmp_path, monkeypatch):
    """`python -m scripts.local_broker start|status|stop` on a private state folder."""
    code = (
        "import sys, scripts.local_broker as lb;"
        f"lb.STATE_DIR = __import__('pathlib').Path({str(tmp_path)!r});"
        "lb.PID_FILE = lb.STATE_DIR / 'broker.pid';"
        "sys.exit(lb.main(sys.argv[1:]))"
    )
    port = str(free_port())

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    started = run("start", "--port", port)
    assert started.returncode == 0, started.stderr
    try:
        assert f"127.0.0.1:{port}" in started.stdout
        assert run("status").returncode == 0
        again = run("start", "--port", port)
        assert "already running" in again.stdout
    finally:
        stopped = run("stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert run("status").returncode == 1


def test_properties_shorten_the_session_a_restarted_node_waits_out(tmp_path):
    props = dict(
        line.split("=", 1)
        for line in EmbeddedKafka(tmp_path, port=19092, controller_port=19093)
        .properties()
        .splitlines()
        if "=" in line
    )
    assert int(props["broker.heartbeat.interval.ms"]) < int(props["broker.session.timeout.ms"])
    assert int(props["broker.session.timeout.ms"]) <= 3000


def test_no_cluster_id_before_the_first_start(tmp_path):
    assert EmbeddedKafka(tmp_path, port=19092, controller_port=19093).stored_cluster_id is None


@pytest.mark.integration
def test_a_crashed_broker_restarts_on_its_data_dir_with_the_same_cluster_and_records(tmp_path):
    """Storage is formatted once: after SIGKILL, start() on the same directory and port brings
    back the same cluster id, the topic and its records; a new EmbeddedKafka on that directory
    (another controller port) does too."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    broker = EmbeddedKafka(tmp_path / "data", port=free_port())
    broker.start()
    try:
        cluster = broker.stored_cluster_id
        assert cluster and len(cluster) == 22
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        admin.create_topics([NewTopic("kept", num_partitions=1, replication_factor=1)])[
            "kept"
        ].result(timeout=30)
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "acks": "all"})
        for i in range(10):
            producer.produce("kept", value=str(i).encode())
        assert producer.flush(30) == 0

        broker.kill()
        assert not port_open(broker.port)
        started = time.monotonic()
        broker.start()
        restart_seconds = time.monotonic() - started
        assert broker.stored_cluster_id == cluster
        assert read_values(broker.bootstrap_servers, "kept", 10) == [str(i) for i in range(10)]
        # The node re-registers quickly (broker.session.timeout.ms), not after ~12 s.
        assert restart_seconds < 30
        broker.stop()

        again = EmbeddedKafka(tmp_path / "data", port=broker.port)
        with again:
            assert again.stored_cluster_id == cluster
            assert read_values(again.bootstrap_servers, "kept", 10) == [str(i) for i in range(10)]
    finally:
        broker.stop()


def read_values(bootstrap_servers: str, topic: str, expected: int) -> list[str]:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"read-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    values: list[str] = []
    deadline = time.monotonic() + 30
    while len(values) < expected and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            values.append(msg.value().decode())
    consumer.close()
    return values
