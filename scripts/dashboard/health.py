"""Pipeline health: events per second, the job's lag, event-time freshness, quarantine rate.

- **Events per second per stream**: the growth of the topic's high watermarks (the sum over its
  partitions) between two polls of the broker, over the last ``RATE_WINDOW_S``. This counts
  what producers wrote, whether or not anybody reads it, and costs one ``ListOffsets`` request.
- **Job lag** (offsets behind latest): high watermark minus the offset the job has processed,
  per partition, summed per stream. The job's progress is its Spark checkpoint: for the newest
  batch with a ``commits/<batch>`` file, ``offsets/<batch>`` holds the end offsets that batch
  read. Readable for ``file://`` lakes; on S3 the job publishes the same figure to CloudWatch.
- **Event-time freshness**: now minus the newest event time in the lake (the upper bound of
  ``timestamp`` in the data files the newest snapshot added: Iceberg metadata, no data read),
  and now minus the newest event time the dashboard itself received on the live topic.
- **Quarantine rate**: quarantined / (written + quarantined) per stream, from the record counts
  of the tables' current snapshots, over all time and over the last ``RECENT_MINUTES``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from emr_jobs.core.contracts import ALL_STREAMS, LAKE, STREAMS
from emr_jobs.core.kafka import KafkaSettings
from emr_jobs.core.settings import SettingsError
from emr_jobs.settings import JobSettings

log = logging.getLogger(__name__)

RATE_WINDOW_S = 10.0
#: The checkpoint folder of the job's lake writer (``LAKE.checkpoint_location``).
LAKE_WRITER = "job"
RECENT_MINUTES = 10

#: topic -> partition -> offset
Offsets = dict[str, dict[int, int]]


# --- the broker ----------------------------------------------------------------------------------


def high_watermarks(admin: AdminClient, topics: list[str], timeout: float = 5.0) -> Offsets:
    """The next offset to be written, per partition of each existing topic, in one request."""
    metadata = admin.list_topics(timeout=timeout).topics
    wanted = {
        TopicPartition(topic, p): OffsetSpec.latest()
        for topic in topics
        if topic in metadata and metadata[topic].error is None
        for p in metadata[topic].partitions
    }
    out: Offsets = {t: {} for t in topics if t in metadata}
    if not wanted:
        return out
    for tp, future in admin.list_offsets(wanted, request_timeout=timeout).items():
        out[tp.topic][tp.partition] = int(future.result().offset)
    return out


@dataclass
class Rates:
    """Events per second per topic from successive high-watermark samples."""

    window_s: float = RATE_WINDOW_S
    samples: deque[tuple[float, dict[str, int]]] = field(default_factory=deque)

    def add(self, at: float, ends: Offsets) -> None:
        self.samples.append((at, {t: sum(p.values()) for t, p in ends.items()}))
        while len(self.samples) > 2 and at - self.samples[1][0] >= self.window_s:
            self.samples.popleft()

    def per_second(self) -> dict[str, float]:
        if len(self.samples) < 2:
            return {}
        (t0, first), (t1, last) = self.samples[0], self.samples[-1]
        span = t1 - t0
        if span <= 0:
            return {}
        return {t: max(0, n - first.get(t, n)) / span for t, n in last.items()}


# --- the job's checkpoint ------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointProgress:
    batch: int
    offsets: Offsets  # end offsets of the newest committed batch
    committed_at: float  # epoch seconds (the commit file's modification time)


def checkpoint_dir(job: JobSettings) -> Path | None:
    """The job's checkpoint folder when the lake is on this machine's file system."""
    location = job.checkpoint_location
    parsed = urlparse(location)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


def _batches(folder: Path) -> list[int]:
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())


def read_checkpoint(folder: Path) -> CheckpointProgress | None:
    """The newest batch the job has committed, and the offsets it had read by then.

    Spark writes ``offsets/<n>`` when batch ``n`` starts (a version line, the batch metadata,
    then one JSON line per source: topic -> partition -> end offset) and ``commits/<n>`` when
    it has finished. The job has one Kafka source over the five topics.
    """
    committed = _batches(folder / "commits")
    for batch in reversed(committed):
        source = folder / "offsets" / str(batch)
        if not source.is_file():
            continue
        lines = source.read_text(encoding="utf-8").splitlines()
        if len(lines) < 3:
            continue
        offsets: Offsets = {}
        for line in lines[2:]:
            try:
                doc = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(doc, dict):
                for topic, parts in doc.items():
                    if isinstance(parts, dict):
                        offsets[topic] = {int(p): int(o) for p, o in parts.items()}
        mtime = (folder / "commits" / str(batch)).stat().st_mtime
        return CheckpointProgress(batch, offsets, mtime)
    return None


def behind(ends: Offsets, done: Offsets) -> dict[str, int]:
    """Offsets behind latest per topic the job reads (partitions it has not seen count fully)."""
    return {
        topic: sum(max(0, end - done[topic].get(p, 0)) for p, end in parts.items())
        for topic, parts in ends.items()
        if topic in done
    }


# --- the lake ------------------------------------------------------------------------------------


def _newest_event_ms(table, column: str) -> int | None:
    """Upper bound of ``column`` in the data files added by the newest snapshot that added any."""
    from pyiceberg.conversions import from_bytes

    field_ = table.schema().find_field(column)
    for snap in sorted(table.snapshots(), key=lambda s: s.timestamp_ms, reverse=True):
        props = snap.summary.additional_properties if snap.summary else {}
        if int(props.get("added-data-files", 0)) == 0:
            continue
        newest = None
        for manifest in snap.manifests(table.io):
            if manifest.added_snapshot_id != snap.snapshot_id:
                continue
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                raw = (entry.data_file.upper_bounds or {}).get(field_.field_id)
                if raw is not None:
                    micros = int(from_bytes(field_.field_type, raw))
                    newest = micros if newest is None else max(newest, micros)
        return None if newest is None else newest // 1000
    return None


def _records(table, since_ms: int) -> tuple[int, int]:
    """Records in the current snapshot, and records added by snapshots since ``since_ms``."""
    snap = table.current_snapshot()
    if snap is None:
        return 0, 0
    summary = snap.summary.additional_properties if snap.summary else {}
    total = int(summary.get("total-records", 0))
    recent = 0
    for s in table.snapshots():
        if s.timestamp_ms >= since_ms and s.summary is not None:
            recent += int(s.summary.additional_properties.get("added-records", 0))
    return total, recent


def lake_status(job: JobSettings, now_ms: int | None = None) -> dict[str, dict]:
    """Per stream: written, quarantined (all time and recent) and the lake's newest event time.

    Reads Iceberg metadata through the same catalog ``scripts.lake`` uses; never data files.
    """
    from scripts.lake import catalog

    now_ms = now_ms or int(time.time() * 1000)
    since = now_ms - RECENT_MINUTES * 60_000
    from pyiceberg.exceptions import NoSuchNamespaceError

    cat = catalog(job)
    try:
        existing = {name for _, name in cat.list_tables(job.database)}
    except NoSuchNamespaceError:  # the job has made the catalog, not yet its tables
        return {}
    out: dict[str, dict] = {}
    for stream in STREAMS:
        data, quarantine = LAKE.data_table(stream), LAKE.quarantine_table(stream)
        if data not in existing:
            continue
        table = cat.load_table((job.database, data))
        written, written_recent = _records(table, since)
        newest = _newest_event_ms(table, "timestamp")
        quarantined = quarantined_recent = 0
        if quarantine in existing:
            quarantined, quarantined_recent = _records(
                cat.load_table((job.database, quarantine)), since
            )
        out[stream] = {
            "written": written,
            "quarantined": quarantined,
            "quarantineRate": _share(quarantined, written + quarantined),
            "quarantineRateRecent": _share(quarantined_recent, written_recent + quarantined_recent),
            "lakeNewestEventMs": newest,
        }
    return out


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


# --- the monitor ---------------------------------------------------------------------------------


class HealthMonitor(threading.Thread):
    """Polls the broker and the checkpoint every ``every`` s, the lake every ``lake_every`` s,
    and keeps the latest health document in ``doc`` (a plain dict, replaced whole)."""

    def __init__(
        self,
        kafka: KafkaSettings,
        job: JobSettings,
        admin: AdminClient,
        *,
        every: float = 2.0,
        lake_every: float = 15.0,
        live_newest: Callable[[], dict[str, int | None]] = dict,
    ) -> None:
        super().__init__(name="dashboard-health", daemon=True)
        self.kafka = kafka
        self.job = job
        self.admin = admin
        self.every = every
        self.lake_every = lake_every
        self.live_newest = live_newest
        self.rates = Rates()
        self.doc: dict = {"at": 0, "streams": {}, "job": {"state": "starting"}, "lake": {}}
        self.checkpoint = checkpoint_dir(job)
        self._lake: dict[str, dict] = {}
        self._lake_state = "not read yet"
        self._lake_at = 0.0
        self._lake_at_wall = 0.0
        self._halt = threading.Event()
        self._errors: dict[str, str] = {}
        self._failures = 0
        self._progress: dict[str, CheckpointProgress] = {}

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        while not self._halt.is_set():
            began = time.monotonic()
            self.poll()
            self._halt.wait(max(0.05, self.every - (time.monotonic() - began)))

    def poll(self) -> dict:
        now = time.time()
        topics = {s: self.kafka.topic(s) for s in ALL_STREAMS}
        ends: Offsets = {}
        broker = "ok"
        try:
            ends = high_watermarks(self.admin, list(topics.values()))
            self.rates.add(time.monotonic(), ends)
        except KafkaException as err:
            # One failed poll (a leader moving, a topic just created) is normal; the panel
            # shows it, and the log says so only when it lasts.
            reason = err.args[0].str() if err.args and hasattr(err.args[0], "str") else err
            broker = f"error: {reason}"
        self._failures = 0 if broker == "ok" else self._failures + 1
        if broker == "ok" or self._failures >= 3:
            self._once("broker", broker)
        rates = self.rates.per_second()
        queries = self._queries(ends, now)
        progress = self._progress.get(LAKE_WRITER)
        lags = behind(ends, progress.offsets) if progress else {}
        if time.monotonic() - self._lake_at >= self.lake_every:
            self._poll_lake(now)
        live = self.live_newest()
        streams = {}
        for stream, topic in topics.items():
            lake = self._lake.get(stream, {})
            newest_lake = lake.get("lakeNewestEventMs")
            newest_live = live.get(stream)
            streams[stream] = {
                "topic": topic,
                "eventsPerSecond": rates.get(topic),
                "latestOffset": sum(ends[topic].values()) if topic in ends else None,
                "behind": lags.get(topic),
                "lakeFreshnessS": None if newest_lake is None else now - newest_lake / 1000,
                "liveFreshnessS": None if newest_live is None else now - newest_live / 1000,
                **{k: v for k, v in lake.items() if k != "lakeNewestEventMs"},
            }
        job: dict[str, object]
        if self.checkpoint is None:
            job = {"state": "n/a", "detail": "the checkpoint is not on this machine's disk"}
        elif progress is None:
            job = {"state": "no checkpoint", "detail": str(self.checkpoint)}
        else:
            job = dict(queries[LAKE_WRITER], state="ok")
        job["queries"] = queries
        self.doc = {
            "at": int(now * 1000),
            "broker": broker,
            "streams": streams,
            "job": job,
            "lake": {"state": self._lake_state, "checkedS": now - self._lake_at_wall}
            if self._lake_at
            else {"state": self._lake_state},
        }
        return self.doc

    def _queries(self, ends: Offsets, now: float) -> dict[str, dict]:
        """Every streaming query's checkpoint beside the lake writer's (the job's alert and
        road-condition queries keep theirs in ``checkpoints/<query>``): batch, age, lag."""
        self._progress = {}
        if self.checkpoint is None or not self.checkpoint.parent.is_dir():
            return {}
        out = {}
        for folder in sorted(p for p in self.checkpoint.parent.iterdir() if p.is_dir()):
            progress = read_checkpoint(folder)
            if progress is None:
                continue
            self._progress[folder.name] = progress
            lags = behind(ends, progress.offsets)
            out[folder.name] = {
                "batch": progress.batch,
                "lastCommitS": now - progress.committed_at,
                "behind": sum(lags.values()) if lags else None,
            }
        return out

    def _poll_lake(self, now: float) -> None:
        self._lake_at = time.monotonic()
        self._lake_at_wall = now
        try:
            self._lake = lake_status(self.job, int(now * 1000))
            self._lake_state = "ok" if self._lake else "no tables yet"
        except SettingsError as err:  # no catalog yet: the job has not run
            self._lake, self._lake_state = {}, f"unavailable: {err}"
        except Exception as err:  # noqa: BLE001 - a lake hiccup must not stop the dashboard
            self._lake_state = f"error: {type(err).__name__}: {err}"
        self._once("lake", self._lake_state)

    def _once(self, what: str, state: str) -> None:
        """Log a state change once, not every poll."""
        if self._errors.get(what) != state:
            if state not in ("ok", "no tables yet") and not state.startswith("unavailable"):
                log.warning("%s: %s", what, state)
            self._errors[what] = state
