"""The streaming job: five Kafka topics -> checked, deduplicated Iceberg tables, exactly once.

Run locally through ``python -m scripts.run_job`` (which adds the jars and a local master), or on
EMR through ``spark-submit`` (``scripts/emr_steps.py``). Settings come from the environment (see
README, "Settings"); command-line flags override the most common ones.

One query reads the five topics once. Each micro-batch is persisted, parsed and checked once per
stream (``emr_jobs.transforms``), and written by :class:`BatchWriter` to eleven Iceberg tables:
``<stream>``, ``<stream>_quarantine`` and ``duplicates``. Every append is tagged with the query
and batch id (``emr_jobs.iceberg.CommitLog``), so a batch replayed after a crash skips the tables
it already wrote: every record lands exactly once. Nothing is dropped for being late, and there
is no watermark a bad clock could push into the future.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import reduce
from urllib.parse import unquote, urlparse

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery, StreamingQueryListener

from emr_jobs import alerts as derived
from emr_jobs.core.contracts import ALL_STREAMS, CONTRACTS, LAKE, Contract
from emr_jobs.core.kafka import KafkaSettings, spark_kafka_options
from emr_jobs.core.settings import SettingsError, duration_seconds
from emr_jobs.iceberg import (
    CommitLog,
    check_catalog,
    ensure_tables,
    spark_catalog_conf,
    table_specs,
)
from emr_jobs.settings import AlertSettings, JobSettings
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

log = logging.getLogger("emr_jobs.job")

#: ``datetime.UTC`` is Python 3.11+; the compose stack's Spark image runs the job on 3.10.
UTC = timezone.utc  # noqa: UP017

#: Test hook: the process dies (as if killed) right after this many table commits.
CRASH_AFTER_COMMITS_ENV = "JOB_TEST_CRASH_AFTER_COMMITS"


# --- read --------------------------------------------------------------------------------------


def read_kafka(
    spark: SparkSession, kafka: KafkaSettings, job: JobSettings, streams: Sequence[str]
) -> DataFrame:
    """One Kafka source over the streams' topics: each record is read once."""
    reader = (
        spark.readStream.format("kafka")
        .options(**spark_kafka_options(kafka))
        .option("subscribe", ",".join(kafka.topic(s) for s in streams))
        .option("startingOffsets", job.starting_offsets)
        .option("failOnDataLoss", "true")
    )
    if job.max_offsets_per_trigger is not None:
        reader = reader.option("maxOffsetsPerTrigger", str(job.max_offsets_per_trigger))
    return reader.load()


class KafkaUnavailable(RuntimeError):
    """The brokers cannot be reached or a topic is missing; the message names the setting."""


def check_kafka(
    spark: SparkSession, kafka: KafkaSettings, streams: Sequence[str], timeout_seconds: int = 20
) -> None:
    """Fail within seconds, before the query starts, if the brokers or topics are not there.

    Uses the JVM Kafka AdminClient with the very options the Kafka source gets, so it also
    proves the MSK IAM login. Without it, an unreachable broker keeps the source retrying for
    minutes, and a missing topic (auto-creation is off) makes the query wait forever. Creating
    the client is inside the ``try``: a host name that does not resolve fails right there.
    """
    jvm = spark.sparkContext._jvm
    props = jvm.java.util.Properties()
    for key, value in spark_kafka_options(kafka).items():
        if key.startswith("kafka."):
            props.setProperty(key.removeprefix("kafka."), value)
    props.setProperty("request.timeout.ms", str(timeout_seconds * 1000))
    props.setProperty("default.api.timeout.ms", str(timeout_seconds * 1000))
    seconds = jvm.java.util.concurrent.TimeUnit.SECONDS
    admin = None
    try:
        admin = jvm.org.apache.kafka.clients.admin.AdminClient.create(props)
        names = set(admin.listTopics().names().get(timeout_seconds, seconds))
    except Exception as err:  # noqa: BLE001 - py4j wraps the Java exception
        raise KafkaUnavailable(
            f"cannot reach Kafka at {kafka.bootstrap_servers} (KAFKA_BOOTSTRAP_SERVERS, "
            f"auth {kafka.auth_mode}) within {timeout_seconds}s: {_root_cause(err)}"
        ) from None
    finally:
        if admin is not None:
            admin.close()
    missing = [
        f"{kafka.topic(s)} ({CONTRACTS[s].topic_env})"
        for s in streams
        if kafka.topic(s) not in names
    ]
    if missing:
        raise KafkaUnavailable(
            f"topics missing on {kafka.bootstrap_servers}: {', '.join(missing)}; "
            "create them with `python -m scripts.topics create`"
        )


def _root_cause(err: Exception) -> str:
    """The innermost Java exception of a py4j error, e.g. Kafka's ConfigException text."""
    java = getattr(err, "java_exception", None)
    while java is not None and java.getCause() is not None:
        java = java.getCause()
    text = java.toString() if java is not None else (str(err).strip().splitlines() or [""])[0]
    return text[:300]


# --- write -------------------------------------------------------------------------------------


@dataclass
class StreamTotals:
    """What became of the records of one stream: ``read = written + quarantined + duplicates``."""

    read: int = 0
    written: int = 0
    quarantined: int = 0
    duplicates: int = 0
    late: int = 0

    def add(self, other: StreamTotals) -> None:
        for name in ("read", "written", "quarantined", "duplicates", "late"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Progress:
    """Totals per stream, batch timings and the Kafka lag, for logs, metrics and the summary."""

    totals: dict[str, StreamTotals] = field(default_factory=dict)
    batches: int = 0
    batch_seconds: list[float] = field(default_factory=list)
    offsets_behind_latest: int | None = None
    last_log: float = 0.0

    def stream(self, name: str) -> StreamTotals:
        return self.totals.setdefault(name, StreamTotals())


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
            log.warning("%s: dying after commit %d (%s, batch %d)",
                        CRASH_AFTER_COMMITS_ENV, self.commit_count, table, batch_id)
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
        self.commits.spark = self.spark
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
                counts[stream], dup = self._write_stream(raw, stream, batch_id, stamp, cached)
                if dup is not None:
                    removed.append(dup)
            if removed:
                self.commits.append(
                    LAKE.duplicates_table,
                    batch_id,
                    with_ingest_time(reduce(DataFrame.unionByName, removed), stamp),
                )
        finally:
            for frame in cached:
                frame.unpersist()
        self._record(batch_id, counts, time.monotonic() - began)

    def _write_stream(
        self, raw: DataFrame, stream: str, batch_id: int, stamp: DataFrame, cached: list
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
            .first()
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
            self.commits.append(table, batch_id, with_ingest_time(keep, stamp))
            if totals.duplicates:
                duplicates = to_duplicate_rows(repeats, contract)
        if totals.quarantined:
            self.commits.append(
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
            newest[stream] = self.spark.table(table).agg(F.max(column)).first()[0]
        return newest

    def _record(self, batch_id: int, counts: dict[str, StreamTotals], seconds: float) -> None:
        self.progress.batches += 1
        self.progress.batch_seconds.append(seconds)
        for stream, totals in counts.items():
            self.progress.stream(stream).add(totals)
        read = sum(t.read for t in counts.values())
        if read:
            log.debug("batch %d: %d records in %.2fs", batch_id, read, seconds)


# --- progress, metrics, summary ------------------------------------------------------------------


def offsets_behind_latest(progress: dict) -> int | None:
    """The largest ``maxOffsetsBehindLatest`` of a progress event's Kafka sources, if any."""
    behind = [
        int(v)
        for source in progress.get("sources", [])
        for v in [(source.get("metrics") or {}).get("maxOffsetsBehindLatest")]
        if v is not None
    ]
    return max(behind) if behind else None


class ProgressListener(StreamingQueryListener):
    """Logs a progress line every ``every`` seconds and publishes the lag metric if asked."""

    def __init__(
        self, progress: Progress, every: float = 10.0, publish: bool = False, region: str = ""
    ) -> None:
        self.progress = progress
        self.every = every
        self.publish = publish
        self.region = region

    def onQueryStarted(self, event) -> None:  # noqa: N802 - Spark's API
        log.info("query %s started (id %s)", event.name, event.id)

    def onQueryProgress(self, event) -> None:  # noqa: N802
        doc = json.loads(event.progress.json)
        behind = offsets_behind_latest(doc)
        if behind is not None:
            self.progress.offsets_behind_latest = behind
        if self.publish and behind is not None:
            try:
                publish_lag_metric(behind, self.region)
            except Exception as err:  # noqa: BLE001 - metrics must never stop the job
                # A missing boto3 or a CloudWatch outage is reported once, not per batch.
                self.publish = False
                log.warning("lag metric disabled: cannot publish to CloudWatch (%s)", err)
        now = time.monotonic()
        if now - self.progress.last_log >= self.every:
            self.progress.last_log = now
            log.info("progress: %s", format_progress_line(self.progress))

    def onQueryIdle(self, event) -> None:  # noqa: N802
        pass

    def onQueryTerminated(self, event) -> None:  # noqa: N802
        if event.exception:
            log.error("query %s failed: %s", event.id, event.exception.splitlines()[0])


def format_progress_line(progress: Progress) -> str:
    parts = [f"batches={progress.batches}"]
    if progress.offsets_behind_latest is not None:
        parts.append(f"behind={progress.offsets_behind_latest}")
    for name, t in sorted(progress.totals.items()):
        parts.append(
            f"{name} read={t.read} written={t.written} quarantined={t.quarantined} "
            f"duplicates={t.duplicates} late={t.late}"
        )
    return "; ".join(parts)


def publish_lag_metric(behind: int, region: str) -> None:
    """``MaxOffsetsBehindLatest`` of the job's one Kafka source to CloudWatch (infra/ alarms on it).

    Spark's Kafka source commits no consumer-group offsets, so MSK's own lag metrics stay
    empty for this job; this is the metric the lag alarm uses.
    """
    import boto3

    boto3.client("cloudwatch", region_name=region or None).put_metric_data(
        Namespace=LAKE.metrics_namespace,
        MetricData=[
            {
                "MetricName": LAKE.lag_metric,
                "Dimensions": [{"Name": LAKE.metrics_dimension, "Value": "all"}],
                "Value": float(behind),
                "Unit": "Count",
            }
        ],
    )


def summary(
    progress: Progress, streams: Sequence[str] = ALL_STREAMS
) -> dict[str, dict[str, int]]:
    """Per stream: read, written, quarantined, duplicates (the three add up to read) and late."""
    return {s: vars(progress.totals.get(s, StreamTotals())).copy() for s in streams}


# --- main ----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Smart City streaming job (Kafka -> Iceberg lake)")
    parser.add_argument("--lake-uri", help="lake root: file://, s3a:// or s3:// [LAKE_URI]")
    parser.add_argument("--bootstrap-servers", help="[KAFKA_BOOTSTRAP_SERVERS]")
    parser.add_argument("--auth-mode", help="none | msk-iam [KAFKA_AUTH_MODE]")
    parser.add_argument(
        "--available-now",
        action="store_true",
        help="process what is in the topics, then stop [JOB_TRIGGER=availableNow]",
    )
    parser.add_argument("--trigger-interval", help="e.g. '10 seconds' [JOB_TRIGGER_INTERVAL]")
    parser.add_argument("--timeout-seconds", type=int, help="stop a continuous run after N s")
    parser.add_argument(
        "--streams", default=",".join(ALL_STREAMS), help="comma-separated subset the lake reads"
    )
    return parser.parse_args(argv)


#: Command-line flags and the environment variable each one overrides.
FLAG_ENV = {
    "lake_uri": "LAKE_URI",
    "bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS",
    "auth_mode": "KAFKA_AUTH_MODE",
    "trigger_interval": "JOB_TRIGGER_INTERVAL",
    "timeout_seconds": "JOB_TIMEOUT_SECONDS",
}


def settings_from(
    args: argparse.Namespace, env: Mapping[str, str] | None = None
) -> tuple[KafkaSettings, JobSettings, list[str]]:
    """Flags laid over the environment, then checked once (a flag wins over its variable)."""
    merged = dict(os.environ if env is None else env)
    for attr, name in FLAG_ENV.items():
        value = getattr(args, attr)
        if value is not None:
            merged[name] = str(value)
    if args.available_now:
        merged["JOB_TRIGGER"] = "availableNow"
    kafka = KafkaSettings.from_env(merged)
    job = JobSettings.from_env(merged)
    streams = [s.strip() for s in args.streams.split(",") if s.strip()]
    unknown = sorted(set(streams) - set(ALL_STREAMS))
    if unknown or not streams:
        raise SettingsError(
            f"--streams must name some of {', '.join(ALL_STREAMS)}; got {args.streams!r}"
        )
    return kafka, job, streams


#: Fair-scheduler pools: the alert queries' small jobs get a core as soon as they have tasks.
SCHEDULER_POOLS = """<?xml version="1.0"?>
<allocations>
  <pool name="alerts">
    <schedulingMode>FIFO</schedulingMode><weight>2</weight><minShare>1</minShare>
  </pool>
  <pool name="lake">
    <schedulingMode>FIFO</schedulingMode><weight>1</weight><minShare>0</minShare>
  </pool>
</allocations>
"""


def _scheduler_pools_file() -> str:
    """The pools as a file on the driver (Spark reads them from a path)."""
    path = os.path.join(tempfile.gettempdir(), f"smartcity-pools-{os.getpid()}.xml")
    with open(path, "w", encoding="utf-8") as out:
        out.write(SCHEDULER_POOLS)
    return path


def build_session(job: JobSettings) -> SparkSession:
    builder = (
        SparkSession.builder.appName("smartcity-streaming-job")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(job.shuffle_partitions))
        .config("spark.sql.streaming.stopGracefullyOnShutdown", "true")
        # Constraint inference over the validation plan's hundreds of expressions takes the
        # optimizer tens of seconds whenever a join sits on top (measured: 25 s per plan).
        .config("spark.sql.constraintPropagation.enabled", "false")
        # Each batch plans the same few dozen stages; with the default 100 entries the cache
        # evicts them and every batch compiled ~135 classes anew (scripts/bench profile).
        .config("spark.sql.codegen.cache.maxEntries", "2000")
        # The alert queries' small jobs share the cores fairly with the lake writer's big ones
        # instead of queueing behind them (README, "Alerts: query layout").
        .config("spark.scheduler.mode", "FAIR")
        .config("spark.scheduler.allocation.file", _scheduler_pools_file())
    )
    for key, value in spark_catalog_conf(job).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


#: Spark warns, with a stack trace, each time it plans the alert join, that the join condition's
#: distance and reporter terms (which the optimizer moves into it) are not time bounds. It uses
#: the time bounds for state clean-up, as intended; the warning is not news to an operator.
JOIN_HELPER_LOGGER = "org.apache.spark.sql.catalyst.analysis.StreamingJoinHelper"


def quiet_join_helper(spark: SparkSession) -> None:
    """Raise that one logger to ERROR in every run mode (local/spark/log4j2.properties covers
    local runs; EMR and compose have their own log4j files)."""
    jvm = spark.sparkContext._jvm
    with contextlib.suppress(Exception):  # another logging backend: keep the warning
        jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
            JOIN_HELPER_LOGGER, jvm.org.apache.logging.log4j.Level.ERROR
        )


def prepare_lake(spark: SparkSession, job: JobSettings, streams: Sequence[str]) -> None:
    """Open the catalog and create or evolve the tables before the first batch."""
    parsed = urlparse(job.lake_uri)
    if parsed.scheme == "file":
        os.makedirs(unquote(parsed.path), exist_ok=True)
    check_catalog(spark, job)
    ensure_tables(spark, job, table_specs(streams))


def _trigger(job: JobSettings) -> dict[str, object]:
    if job.trigger == "availableNow":
        return {"availableNow": True}
    return {"processingTime": job.trigger_interval}


def start_query(
    spark: SparkSession, kafka: KafkaSettings, job: JobSettings, writer: BatchWriter
) -> StreamingQuery:
    spark.sparkContext.setLocalProperty("spark.scheduler.pool", "lake")
    try:
        query = (
            read_kafka(spark, kafka, job, writer.streams)
            .writeStream.queryName("lake")
            .foreachBatch(writer)
            .option("checkpointLocation", job.checkpoint_location)
            .trigger(**_trigger(job))
            .start()
        )
    finally:
        spark.sparkContext.setLocalProperty("spark.scheduler.pool", None)
    writer.start(str(query.id))
    return query


def run(
    spark: SparkSession,
    kafka: KafkaSettings,
    job: JobSettings,
    streams: Sequence[str],
    alert_settings: AlertSettings | None = None,
) -> Progress:
    """The lake writer and, unless ``ALERTS_ENABLED=false``, the alert and road-condition
    queries. With ``availableNow`` the derived queries run first, so the lake then holds the
    alerts they raised; otherwise all four run side by side until a signal or the timeout."""
    progress = Progress()
    spark.streams.addListener(
        ProgressListener(progress, publish=job.publish_metrics, region=kafka.aws_region)
    )
    writer = BatchWriter(spark, kafka, job, streams, progress)
    settings = alert_settings or AlertSettings()
    available_now = job.trigger == "availableNow"
    queries: list[StreamingQuery] = []
    if settings.enabled:
        trigger = (
            {"availableNow": True}
            if available_now
            else {"processingTime": settings.trigger_interval}
        )
        queries = derived.start_queries(spark, kafka, job, settings, trigger)
        log.info(
            "alerts: %s -> %s and %s (trigger %s)",
            ", ".join(q.name for q in queries),
            kafka.topic("alerts"),
            kafka.topic("road_conditions"),
            "availableNow" if available_now else settings.trigger_interval,
        )
        if available_now:
            _await(spark, queries, job)
    queries.append(start_query(spark, kafka, job, writer))
    log.info(
        "reading %s into the %s catalog (%s, lake %s); trigger %s",
        ", ".join(kafka.topic(s) for s in streams),
        job.catalog,
        job.database,
        job.lake_uri,
        job.trigger if available_now else job.trigger_interval,
    )
    _await(spark, queries, job)
    return progress


def _await(spark: SparkSession, queries: list[StreamingQuery], job: JobSettings) -> None:
    """Until every query has ended, one fails, a signal arrives or JOB_TIMEOUT_SECONDS passes;
    then stop them all. A failed query's first error line is raised as QueryFailed."""
    stopping: dict[str, int | None] = {"signal": None}

    def on_signal(signum, _frame):
        stopping["signal"] = signum

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    deadline = time.monotonic() + job.timeout_seconds if job.timeout_seconds else None
    try:
        while any(q.isActive for q in queries):
            if any(q.exception() is not None for q in queries):
                break
            if stopping["signal"] is not None:
                log.info("signal %s: stopping after the current batch", stopping["signal"])
                break
            if deadline is not None and time.monotonic() > deadline:
                log.info("JOB_TIMEOUT_SECONDS reached: stopping")
                break
            # Spark's own wait, a second at a time so a signal or the deadline is noticed.
            manager = spark.streams
            with contextlib.suppress(Exception):  # a failed query is reported below
                manager.awaitAnyTermination(1)
            manager.resetTerminated()
    finally:
        for query in queries:
            if query.isActive:
                query.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    for query in queries:
        error = query.exception()
        if error is not None:
            raise QueryFailed(f"{query.name}: " + str(error.desc).strip().splitlines()[0][:500])


class QueryFailed(RuntimeError):
    """The streaming query stopped with an error (the message is its first line)."""


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # py4j logs every listener callback at INFO; the job's progress lines say what matters.
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        kafka, job, streams = settings_from(parse_args(argv))
        alert_settings = AlertSettings.from_env()
    except SettingsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    spark = build_session(job)
    spark.sparkContext.setLogLevel("WARN")
    quiet_join_helper(spark)
    started = time.monotonic()
    try:
        needed = ALL_STREAMS if alert_settings.enabled else streams
        check_kafka(spark, kafka, [s for s in ALL_STREAMS if s in set(needed) | set(streams)])
        prepare_lake(spark, job, streams)
        progress = run(spark, kafka, job, streams, alert_settings)
    except (KafkaUnavailable, SettingsError, derived.MissingPythonPackages) as err:
        print(f"error: {err}", file=sys.stderr)
        spark.stop()
        return 2
    except QueryFailed as err:
        print(f"error: the streaming query failed: {err}", file=sys.stderr)
        spark.stop()
        return 1
    result = summary(progress, streams)
    totals = StreamTotals()
    for t in progress.totals.values():
        totals.add(t)
    log.info(
        "summary after %.1fs, %d batches: read %d = written %d + quarantined %d + duplicates %d "
        "(late, written anyway: %d)",
        time.monotonic() - started,
        progress.batches,
        totals.read,
        totals.written,
        totals.quarantined,
        totals.duplicates,
        totals.late,
    )
    # One machine-readable line for operators and scripts.
    print("JOB_SUMMARY " + json.dumps(result, sort_keys=True), flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
