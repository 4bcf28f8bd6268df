"""End-to-end latency: from an event's creation to its row being committed to the lake.

One continuous run of the real job (default trigger, ``JobSettings.trigger_interval``) reads
fresh topics while the producer (``send_events``) sends at fixed rates:

1. warm-up at a low rate until every query has committed a batch with rows (JVM, code
   generation and the Kafka consumers are then warm); these rows are not measured;
2. each phase sends at its rate for a fixed time, then waits until the job has committed
   everything (or the drain timeout passes), so phases do not leak into each other.

Creation time is the Kafka record timestamp (set by the producer client when ``produce()`` is
called, kept in the lake as ``kafkaTimestamp``). Commit time is the mtime of the file sink's
``_spark_metadata/<batch>`` entry that first lists the row's file: the moment readers can see
it. Rows still missing at the end count as infinitely late, so they can only raise a
percentile.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow.parquet as pq

from emr_jobs.contracts import LAKE, STREAMS
from emr_jobs.kafka_options import KafkaSettings
from emr_jobs.settings import JobSettings, duration_seconds
from producer.kafka_producer import send_events
from producer.simulator import Event
from scripts.bench import spark_profile
from scripts.bench.job_rate import JobProcess, checkpoint_batches, committed_rows
from scripts.bench.producer_rate import fleet_events
from scripts.bench.stats import percentile

WARM_STREAMS = ("vehicle", "gps", "weather")  # streams that always have rows within seconds


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


def _paced(job: JobProcess, lake_dir: Path, phases: Sequence[Phase], *, warm_rate: float,
           warm_timeout: float, drain_timeout: float) -> Iterator[Event]:
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
        done = {(b.stream, b.area) for b in checkpoint_batches(lake_dir)
                if b.end is not None and b.rows > 0}
        return all((s, a) in done for s in WARM_STREAMS for a in ("data", "quarantine"))

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
            done = committed_rows(lake_dir)
            if all(done[s] >= sent[s] for s in STREAMS):
                phase.drain_seconds = time.time() - phase.end
                break
            time.sleep(0.25)


def _local(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


def commit_times(table_dir: Path) -> dict[Path, float]:
    """Each committed file of a file-sink table -> when its batch was committed (epoch s)."""
    log_dir = table_dir / "_spark_metadata"
    if not log_dir.is_dir():
        return {}
    entries: dict[int, Path] = {}
    for p in log_dir.iterdir():
        batch = p.name.removesuffix(".compact")
        if batch.isdigit() and (p.name.endswith(".compact") or int(batch) not in entries):
            entries[int(batch)] = p
    times: dict[Path, float] = {}
    for batch in sorted(entries):
        entry = entries[batch]
        mtime = entry.stat().st_mtime
        for line in entry.read_text(encoding="utf-8").splitlines()[1:]:
            if line.strip():
                doc = json.loads(line)
                path = _local(doc["path"])
                if doc.get("action", "add") == "add" and path not in times:
                    times[path] = mtime  # a compact entry repeats earlier batches' files
    return times


def row_latencies(lake_dir: Path, phases: Sequence[Phase]) -> list[list[float]]:
    """Per phase, the latency (s) of every row created during it; inf for rows not committed."""
    found: list[list[float]] = [[] for _ in phases]
    for stream in STREAMS:
        for path, committed in commit_times(lake_dir / LAKE.data_prefix / stream).items():
            column = pq.read_table(path, columns=["kafkaTimestamp"]).column("kafkaTimestamp")
            created = column.to_numpy().astype("datetime64[us]").astype("int64") / 1e6
            for ts in created:
                for i, phase in enumerate(phases):
                    if phase.start - 0.01 <= ts <= phase.end + 0.01:
                        found[i].append(committed - float(ts))
                        break
    for i, phase in enumerate(phases):
        found[i].extend([math.inf] * max(0, phase.sent - len(found[i])))
    return found


def run_latency(settings: KafkaSettings, lake_dir: Path, log_dir: Path, rates: Sequence[float],
                phase_seconds: float, *, warm_rate: float = 200.0, warm_timeout: float = 180.0,
                drain_timeout: float = 60.0) -> dict:
    """Latency percentiles per rate, with the job's batches during the run."""
    trigger = duration_seconds(JobSettings().trigger_interval)
    phases = [Phase(rate, phase_seconds) for rate in rates]
    job = JobProcess(settings, lake_dir, log_dir).start()
    try:
        report = send_events(
            _paced(job, lake_dir, phases, warm_rate=warm_rate, warm_timeout=warm_timeout,
                   drain_timeout=drain_timeout),
            settings, show_progress=False,
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
    out = {"trigger_seconds": trigger, "phases": {}, "driver_peak_rss": peaks,
           "job_stopped_cleanly": stopped_cleanly,
           "profile": {**spark_profile.profile(job.event_log_dir),
                       "process_cpu_s": job.cpu, "jvm_threads_cpu_s": job.jvm_threads,
                       "wall_s": time.time() - job.started},
           "batches": [vars(b) for b in checkpoint_batches(lake_dir)]}
    for phase, lat in zip(phases, per_phase, strict=True):
        committed = [x for x in lat if math.isfinite(x)]

        def pct(q: float, lat: list[float] = lat) -> float | None:
            value = percentile(lat, q)
            return None if value is None or math.isinf(value) else value  # None: not reached

        span = phase.end - phase.start
        out["phases"][str(int(phase.rate))] = {
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
        }
    return out
