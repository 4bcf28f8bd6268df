"""Job throughput: the streaming job draining a backlog, against a batch job on the same events.

How the job is timed. The job runs unchanged (``scripts.run_job.spark_submit_command``,
``--available-now``) and is timed from its own checkpoint, which is its progress record: its one
query's ``offsets/<N>`` holds the batch's trigger time (``batchTimestampMs``) and the Kafka
offsets it reads up to (per topic, so per stream), and ``commits/<N>`` is written when
``foreachBatch`` has returned, i.e. after every table's Iceberg commit. The drain runs from the
first batch's trigger time to the last commit of a batch that read rows; JVM start-up, session
creation, the Kafka check and table creation come before it and are reported apart. The lake's
own record says the same from the other side: each table append is a snapshot tagged with the
batch id, whose commit time (read through the catalog) splits a batch's time by table.

The batch ceiling (``scripts.bench.batch_ceiling``) does the job's parse, validation and
Iceberg appends on the same events in one Spark batch job, in a fresh, warmed JVM.
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

from emr_jobs.core.contracts import LAKE, STREAMS
from emr_jobs.core.kafka import KafkaSettings
from emr_jobs.core.paths import REPO_ROOT
from emr_jobs.settings import AlertSettings, JobSettings
from producer.kafka_producer import send_events
from producer.simulator import Event
from producer.wire import to_json_bytes
from scripts.bench import spark_profile
from scripts.bench.memory import TreeSampler
from scripts.bench.producer_rate import fleet_events
from scripts.run_job import job_environment, spark_submit_command


@dataclass(frozen=True)
class Batch:
    """One micro-batch of the job's query, from its checkpoint."""

    batch_id: int
    start: float  # epoch seconds: the batch's trigger time
    end: float | None  # epoch seconds: commits/<N> written; None while running
    rows: int  # Kafka records the batch read
    by_stream: dict[str, int]  # of which, per stream

    @property
    def seconds(self) -> float | None:
        return None if self.end is None else self.end - self.start


def checkpoint_dir(lake_dir: Path) -> Path:
    return lake_dir / LAKE.checkpoints_prefix / "job"


def _offsets(path: Path) -> tuple[int, dict[str, int]]:
    """(trigger time in ms, end offset summed over partitions per topic) of ``offsets/<N>``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    meta = json.loads(lines[1])
    per_topic: dict[str, int] = {}
    for line in lines[2:]:
        if line.strip() and line.strip() != "-":
            for topic, partitions in json.loads(line).items():
                per_topic[topic] = per_topic.get(topic, 0) + sum(
                    int(v) for v in partitions.values()
                )
    return int(meta["batchTimestampMs"]), per_topic


def checkpoint_batches(lake_dir: Path, settings: KafkaSettings) -> list[Batch]:
    """Every batch of the job's one query under ``<lake>/checkpoints/job``, oldest first. The
    topics were empty before the benchmark, so batch 0 starts at offset 0."""
    root = checkpoint_dir(lake_dir)
    offsets_dir, commits_dir = root / "offsets", root / "commits"
    if not offsets_dir.is_dir():
        return []
    streams = {settings.topic(s): s for s in STREAMS}
    batches = []
    previous: dict[str, int] = {}
    for batch_id in sorted(int(p.name) for p in offsets_dir.iterdir() if p.name.isdigit()):
        try:
            start_ms, per_topic = _offsets(offsets_dir / str(batch_id))
        except (OSError, ValueError, IndexError, KeyError):
            break  # being written right now
        commit = commits_dir / str(batch_id)
        end = commit.stat().st_mtime if commit.exists() else None
        by_stream = {streams.get(t, t): n - previous.get(t, 0) for t, n in per_topic.items()}
        batches.append(Batch(batch_id, start_ms / 1000, end, sum(by_stream.values()), by_stream))
        previous = per_topic
    return batches


def committed_rows(lake_dir: Path, settings: KafkaSettings) -> dict[str, int]:
    """Kafka records of each stream the job has committed so far."""
    done: dict[str, int] = dict.fromkeys(STREAMS, 0)
    for b in checkpoint_batches(lake_dir, settings):
        if b.end is not None:
            for stream, n in b.by_stream.items():
                done[stream] = done.get(stream, 0) + n
    return done


@dataclass
class Drain:
    rows: int  # events the job read
    seconds: float  # first batch start -> last commit of a batch with rows
    all_seconds: float  # first batch start -> last commit of any batch (no-data batches too)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def steady_drain_of(batches: Sequence[Batch]) -> Drain:
    """The drain after the first batch with rows: what a running, warm job sustains (the first
    batch also pays for the JVM's JIT warm-up and the exactly-once guard's first look)."""
    with_rows = [b for b in batches if b.end is not None and b.rows > 0]
    return drain_of(with_rows[1:]) if len(with_rows) > 1 else Drain(0, 0.0, 0.0)


def drain_of(batches: Sequence[Batch]) -> Drain:
    done = [(b, b.end) for b in batches if b.end is not None]  # with their commit times
    if not done:
        return Drain(0, 0.0, 0.0)
    start = min(b.start for b, _ in done)
    with_rows = [(b, end) for b, end in done if b.rows > 0] or done
    return Drain(
        rows=sum(b.rows for b, _ in done),
        seconds=max(end for _, end in with_rows) - start,
        all_seconds=max(end for _, end in done) - start,
    )


# --- the lake's own record: snapshot commit times ------------------------------------------


def lake_settings(lake_dir: Path) -> JobSettings:
    return JobSettings(lake_uri=lake_dir.resolve().as_uri())


def table_commits(lake_dir: Path, streams: Sequence[str] = STREAMS) -> list[dict]:
    """Every append of every table, read through the catalog: table, batch id, commit time
    (epoch s) and rows added."""
    from scripts.lake import snapshots

    job = lake_settings(lake_dir)
    out = []
    for table in LAKE.tables(list(streams)):
        for snap in snapshots(table, job):
            if snap["batch"] is None:
                continue
            out.append(
                {
                    "table": table,
                    "batch": int(snap["batch"]),
                    "committed": snap["committed"].timestamp(),
                    "rows": snap["added_records"],
                }
            )
    return sorted(out, key=lambda c: c["committed"])


def commit_steps(batches: Sequence[Batch], commits: Sequence[dict]) -> list[dict]:
    """Where each batch's time goes, by table: the seconds from the batch's start (or from the
    previous table's commit) to this table's commit, i.e. that table's Spark work plus its
    Iceberg commit; the last step runs from the last commit to the checkpoint's commit."""
    by_batch: dict[int, list[dict]] = {}
    for c in commits:
        by_batch.setdefault(c["batch"], []).append(c)
    steps = []
    for b in batches:
        if b.end is None or b.rows == 0:
            continue
        previous = b.start
        for c in sorted(by_batch.get(b.batch_id, []), key=lambda c: c["committed"]):
            steps.append(
                {
                    "batch": b.batch_id,
                    "step": c["table"],
                    "rows": c["rows"],
                    "seconds": c["committed"] - previous,
                }
            )
            previous = c["committed"]
        steps.append(
            {
                "batch": b.batch_id,
                "step": "after the last commit",
                "rows": 0,
                "seconds": b.end - previous,
            }
        )
    return steps


def step_summary(steps: Sequence[dict]) -> dict[str, dict]:
    """Per step (table): batches, total seconds and rows, summed over batches."""
    out: dict[str, dict] = {}
    for s in steps:
        entry = out.setdefault(s["step"], {"batches": 0, "seconds": 0.0, "rows": 0})
        entry["batches"] += 1
        entry["seconds"] += s["seconds"]
        entry["rows"] += s["rows"]
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["seconds"]))


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


def fill_backlog(
    settings: KafkaSettings, vehicles: int, count: int, json_dir: Path | None = None
) -> dict[str, int]:
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
    """The job's environment for a measurement. The lake sections measure the lake writer
    alone (``ALERTS_ENABLED=false``); the alerts section turns the alert queries on."""
    return {**job_environment(settings, AlertSettings(enabled=False)), **(extra or {})}


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

    @property
    def metrics_dir(self) -> Path:
        return self.log_dir / "metrics"

    def profile(self) -> dict:
        """Spark's own metrics of the run: event log and the code generator's counters."""
        return {
            **spark_profile.profile(self.event_log_dir),
            "codegen": spark_profile.codegen(self.metrics_dir),
        }

    def start(self) -> JobProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        conf = {
            **spark_profile.event_log_conf(self.event_log_dir),
            **spark_profile.metrics_conf(self.metrics_dir),
            **self.conf,
        }
        command = spark_submit_command(
            ["--lake-uri", self.lake_dir.resolve().as_uri(), *self.args], conf=conf
        )
        self.started = time.time()
        self._out = open(self.log_dir / "job.stdout", "w")  # noqa: SIM115
        self._err = open(self.log_dir / "job.stderr", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            command,
            env=job_env(self.settings, self.env),
            cwd=REPO_ROOT,
            stdout=self._out,
            stderr=self._err,
            start_new_session=True,
        )
        self.sampler = TreeSampler(self.process.pid)
        self.sampler.start()
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_idle(self, timeout: float, quiet: float = 3.0) -> bool:
        """Wait until the query has committed every batch it started, ``quiet`` seconds ago."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running():
            batches = checkpoint_batches(self.lake_dir, self.settings)
            ends = [b.end for b in batches if b.end is not None]
            if batches and len(ends) == len(batches) and time.time() - max(ends) >= quiet:
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
            drivers = [
                p
                for p in psutil.Process(self.process.pid).children(recursive=True)
                if any(a.endswith("job.py") for a in p.cmdline())
            ]
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
            raise RuntimeError(
                f"the job did not finish within {timeout:.0f}s; see {self.log_dir / 'job.stderr'}"
            ) from None

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
    commits: list[dict]  # every table append (snapshot) of the run
    peak_rss: dict[str, int]
    summary: dict
    profile: dict
    process_cpu_s: dict[str, float]  # CPU the JVM and the Python driver used, whole run
    jvm_threads_cpu_s: dict[str, float]  # the JVM's CPU by thread group

    @property
    def steps(self) -> dict[str, dict]:
        return step_summary(commit_steps(self.batches, self.commits))


def run_available_now(
    settings: KafkaSettings,
    lake_dir: Path,
    log_dir: Path,
    *,
    expected_rows: int,
    env: Mapping[str, str] | None = None,
    conf: Mapping[str, str] | None = None,
    timeout: float = 1800,
) -> JobRun:
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
    batches = checkpoint_batches(lake_dir, settings)
    drain = drain_of(batches)
    if drain.rows != expected_rows:
        raise RuntimeError(f"the job read {drain.rows} rows, expected {expected_rows}")
    summary = job.summary()
    accounted = sum(
        t.get("written", 0) + t.get("quarantined", 0) + t.get("duplicates", 0)
        for t in summary.values()
    )
    if accounted != expected_rows:
        raise RuntimeError(
            f"the job's summary accounts for {accounted} rows, expected {expected_rows}: {summary}"
        )
    first = min(b.start for b in batches)
    return JobRun(
        wall,
        first - job.started,
        drain,
        batches,
        table_commits(lake_dir),
        peaks,
        summary,
        job.profile(),
        job.cpu,
        job.jvm_threads,
    )


# --- the batch ceiling --------------------------------------------------------------------


def run_batch_ceiling(
    json_dir: Path,
    out_dir: Path,
    *,
    warmup_dir: Path | None = None,
    passes: int = 1,
    timeout: float = 1800,
) -> dict:
    """``scripts.bench.batch_ceiling`` in a fresh JVM (warmed by an untimed pass); returns its
    timing document with the Spark profile of its tasks under ``profile``."""
    env = job_environment()
    event_log = out_dir.parent / f"{out_dir.name}-eventlog"
    event_log.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.bench.batch_ceiling",
            "--input",
            str(json_dir),
            "--lake",
            str(out_dir),
            "--passes",
            str(passes),
            "--event-log",
            str(event_log),
            *(["--warmup-input", str(warmup_dir)] if warmup_dir else []),
        ],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_BATCH "):
            doc = json.loads(line.removeprefix("BENCH_BATCH "))
            doc["profile"] = {
                **spark_profile.profile(event_log),
                "codegen": spark_profile.codegen(event_log.parent / f"{event_log.name}-metrics"),
            }
            return doc
    raise RuntimeError(f"batch ceiling failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
