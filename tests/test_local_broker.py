"""The embedded broker's own commands and its start-up details."""

from __future__ import annotations

import subprocess
import sys

import pytest

from emr_jobs.settings import REPO_ROOT
from scripts.local_broker import BrokerError, EmbeddedKafka, cluster_id, free_port


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
            [sys.executable, "-c", code, *args], cwd=REPO_ROOT, capture_output=True, text=True,
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
