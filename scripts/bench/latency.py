"""End-to-end latency: from an event's creation to its row being committed to the lake.

One continuous run of the real job (default trigger, ``JobSettings.trigger_interval``) reads
fresh topics while the producer (``send_events``) sends at fixed rates:

1. warm-up at a low rate until the job has committed ``WARM_BATCHES`` batches with rows of the
   busy streams (JVM, code generation, the Kafka consumer and the exactly-once guard's first
   look at the tables are then behind it); these rows are not measured;
2. each phase sends at its rate for a fixed time, then waits until the job has committed
   everything (or the drain timeout passes), so phases do not leak into each other.

Creation time is the Kafka record timestamp (set by the producer client when ``produce()`` is
called, kept in the lake as ``kafkaTimestamp``). Commit time is the commit time of the Iceberg
snapshot that added the row's data file, read through the catalog (pyiceberg: the table's
manifest entries name the snapshot that added each file): the moment readers can see the row.
Rows still missing at the end count as infinitely late, so they can only raise a percentile.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow.parquet as pq

from emr_jobs.core.contracts import LAKE, STREAMS
from emr_jobs.core.kafka import KafkaSettings
from emr_jobs.core.settings import duration_seconds
from emr_jobs.settings import JobSettings
from producer.kafka_producer import send_events
from producer.simulator import Event
from scripts.bench.job_rate import (
    JobProcess,
    checkpoint_batches,
    commit_steps,
    committed_rows,
    lake_settings,
    step_summary,
    table_commits,
)
from scripts.bench.producer_rate import fleet_events
from scripts.bench.stats import figure, percentile

WARM_STREAMS = ("vehicle", "gps", "weather")  # streams that always have rows within seconds
WARM_BATCHES = 2


@dataclass
class Phase:
    rate: float  # events per second
    seconds: float
    start: float = 0.0  # epoch seconds of the first and last send
    end: float = 0.0
    sent: int = 0
    drain_seconds: float | None = None  # from the last send until everything was committed


class JobDied(RuntimeError):
    pass


def _paced(
    job: JobProcess,
    settings: KafkaSettings,
    lake_dir: Path,
    phases: Sequence[Phase],
    *,
    warm_rate: float,
    warm_timeout: float,
    drain_timeout: float,
) -> Iterator[Event]:
    """The events for ``send_events``: warm-up, then each phase at its rate, then its drain."""
    source = fleet_events(1000, 10**9)
    sent = dict.fromkeys(STREAMS, 0)

    def emit(rate: float, seconds: float, until=None) -> Iterator[Event]:
        began = time.monotonic()
        n = 0
        while True:
            elapsed = time.monotonic() - began
            if elapsed >= seconds or (until is not None and until()):
                return
            due = int(elapsed * rate)
            while n < due:
                event = next(source)
                sent[event.stream] += 1
                n += 1
                yield event
            time.sleep(0.002)

    def warm() -> bool:
        if not job.running():
            raise JobDied("the job stopped during the warm-up")
        done = [
            b
            for b in checkpoint_batches(lake_dir, settings)
            if b.end is not None and all(b.by_stream.get(s, 0) > 0 for s in WARM_STREAMS)
        ]
        return len(done) >= WARM_BATCHES

    checked = [time.monotonic()]

    def warm_throttled() -> bool:
        if time.monotonic() - checked[0] < 0.5:
            return False
        checked[0] = time.monotonic()
        return warm()

    yield from emit(warm_rate, warm_timeout, until=warm_throttled)
    if not warm():
        raise RuntimeError(f"the job was not warm after {warm_timeout:.0f}s")
    for phase in phases:
        phase.start = time.time()
        before = sum(sent.values())
        yield from emit(phase.rate, phase.seconds)
        phase.end = time.time()
        phase.sent = sum(sent.values()) - before
        deadline = time.monotonic() + drain_timeout
        while time.monotonic() < deadline:
            if not job.running():
                raise JobDied("the job stopped during a phase")
            done = committed_rows(lake_dir, settings)
            if all(done[s] >= sent[s] for s in STREAMS):
                phase.drain_seconds = time.time() - phase.end
                break
            time.sleep(0.25)


def _local(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


def commit_times(table) -> dict[str, float]:
    """Each data file of a pyiceberg table -> commit time (epoch s) of the snapshot that added
    it. The job only appends, so every live file's entry names the snapshot that added it."""
    committed = {snap.snapshot_id: snap.timestamp_ms / 1000 for snap in table.snapshots()}
    if table.current_snapshot() is None:
        return {}
    entries = table.inspect.entries().select(["snapshot_id", "data_file"]).to_pylist()
    return {e["data_file"]["file_path"]: committed[e["snapshot_id"]] for e in entries}


def row_latencies(lake_dir: Path, phases: Sequence[Phase]) -> list[list[float]]:
    """Per phase, the latency (s) of every row created during it; inf for rows not committed."""
    from scripts.lake import catalog

    job = lake_settings(lake_dir)
    cat = catalog(job)
    found: list[list[float]] = [[] for _ in phases]
    for stream in STREAMS:
        table = cat.load_table((job.database, LAKE.data_table(stream)))
        for path, committed in commit_times(table).items():
            column = pq.read_table(_local(path), columns=["kafkaTimestamp"]).column(
                "kafkaTimestamp"
            )
            created = column.to_numpy().astype("datetime64[us]").astype("int64") / 1e6
            for ts in created:
                for i, phase in enumerate(phases):
                    if phase.start - 0.01 <= ts <= phase.end + 0.01:
                        found[i].append(committed - float(ts))
                        break
    for i, phase in enumerate(phases):
        found[i].extend([math.inf] * max(0, phase.sent - len(found[i])))
    return found


def run_latency(
    settings: KafkaSettings,
    lake_dir: Path,
    log_dir: Path,
    rates: Sequence[float],
    phase_seconds: float,
    *,
    warm_rate: float = 200.0,
    warm_timeout: float = 180.0,
    drain_timeout: float = 60.0,
    conf: Mapping[str, str] | None = None,
) -> dict:
    """Latency percentiles per rate, with the job's batches during the run."""
    trigger = duration_seconds(JobSettings().trigger_interval)
    phases = [Phase(rate, phase_seconds) for rate in rates]
    job = JobProcess(settings, lake_dir, log_dir, conf=conf or {}).start()
    try:
        report = send_events(
            _paced(
                job,
                settings,
                lake_dir,
                phases,
                warm_rate=warm_rate,
                warm_timeout=warm_timeout,
                drain_timeout=drain_timeout,
            ),
            settings,
            show_progress=False,
        )
        if not report.ok:
            raise RuntimeError(f"{report.failed} events were not delivered ({report.first_error})")
        # Stop between batches: the last phase's quarantine and no-data batches may still run.
        job.wait_idle(drain_timeout, quiet=1.0)
        stopped_cleanly = job.stop()
    except JobDied as err:
        raise RuntimeError(f"{err}:\n{job.stderr_tail()}") from None
    finally:
        peaks = job.close()
    per_phase = row_latencies(lake_dir, phases)
    batches = checkpoint_batches(lake_dir, settings)
    commits = table_commits(lake_dir)
    phase_figures: dict[str, dict[str, object]] = {}
    out = {
        "trigger_seconds": trigger,
        "phases": phase_figures,
        "driver_peak_rss": peaks,
        "job_stopped_cleanly": stopped_cleanly,
        "profile": {
            **job.profile(),
            "process_cpu_s": job.cpu,
            "jvm_threads_cpu_s": job.jvm_threads,
            "wall_s": time.time() - job.started,
        },
        "batches": [{**vars(b), "seconds": b.seconds} for b in batches],
    }
    for phase, lat in zip(phases, per_phase, strict=True):
        committed = [x for x in lat if math.isfinite(x)]

        def pct(q: float, lat: list[float] = lat) -> float | None:
            value = percentile(lat, q)
            return None if value is None or math.isinf(value) else value  # None: not reached

        span = phase.end - phase.start
        # The batches that started while the phase was sending, and where their time went.
        drained = phase.end + (
            drain_timeout if phase.drain_seconds is None else phase.drain_seconds
        )
        held = [
            b
            for b in batches
            if b.end is not None and b.rows > 0 and phase.start <= b.end and b.start <= drained
        ]
        phase_figures[str(int(phase.rate))] = {
            "rate": phase.rate,
            "achieved_rate": phase.sent / span if span > 0 else 0.0,
            "seconds": phase.seconds,
            "rows": len(lat),
            "not_committed": len(lat) - len(committed),
            "drain_seconds": phase.drain_seconds,
            "p50": pct(50),
            "p95": pct(95),
            "p99": pct(99),
            "max_committed": max(committed) if committed else None,
            "batches": len(held),
            "batch_rows": figure([b.rows for b in held], "rows"),
            "batch_seconds": figure([b.seconds for b in held], "s"),
            "steps": step_summary(commit_steps(held, commits)),
        }
    return out
