"""The lake writer: the ``foreachBatch`` function that writes one micro-batch to every table.

Each batch is persisted, parsed and checked once per stream (``emr_jobs.transforms``), and
:class:`BatchWriter` writes it to eleven Iceberg tables: ``<stream>``, ``<stream>_quarantine`` and
``duplicates``. A repeat of an event id already in the lake (looked up within padded minute
ranges, :func:`_minute_ranges`) goes to ``duplicates``. Every append is tagged with the query
and batch id (``emr_jobs.iceberg.CommitLog``), so a batch replayed after a crash skips the tables
it already wrote: every record lands exactly once. Nothing is dropped for being late, and there
is no watermark a bad clock could push into the future. Each batch's totals go to a
``emr_jobs.progress.Progress``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from functools import reduce

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from emr_jobs.core.contracts import CONTRACTS, LAKE, Contract
from emr_jobs.core.kafka import KafkaSettings
from emr_jobs.core.settings import duration_seconds
from emr_jobs.iceberg import CommitLog
from emr_jobs.progress import Progress, StreamTotals
from emr_jobs.settings import JobSettings
from emr_jobs.transforms import (
    EventTimeBounds,
    flag_duplicates,
    parse_events,
    to_duplicate_rows,
    to_lake_rows,
    to_quarantine_rows,
    validate,
    with_ingest_time,
)

#: The job's one logger: its lines read the same whichever of its modules writes them.
log = logging.getLogger("emr_jobs.job")

#: ``datetime.UTC`` is Python 3.11+; the compose stack's Spark image runs the job on 3.10.
UTC = timezone.utc  # noqa: UP017

#: Test hook: the process dies (as if killed) right after this many table commits.
CRASH_AFTER_COMMITS_ENV = "JOB_TEST_CRASH_AFTER_COMMITS"


def _minute_ranges(minutes: Sequence[datetime], pad: timedelta) -> list[tuple[datetime, datetime]]:
    """Merge the batch's event minutes into a few padded [start, end) ranges."""
    ranges: list[tuple[datetime, datetime]] = []
    for minute in sorted(minutes):
        start, end = minute - pad, minute + timedelta(minutes=1) + pad
        if ranges and start <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(end, ranges[-1][1]))
        else:
            ranges.append((start, end))
    if len(ranges) > 32:  # keep the pushed-down filter small: one span instead
        ranges = [(ranges[0][0], ranges[-1][1])]
    return ranges


def _within(column: str, ranges: Sequence[tuple[datetime, datetime]]) -> Column:
    return reduce(
        lambda a, b: a | b,
        [(F.col(column) >= F.lit(a)) & (F.col(column) < F.lit(b)) for a, b in ranges],
    )


class BatchWriter:
    """The ``foreachBatch`` function: one persisted batch -> every table, each exactly once."""

    def __init__(
        self,
        spark: SparkSession,
        kafka: KafkaSettings,
        job: JobSettings,
        streams: Sequence[str],
        progress: Progress,
        contracts: dict[str, Contract] | None = None,
    ) -> None:
        self.spark = spark
        self.job = job
        self.streams = list(streams)
        self.topics = {s: kafka.topic(s) for s in streams}
        self.contracts = contracts or CONTRACTS
        self.progress = progress
        self.bounds = EventTimeBounds(
            max_future_seconds=duration_seconds(job.max_future),
            floor=job.event_time_floor.replace("T", " ").removesuffix("Z"),
        )
        self.late_after = timedelta(seconds=duration_seconds(job.late_after))
        #: Newest valid event time written per stream: an event this far behind it is late.
        self.high_water: dict[str, datetime | None] = {}
        self.dedupe_pad = timedelta(seconds=duration_seconds(job.dedupe_window))
        self.query_id: str | None = None
        self.started = threading.Event()
        self.commits: CommitLog | None = None
        self.commit_count = 0
        crash = os.environ.get(CRASH_AFTER_COMMITS_ENV, "").strip()
        self.crash_after = int(crash) if crash else None

    def start(self, query_id: str) -> None:
        self.query_id = query_id
        self.started.set()

    def _after_commit(self, table: str, batch_id: int) -> None:
        self.commit_count += 1
        if self.crash_after is not None and self.commit_count >= self.crash_after:
            log.warning(
                "%s: dying after commit %d (%s, batch %d)",
                CRASH_AFTER_COMMITS_ENV,
                self.commit_count,
                table,
                batch_id,
            )
            os._exit(17)

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        self.started.wait()
        # Every catalog read and append of a batch goes through the batch's own session, the
        # one that commits. Measured: after a restart on an existing lake, the job session's
        # catalog connection keeps reading the catalog as it was at start-up, so a lookup
        # through it misses the rows this run has committed since (a repeat split across two
        # batches was then written twice).
        self.spark = batch.sparkSession
        if self.commits is None:
            assert self.query_id is not None
            self.commits = CommitLog(
                self.spark, self.job, self.query_id, LAKE.tables(self.streams), self._after_commit
            ).load()
        commits = self.commits
        commits.spark = self.spark
        began = time.monotonic()
        if not self.high_water:
            self.high_water = self._newest_event_times()
        stamp = self.spark.createDataFrame([(datetime.now(UTC),)], "ingestTime timestamp")
        raw = batch.persist(StorageLevel.MEMORY_AND_DISK)
        cached: list[DataFrame] = [raw]
        removed: list[DataFrame] = []
        counts: dict[str, StreamTotals] = {}
        try:
            # One small job on the cached batch: streams without records cost nothing more.
            present = {r["topic"] for r in raw.groupBy("topic").count().collect()}
            for stream in self.streams:
                if self.topics[stream] not in present:
                    continue
                counts[stream], dup = self._write_stream(
                    raw, stream, batch_id, stamp, cached, commits
                )
                if dup is not None:
                    removed.append(dup)
            if removed:
                commits.append(
                    LAKE.duplicates_table,
                    batch_id,
                    with_ingest_time(reduce(DataFrame.unionByName, removed), stamp),
                )
        finally:
            for frame in cached:
                frame.unpersist()
        self._record(batch_id, counts, time.monotonic() - began)

    def _write_stream(
        self,
        raw: DataFrame,
        stream: str,
        batch_id: int,
        stamp: DataFrame,
        cached: list,
        commits: CommitLog,
    ) -> tuple[StreamTotals, DataFrame | None]:
        contract = self.contracts[stream]
        checked = validate(
            parse_events(raw.where(F.col("topic") == self.topics[stream]), contract),
            contract,
            self.bounds,
        ).persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(checked)
        valid = F.col("reason").isNull()
        event_time = F.col(f"event.{contract.event_time_field}")
        newest = self.high_water.get(stream)
        late_before = self.spark.createDataFrame(
            [(None if newest is None else newest - self.late_after,)], "lateBefore timestamp"
        )
        stats = (
            checked.crossJoin(F.broadcast(late_before))
            .agg(
                F.count(F.lit(1)).alias("read"),
                F.count(F.when(valid, 1)).alias("valid"),
                F.count(F.when(valid & (event_time < F.col("lateBefore")), 1)).alias("late"),
                F.max(F.when(valid, event_time)).alias("newest"),
                F.collect_set(F.when(valid, F.date_trunc("minute", event_time))).alias("minutes"),
            )
            .collect()[0]  # an aggregate without grouping: exactly one row
        )
        if stats["newest"] is not None and (newest is None or stats["newest"] > newest):
            self.high_water[stream] = stats["newest"]
        totals = StreamTotals(
            read=stats["read"],
            written=stats["valid"],
            quarantined=stats["read"] - stats["valid"],
            late=stats["late"],
        )
        duplicates = None
        if totals.written:
            rows = to_lake_rows(checked, contract)
            table = LAKE.data_table(stream)
            ranges = _minute_ranges(stats["minutes"], self.dedupe_pad)
            written = (
                self.spark.table(self.job.table(table))
                .where(_within(contract.event_time_field, ranges))
                .select(contract.id_field, "kafkaTopic", "kafkaPartition", "kafkaOffset")
            )
            flagged = flag_duplicates(rows, written, contract).persist()
            cached.append(flagged)
            repeats = flagged.where(F.col("duplicate")).drop("duplicate")
            totals.duplicates = repeats.count()  # from the cache; usually 0 or a few
            totals.written -= totals.duplicates
            keep = flagged.where(~F.col("duplicate")).drop("duplicate")
            commits.append(table, batch_id, with_ingest_time(keep, stamp))
            if totals.duplicates:
                duplicates = to_duplicate_rows(repeats, contract)
        if totals.quarantined:
            commits.append(
                LAKE.quarantine_table(stream),
                batch_id,
                with_ingest_time(to_quarantine_rows(checked), stamp),
            )
        return totals, duplicates

    def _newest_event_times(self) -> dict[str, datetime | None]:
        """Each stream's newest event time already in the lake (Iceberg answers from metadata)."""
        newest = {}
        for stream in self.streams:
            column = self.contracts[stream].event_time_field
            table = self.job.table(LAKE.data_table(stream))
            newest[stream] = self.spark.table(table).agg(F.max(column)).collect()[0][0]
        return newest

    def _record(self, batch_id: int, counts: dict[str, StreamTotals], seconds: float) -> None:
        self.progress.batches += 1
        self.progress.batch_seconds.append(seconds)
        for stream, totals in counts.items():
            self.progress.stream(stream).add(totals)
        read = sum(t.read for t in counts.values())
        if read:
            log.debug("batch %d: %d records in %.2fs", batch_id, read, seconds)
