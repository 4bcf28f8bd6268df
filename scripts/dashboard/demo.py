"""``--demo``: the whole pipeline in real time beside the dashboard, on this machine.

1. an embedded Kafka broker (``scripts.local_broker``) on a free loopback port, fresh storage;
2. the seven topics (``scripts.topics``);
3. the streaming job, continuously (``python -m scripts.run_job``), into a fresh lake, so
   alerts and road conditions flow and the health panel has a checkpoint and a lake to read;
4. the producer at real-time pace (``python -m producer.cli --pace realtime``), its simulated
   clock starting now, so event time is wall time.

Everything lives under ``.cache/dashboard-demo/run-<time>/`` (the previous run's is removed);
the producer's and the job's output go to log files there. Every process is stopped when the
demo stops, also on Ctrl-C or an error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from emr_jobs.core.kafka import KafkaSettings
from emr_jobs.core.paths import REPO_ROOT
from emr_jobs.settings import JobSettings
from scripts.local_broker import EmbeddedKafka, free_port
from scripts.run_job import job_environment, spark_submit_command
from scripts.topics import TopicSpec, ensure_topics

log = logging.getLogger("dashboard.demo")

DEMO_DIR = REPO_ROOT / ".cache" / "dashboard-demo"


def producer_command(
    vehicles: int, *, speedup: float = 1.0, seed: int = 42, start: datetime | None = None
) -> list[str]:
    """The real producer at real-time pace, its simulated clock starting at ``start`` (now)."""
    start = start or datetime.now(UTC)
    return [
        sys.executable,
        "-m",
        "producer.cli",
        "--vehicles",
        str(vehicles),
        "--seed",
        str(seed),
        "--pace",
        "realtime",
        "--speedup",
        str(speedup),
        "--start-time",
        start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "--no-progress",
    ]


def job_command(lake_uri: str) -> list[str]:
    """The streaming job, continuously, as ``python -m scripts.run_job`` starts it."""
    return spark_submit_command(["--lake-uri", lake_uri])


@dataclass
class Demo:
    """Broker, topics, job and producer; :meth:`start` then :meth:`stop`."""

    vehicles: int = 200
    speedup: float = 1.0
    #: Start the simulated clock this many minutes before now. With ``speedup`` > 1 the
    #: simulation then catches up with the wall clock after ``rewind / (speedup - 1)``
    #: minutes; past that its events run ahead of it (the job quarantines those more than
    #: JOB_MAX_FUTURE ahead). 0: event time is wall time from the start.
    rewind_minutes: float = 0.0
    seed: int = 42
    run_job: bool = True
    trigger_interval: str = "5 seconds"
    folder: Path = DEMO_DIR
    broker: EmbeddedKafka | None = None
    kafka: KafkaSettings | None = None
    job_settings: JobSettings | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    _watch: threading.Thread | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Demo:
        # A folder per run: a previous run's files may still be closing.
        for old in self.folder.glob("run-*"):
            shutil.rmtree(old, ignore_errors=True)
        self.folder = self.folder / f"run-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        self.folder.mkdir(parents=True)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        log.info("demo: starting the embedded Kafka broker (about 10 s)")
        self.broker = EmbeddedKafka(self.folder / "broker", port=free_port()).start()
        # The embedded broker is PLAINTEXT; the topic names are this environment's.
        self.kafka = KafkaSettings.from_env(
            bootstrap_servers=self.broker.bootstrap_servers, auth_mode="none"
        )
        created = ensure_topics(self.kafka, TopicSpec(partitions=3))
        log.info(
            "demo: broker %s ready; topics: %s", self.broker.bootstrap_servers, ", ".join(created)
        )
        lake = self.folder / "lake"
        lake.mkdir()
        self.job_settings = JobSettings(
            lake_uri=lake.as_uri(), trigger_interval=self.trigger_interval
        )
        env = job_environment(self.kafka, self.job_settings)
        env["PYTHONUNBUFFERED"] = "1"
        if self.run_job:
            log.info(
                "demo: starting the streaming job (Spark; its first batch takes about a "
                "minute on 2 cores); log %s",
                self.folder / "job.log",
            )
            self._spawn("job", job_command(self.job_settings.lake_uri), env)
        log.info(
            "demo: starting the producer, %d vehicles at real-time pace (speed-up %g); log %s",
            self.vehicles,
            self.speedup,
            self.folder / "producer.log",
        )
        start = datetime.now(UTC) - timedelta(minutes=self.rewind_minutes)
        self._spawn(
            "producer",
            producer_command(self.vehicles, speedup=self.speedup, seed=self.seed, start=start),
            env,
        )
        self._watch = threading.Thread(target=self._watch_children, daemon=True, name="demo-watch")
        self._watch.start()

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        path = self.folder / f"{name}.log"
        self.logs[name] = path
        with open(path, "ab") as out:
            self.processes[name] = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def _watch_children(self) -> None:
        """Say so once if the producer or the job ends while the demo runs."""
        reported: set[str] = set()
        while not self._stopping.wait(2.0):
            for name, proc in self.processes.items():
                code = proc.poll()
                if code is None or name in reported:
                    continue
                reported.add(name)
                if name == "producer" and code == 0:
                    log.info("demo: the producer finished (every vehicle arrived)")
                else:
                    log.warning(
                        "demo: the %s exited with code %s; last lines of %s:\n%s",
                        name,
                        code,
                        self.logs[name],
                        tail(self.logs[name]),
                    )

    def stop(self) -> None:
        if self._stopping.is_set() and self.broker is None:
            return  # stopped already
        self._stopping.set()
        for name in ("producer", "job"):  # the producer first: the job then sees no new data
            proc = self.processes.get(name)
            if proc is not None and proc.poll() is None:
                log.info("demo: stopping the %s", name)
                stop_process(proc, 30.0)
        if self.broker is not None:
            log.info("demo: stopping the broker")
            self.broker.stop()
            self.broker = None

    def __enter__(self) -> Demo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM to the process group (the job stops after its batch), SIGKILL after ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def wait_for(predicate, timeout: float, every: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False
