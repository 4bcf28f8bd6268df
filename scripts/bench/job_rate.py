"""Job throughput: the streaming job draining a backlog, against a batch job on the same events.

How the job is timed. The job runs unchanged (``scripts.run_job.spark_submit_command``,
``--available-now``) and is timed from its own checkpoint, which is its progress record: for
every query and batch, ``offsets/<N>`` holds the batch's trigger time (``batchTimestampMs``) and
the Kafka offsets it reads up to, and ``commits/<N>`` is written when the batch has committed its
files. So a batch starts at ``batchTimestampMs``, ends at the ``commits/<N>`` file's mtime and
holds the offset difference to batch N-1 in rows. The drain time runs from the first batch start
of any query to the last commit of a batch that read rows; JVM start-up, session creation and
query start-up come before it and are reported apart. The batch ceiling is timed the same way,
inside its own fresh JVM, from before the first read to after the last write.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from emr_jobs.contracts import CONTRACTS, LAKE, STREAMS
from emr_jobs.kafka_options import KafkaSettings
from emr_jobs.settings import REPO_ROOT
from producer.kafka_producer import send_events
from producer.simulator import Event
from producer.wire import to_json_bytes
from scripts.bench import spark_profile
from scripts.bench.memory import TreeSampler
from scripts.bench.producer_rate import fleet_events
from scripts.run_job import job_environment, spark_submit_command


@dataclass(frozen=True)
class Batch:
    """One micro-batch of one query, from the query's checkpoint."""

    stream: str
    area: str  # data | quarantine
    batch_id: int
    start: float  # epoch seconds: the batch's trigger time
    end: float | None  # epoch seconds: commits/<N> written; None while running
    rows: int  # Kafka records the batch read

    @property
    def seconds(self) -> float | None:
        return None if self.end is None else self.end - self.start


def _offsets(path: Path) -> tuple[int, int]:
    """(trigger time in ms, sum of the source's end offsets) of an ``offsets/<N>`` entry."""
    lines = path.read_text(encoding="utf-8").splitlines()
    meta = json.loads(lines[1])
    total = 0
    for line in lines[2:]:
        if line.strip() and line.strip() != "-":
            for partitions in json.loads(line).values():
                total += sum(int(v) for v in partitions.values())
    return int(meta["batchTimestampMs"]), total


def checkpoint_batches(
    lake_dir: Path, areas: Sequence[str] = ("data", "quarantine")
) -> list[Batch]:
    """Every batch of every query under ``<lake>/checkpoints``, oldest first per query. The
    topics were empty before the benchmark, so batch 0 starts at offset 0."""
    batches = []
    for stream in STREAMS:
        for area in areas:
            root = lake_dir / LAKE.checkpoints_prefix / stream / area
            offsets_dir, commits_dir = root / "offsets", root / "commits"
            if not offsets_dir.is_dir():
                continue
            previous = 0
            ids = sorted(int(p.name) for p in offsets_dir.iterdir() if p.name.isdigit())
            for batch_id in ids:
                try:
                    start_ms, total = _offsets(offsets_dir / str(batch_id))
                except (OSError, ValueError, IndexError, KeyError):
                    break  # being written right now
                commit = commits_dir / str(batch_id)
                end = commit.stat().st_mtime if commit.exists() else None
                rows = total - previous
                batches.append(Batch(stream, area, batch_id, start_ms / 1000, end, rows))
                previous = total
    return batches


def committed_rows(lake_dir: Path, area: str = "data") -> dict[str, int]:
    """Kafka records each stream's ``area`` query has committed so far."""
    done: dict[str, int] = dict.fromkeys(STREAMS, 0)
    for b in checkpoint_batches(lake_dir, (area,)):
        if b.end is not None:
            done[b.stream] += b.rows
    return done


@dataclass
class Drain:
    rows: int  # events read by the data queries (each event once)
    seconds: float  # first batch start -> last commit of a batch with rows
    all_seconds: float  # first batch start -> last commit of any batch (no-data batches too)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def drain_of(batches: Sequence[Batch]) -> Drain:
    done = [b for b in batches if b.end is not None]
    if not done:
        return Drain(0, 0.0, 0.0)
    start = min(b.start for b in done)
    with_rows = [b for b in done if b.rows > 0] or done
    return Drain(
        rows=sum(b.rows for b in done if b.area == LAKE.data_prefix),
        seconds=max(b.end for b in with_rows) - start,
        all_seconds=max(b.end for b in done) - start,
    )


# --- backlog ------------------------------------------------------------------------------


def _tee_json_lines(events: Iterable[Event], json_dir: Path) -> Iterator[Event]:
    """Pass events through and append each payload's wire bytes to ``<stream>.jsonl``."""
    json_dir.mkdir(parents=True, exist_ok=True)
    files = {s: open(json_dir / f"{s}.jsonl", "wb") for s in STREAMS}  # noqa: SIM115
    try:
        for event in events:
            files[event.stream].write(to_json_bytes(event.payload) + b"\n")
            yield event
    finally:
        for f in files.values():
            f.close()


def fill_backlog(settings: KafkaSettings, vehicles: int, count: int,
                 json_dir: Path | None = None) -> dict[str, int]:
    """Produce ``count`` events of a ``vehicles`` fleet; optionally dump them as JSON lines too.
    Returns events per stream."""
    events: Iterable[Event] = fleet_events(vehicles, count)
    if json_dir is not None:
        events = _tee_json_lines(events, json_dir)
    report = send_events(events, settings, show_progress=False)
    if not report.ok:
        raise RuntimeError(f"backlog: {report.failed} events not delivered ({report.first_error})")
    return {s: report.counts(settings.topic(s)).acknowledged for s in STREAMS}


# --- the streaming job --------------------------------------------------------------------


def job_env(settings: KafkaSettings, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = job_environment()
    env["KAFKA_BOOTSTRAP_SERVERS"] = settings.bootstrap_servers
    for s in STREAMS:
        env[CONTRACTS[s].topic_env] = settings.topic(s)
    env.update(extra or {})
    return env


@dataclass
class JobProcess:
    """The real job (spark-submit, local master) started in its own process group."""

    settings: KafkaSettings
    lake_dir: Path
    log_dir: Path
    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    conf: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    sampler: TreeSampler | None = None
    started: float = 0.0  # epoch seconds

    @property
    def event_log_dir(self) -> Path:
        return self.log_dir / "eventlog"

    def start(self) -> JobProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        conf = {**spark_profile.event_log_conf(self.event_log_dir), **self.conf}
        command = spark_submit_command(
            ["--lake-uri", self.lake_dir.resolve().as_uri(), *self.args], conf=conf
        )
        self.started = time.time()
        self._out = open(self.log_dir / "job.stdout", "w")  # noqa: SIM115
        self._err = open(self.log_dir / "job.stderr", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            command, env=job_env(self.settings, self.env), cwd=REPO_ROOT, stdout=self._out,
            stderr=self._err, start_new_session=True,
        )
        self.sampler = TreeSampler(self.process.pid)
        self.sampler.start()
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_idle(self, timeout: float, quiet: float = 3.0) -> bool:
        """Wait until every query has committed every batch it started, ``quiet`` seconds ago."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running():
            batches = checkpoint_batches(self.lake_dir)
            ends = [b.end for b in batches]
            if batches and None not in ends and time.time() - max(ends) >= quiet:
                return True
            time.sleep(0.5)
        return False

    def stop(self, grace: float = 60.0) -> bool:
        """Ask the job's Python driver to stop (its SIGTERM handler stops the queries and prints
        the summary); kill the process group if it has not exited after ``grace`` seconds.
        Returns whether it stopped by itself."""
        if not self.running():
            return True
        assert self.process is not None
        try:
            drivers = [p for p in psutil.Process(self.process.pid).children(recursive=True)
                       if any(a.endswith("job.py") for a in p.cmdline())]
        except psutil.Error:
            drivers = []
        for p in drivers:
            with contextlib.suppress(psutil.Error):
                p.send_signal(signal.SIGTERM)
        try:
            self.process.wait(grace)
            return True
        except subprocess.TimeoutExpired:
            self.kill()
            return False

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"the job did not finish within {timeout:.0f}s; "
                               f"see {self.log_dir / 'job.stderr'}") from None

    def kill(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(15)
                return
            except subprocess.TimeoutExpired:
                continue

    def close(self) -> dict[str, int]:
        """Kill whatever is left, close the logs; returns the peak RSS per role."""
        self.kill()
        peaks = self.sampler.stop() if self.sampler else {}
        self.cpu = self.sampler.cpu_by_role() if self.sampler else {}
        self.jvm_threads = self.sampler.jvm_threads() if self.sampler else {}
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f is not None:
                f.close()
        return peaks

    def summary(self) -> dict:
        text = (self.log_dir / "job.stdout").read_text(errors="replace")
        for line in text.splitlines():
            if line.startswith("JOB_SUMMARY "):
                return json.loads(line.removeprefix("JOB_SUMMARY "))
        return {}

    def stderr_tail(self, chars: int = 3000) -> str:
        return (self.log_dir / "job.stderr").read_text(errors="replace")[-chars:]


@dataclass
class JobRun:
    wall_seconds: float
    startup_seconds: float  # process start -> first batch start
    drain: Drain
    batches: list[Batch]
    peak_rss: dict[str, int]
    summary: dict
    profile: dict
    process_cpu_s: dict[str, float]  # CPU the JVM and the Python driver used, whole run
    jvm_threads_cpu_s: dict[str, float]  # the JVM's CPU by thread group


def run_available_now(settings: KafkaSettings, lake_dir: Path, log_dir: Path, *,
                      expected_rows: int, env: Mapping[str, str] | None = None,
                      conf: Mapping[str, str] | None = None, timeout: float = 900) -> JobRun:
    """The job with ``--available-now`` over the backlog in ``settings``' topics."""
    job = JobProcess(settings, lake_dir, log_dir, ["--available-now"], env or {}, conf or {})
    job.start()
    try:
        code = job.wait(timeout)
        wall = time.time() - job.started
    finally:
        peaks = job.close()
    if code != 0:
        raise RuntimeError(f"the job failed (exit {code}):\n{job.stderr_tail()}")
    batches = checkpoint_batches(lake_dir)
    drain = drain_of(batches)
    if drain.rows != expected_rows:
        raise RuntimeError(f"the job read {drain.rows} rows, expected {expected_rows}")
    first = min(b.start for b in batches)
    return JobRun(wall, first - job.started, drain, batches, peaks, job.summary(),
                  spark_profile.profile(job.event_log_dir), job.cpu, job.jvm_threads)


# --- the batch ceiling --------------------------------------------------------------------


def run_batch_ceiling(json_dir: Path, out_dir: Path, timeout: float = 900) -> dict:
    """``scripts.bench.batch_ceiling`` in a fresh JVM; returns its timing document with the
    Spark profile of its tasks under ``profile``."""
    env = job_environment()
    event_log = out_dir.parent / f"{out_dir.name}-eventlog"
    event_log.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "scripts.bench.batch_ceiling", "--input", str(json_dir),
         "--output", str(out_dir), "--event-log", str(event_log)],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False,
    )
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_BATCH "):
            doc = json.loads(line.removeprefix("BENCH_BATCH "))
            doc["profile"] = spark_profile.profile(event_log)
            return doc
    raise RuntimeError(f"batch ceiling failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
