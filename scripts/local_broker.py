"""The embedded Kafka broker: a real Apache Kafka 4.x node in KRaft combined mode on loopback.

The jars come from ``local/maven/broker/pom.xml`` (resolved by ``scripts/setup.sh`` into
``.cache/jars/broker``). Storage is formatted on first start only: a broker started again on
the same data directory (after ``stop()`` or a crash) keeps its cluster id, topics and records.
Nothing is downloaded here.

    python -m scripts.local_broker start     # background broker on 127.0.0.1:9092
    python -m scripts.local_broker status
    python -m scripts.local_broker stop

Tests start their own broker on free ports through :class:`EmbeddedKafka`.
The optional OAUTHBEARER listener (``oauth_port``) uses Kafka's built-in unsecured JWT
validator; it exists to prove the producer's token path locally (see ``KAFKA_AUTH_MODE``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from emr_jobs.core.paths import REPO_ROOT

log = logging.getLogger(__name__)

JARS_DIR = REPO_ROOT / ".cache" / "jars" / "broker"
STATE_DIR = REPO_ROOT / "local" / ".broker"
LOG4J_CONFIG = REPO_ROOT / "local" / "broker" / "log4j2.properties"
DEFAULT_HEAP = "512m"


class BrokerError(RuntimeError):
    """The broker could not be started or reached; the message says why and where to look."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def java_binary() -> str:
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home, "bin", "java") if java_home else None
    if candidate and candidate.exists():
        return str(candidate)
    found = shutil.which("java")
    if not found:
        raise BrokerError("Java 17 is required for the embedded broker: no `java` on PATH")
    return found


@dataclass
class EmbeddedKafka:
    """One KRaft node (broker + controller) whose data lives in ``data_dir``."""

    data_dir: Path
    port: int = 9092
    controller_port: int = 0
    oauth_port: int | None = None
    partitions: int = 3
    heap: str = DEFAULT_HEAP
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if not self.controller_port:
            self.controller_port = free_port()

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def oauth_bootstrap_servers(self) -> str:
        if self.oauth_port is None:
            raise BrokerError("this broker was started without an OAUTHBEARER listener")
        return f"127.0.0.1:{self.oauth_port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    def properties(self) -> str:
        listeners = [
            f"PLAINTEXT://127.0.0.1:{self.port}",
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
        ]
        advertised = [f"PLAINTEXT://127.0.0.1:{self.port}"]
        extra: list[str] = []
        if self.oauth_port is not None:
            listeners.append(f"SASL_PLAINTEXT://127.0.0.1:{self.oauth_port}")
            advertised.append(f"SASL_PLAINTEXT://127.0.0.1:{self.oauth_port}")
            extra = [
                "sasl.enabled.mechanisms=OAUTHBEARER",
                # No server callback handler configured: Kafka validates unsecured JWTs itself.
                "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config="
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
                'unsecuredLoginStringClaim_sub="broker";',
            ]
        lines = [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
            "listeners=" + ",".join(listeners),
            "advertised.listeners=" + ",".join(advertised),
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map="
            "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
            f"log.dirs={self.data_dir / 'logs'}",
            f"num.partitions={self.partitions}",
            "auto.create.topics.enable=false",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=3",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            # After a crash the restarted node waits for its previous incarnation's session to
            # expire before it serves clients; the default (9 s) made a restart take ~12 s.
            "broker.session.timeout.ms=3000",
            "broker.heartbeat.interval.ms=1000",
            "log.retention.hours=168",
            *extra,
        ]
        return "\n".join(lines) + "\n"

    def _classpath(self) -> str:
        if not JARS_DIR.is_dir() or not any(JARS_DIR.glob("kafka_2.13-*.jar")):
            raise BrokerError(
                f"broker jars are missing in {JARS_DIR}; run `make setup` (or scripts/setup.sh)"
            )
        return str(JARS_DIR / "*")

    def _java(self, main: str, *args: str, stdout: object = subprocess.PIPE) -> list[str]:
        return [
            java_binary(),
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            self._classpath(),
            main,
            *args,
        ]

    def start(self, timeout: float = 60.0) -> EmbeddedKafka:
        for port in (self.port, self.controller_port, self.oauth_port):
            if port is not None and port_open(port):
                raise BrokerError(f"port {port} on 127.0.0.1 is already in use")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "server.properties"
        config.write_text(self.properties(), encoding="utf-8")
        if self.stored_cluster_id is None:  # first start: format; later starts reuse the storage
            new_id = cluster_id()
            fmt = subprocess.run(
                self._java("kafka.tools.StorageTool", "format", "-t", new_id, "-c", str(config)),
                capture_output=True,
                text=True,
                check=False,
            )
            if fmt.returncode != 0:
                raise BrokerError(
                    f"formatting the broker storage failed:\n{fmt.stdout}{fmt.stderr}"
                )
        with open(self.log_file, "ab") as out:
            self.process = subprocess.Popen(
                self._java("kafka.Kafka", str(config)),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise BrokerError(
                    f"the broker exited with code {self.process.returncode}; "
                    f"last lines of {self.log_file}:\n{self.tail()}"
                )
            if port_open(self.port):
                try:
                    AdminClient({"bootstrap.servers": self.bootstrap_servers}).list_topics(
                        timeout=2
                    )
                    return
                except Exception:  # noqa: BLE001 - not ready yet; keep polling until the deadline
                    pass
            time.sleep(0.3)
        self.stop()
        raise BrokerError(f"the broker was not ready after {timeout:.0f}s; see {self.log_file}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None:
            return
        _terminate(self.process.pid, timeout, self.process)
        self.process = None

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would: no clean shutdown, nothing flushed by Kafka.

        ``start()`` on the same object (same data directory and ports) brings it back.
        """
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    @property
    def stored_cluster_id(self) -> str | None:
        """The cluster id written when the storage was formatted (None before the first start)."""
        meta = self.data_dir / "logs" / "meta.properties"
        if not meta.exists():
            return None
        for line in meta.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "cluster.id":
                return value.strip()
        return None

    def __enter__(self) -> EmbeddedKafka:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, base64url without padding, as Kafka makes them.

    Like Kafka's ``Uuid.randomUuid()``, never one that starts with ``-``: the storage tool would
    read it as an option.
    """
    import base64

    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not candidate.startswith("-"):
            return candidate


def _terminate(pid: int, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None:
            if process.poll() is not None:
                return
        elif not _alive(pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    if process is not None:
        process.wait(5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not alive for our purposes.
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split()[2]
        return status != "Z"
    except (FileNotFoundError, IndexError):
        return True


# --- the operator command: a background broker that outlives this process ---------------------

PID_FILE = STATE_DIR / "broker.pid"


def cmd_start(port: int) -> int:
    if PID_FILE.exists() and _alive(int(PID_FILE.read_text())):
        print(f"broker already running (pid {PID_FILE.read_text().strip()}) on 127.0.0.1:{port}")
        return 0
    broker = EmbeddedKafka(STATE_DIR / "data", port=port)
    broker.start()
    assert broker.process is not None
    PID_FILE.write_text(str(broker.process.pid))
    # Detach: the broker keeps running after this command exits.
    broker.process = None
    print(f"broker started on {broker.bootstrap_servers} (log: {broker.log_file})")
    return 0


def cmd_stop() -> int:
    if not PID_FILE.exists():
        print("broker not running")
        return 0
    pid = int(PID_FILE.read_text())
    _terminate(pid, 20.0)
    PID_FILE.unlink(missing_ok=True)
    print(f"broker stopped (pid {pid})")
    return 0


def cmd_status() -> int:
    if PID_FILE.exists() and _alive(int(PID_FILE.read_text())):
        print(f"broker running (pid {PID_FILE.read_text().strip()})")
        return 0
    print("broker not running")
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.local_broker", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--port", type=int, default=9092, help="PLAINTEXT port (default 9092)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        if args.command == "start":
            return cmd_start(args.port)
        if args.command == "stop":
            return cmd_stop()
        return cmd_status()
    except BrokerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
