"""The streaming job: five Kafka topics -> checked, deduplicated Iceberg tables, exactly once.

Run locally through ``python -m scripts.run_job`` (which adds the jars and a local master), or on
EMR through ``spark-submit`` (``scripts/emr_steps.py``). Settings come from the environment
(emr_jobs/README.md, "Settings"); command-line flags override the most common ones.

This module wires the job together and waits for it; the pieces live beside it:

- ``emr_jobs.preflight``: the brokers and topics are there, or one error line within seconds;
- ``emr_jobs.lake_writer``: :class:`BatchWriter`, which writes each micro-batch of the one
  query over the five topics to the eleven Iceberg tables, each exactly once;
- ``emr_jobs.progress``: totals, the progress log line, the lag metric and the summary;
- ``emr_jobs.alerts``: the alert and road-condition queries.

:func:`await_queries` lets Spark do the waiting (``awaitAnyTermination``) until the queries end,
one fails, a signal arrives or ``JOB_TIMEOUT_SECONDS`` passes (:class:`EarlyStop`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import queue
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any
from urllib.parse import unquote, urlparse

from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery, StreamingQueryManager

from emr_jobs import alerts as derived
from emr_jobs.core.contracts import ALL_STREAMS
from emr_jobs.core.kafka import KafkaSettings, spark_kafka_options
from emr_jobs.core.settings import SettingsError
from emr_jobs.iceberg import check_catalog, ensure_tables, spark_catalog_conf, table_specs
from emr_jobs.lake_writer import BatchWriter
from emr_jobs.preflight import KafkaUnavailable, check_kafka, spark_jvm
from emr_jobs.progress import Progress, ProgressListener, StreamTotals, summary
from emr_jobs.settings import AlertSettings, JobSettings

log = logging.getLogger("emr_jobs.job")


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


# --- settings: flags over the environment --------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The job's flags: the settings fields that declare one, and two of the job's own."""
    parser = argparse.ArgumentParser(description="Smart City streaming job (Kafka -> Iceberg lake)")
    JobSettings.add_flags(parser)
    KafkaSettings.add_flags(parser, "bootstrap_servers", "auth_mode")
    parser.add_argument(
        "--available-now",
        action="store_true",
        help="process what is in the topics, then stop [JOB_TRIGGER=availableNow]",
    )
    parser.add_argument(
        "--streams", default=",".join(ALL_STREAMS), help="comma-separated subset the lake reads"
    )
    return parser.parse_args(argv)


def settings_from(
    args: argparse.Namespace, env: Mapping[str, str] | None = None
) -> tuple[KafkaSettings, JobSettings, list[str]]:
    """Flags laid over the environment, then checked once (a flag wins over its variable)."""
    kafka = KafkaSettings.from_args(args, env)
    trigger = {"trigger": "availableNow"} if args.available_now else {}
    job = JobSettings.from_args(args, env, **trigger)
    streams = [s.strip() for s in args.streams.split(",") if s.strip()]
    unknown = sorted(set(streams) - set(ALL_STREAMS))
    if unknown or not streams:
        raise SettingsError(
            f"--streams must name some of {', '.join(ALL_STREAMS)}; got {args.streams!r}"
        )
    return kafka, job, streams


# --- session, lake and queries -------------------------------------------------------------------


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
        # instead of queueing behind them (emr_jobs/README.md, "Query layout, and why").
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
    jvm = spark_jvm(spark)
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
            # pyspark types trigger() as one overload per keyword; a mapping holding exactly
            # one of them matches none of them statically.
            .trigger(**_trigger(job))  # type: ignore[call-overload]
            .start()
        )
    finally:
        # None removes the property (as Spark documents); pyspark's annotation allows only str.
        spark.sparkContext.setLocalProperty("spark.scheduler.pool", None)  # type: ignore[arg-type]
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
    alerts they raised; otherwise all four run side by side until a signal or the timeout.
    A signal or the timeout while the derived queries run first ends the run there."""
    progress = Progress()
    spark.streams.addListener(
        ProgressListener(progress, publish=job.publish_metrics, region=kafka.aws_region)
    )
    writer = BatchWriter(spark, kafka, job, streams, progress)
    settings = alert_settings or AlertSettings()
    available_now = job.trigger == "availableNow"
    queries: list[StreamingQuery] = []
    with EarlyStop(queries, job.timeout_seconds) as stop:
        if settings.enabled:
            trigger = (
                {"availableNow": True}
                if available_now
                else {"processingTime": settings.trigger_interval}
            )
            queries += derived.start_queries(spark, kafka, job, settings, trigger)
            log.info(
                "alerts: %s -> %s and %s (trigger %s)",
                ", ".join(q.name for q in queries),
                kafka.topic("alerts"),
                kafka.topic("road_conditions"),
                "availableNow" if available_now else settings.trigger_interval,
            )
            if available_now:
                await_queries(spark, queries, stop)
        if not stop.requested:
            queries.append(start_query(spark, kafka, job, writer))
            log.info(
                "reading %s into the %s catalog (%s, lake %s); trigger %s",
                ", ".join(kafka.topic(s) for s in streams),
                job.catalog,
                job.database,
                job.lake_uri,
                job.trigger if available_now else job.trigger_interval,
            )
        await_queries(spark, queries, stop)
    return progress


# --- waiting for the queries ---------------------------------------------------------------------


class QueryFailed(RuntimeError):
    """The streaming query stopped with an error (the message is its first line)."""


class EarlyStop:
    """What ends a run before its queries end by themselves: SIGTERM or SIGINT, or
    ``JOB_TIMEOUT_SECONDS`` (counted from the first wait).

    Used as ``with EarlyStop(queries, seconds) as stop:`` around the whole run, so a signal at
    any point of it stops the queries started so far and keeps more from starting; on leaving,
    the previous handlers are back. The handler runs on the main thread in the middle of
    ``awaitAnyTermination``, whose py4j connection is pinned to that thread and busy, so it must
    not call the JVM: it only hands the signal, through a queue that is safe in a signal
    handler, to a thread that stops the queries. Their end wakes the wait.
    """

    def __init__(self, queries: list[StreamingQuery], timeout_seconds: int | None) -> None:
        self.queries = queries  # the run's own list: queries started later are stopped too
        self.timeout_seconds = timeout_seconds
        self.deadline: float | None = None
        self.signum: int | None = None
        self.timed_out = False
        self._signals: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._stopper = threading.Thread(target=self._stop_on_signal, name="stop-on-signal")
        self._previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None or self.timed_out

    def seconds_left(self) -> float | None:
        """Until ``JOB_TIMEOUT_SECONDS`` has passed since the first call; None without one."""
        if not self.timeout_seconds:
            return None
        if self.deadline is None:
            self.deadline = time.monotonic() + self.timeout_seconds
        return max(0.0, self.deadline - time.monotonic())

    def __enter__(self) -> EarlyStop:
        self._stopper.start()
        self._previous = {
            s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)
        }
        return self

    def __exit__(self, *exc_info: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._signals.put(None)  # ends the stopper if no signal came
        self._stopper.join()

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.signum is None:
            self.signum = signum
            self._signals.put(signum)

    def _stop_on_signal(self) -> None:
        signum = self._signals.get()
        if signum is None:
            return
        log.info("signal %s: stopping after the current batch", signum)
        for query in list(self.queries):
            if query.isActive:
                query.stop()

    def wait_for_signal_stops(self) -> None:
        """After a signal, wait until its thread has stopped the queries (else return at once)."""
        if self.signum is not None:
            self._stopper.join()


def await_queries(spark: SparkSession, queries: list[StreamingQuery], stop: EarlyStop) -> None:
    """Until every query has ended, one fails, a signal arrives or JOB_TIMEOUT_SECONDS passes;
    then stop them all. A failed query's first error line is raised as QueryFailed.

    Spark does the waiting: ``awaitAnyTermination`` returns when a query ends (raising if it
    failed) or the time left runs out, and a signal ends it by stopping the queries. Its record
    of ended queries is reset before each look at the queries, so a query that ends between
    two waits is either seen by the look or wakes the next wait.
    """
    manager = spark.streams
    try:
        while not stop.requested:
            manager.resetTerminated()
            if not any(q.isActive for q in queries):
                break
            if any(q.exception() is not None for q in queries):
                break
            if not _wait_for_an_end(manager, stop.seconds_left()):
                log.info("JOB_TIMEOUT_SECONDS reached: stopping")
                stop.timed_out = True
    finally:
        stop.wait_for_signal_stops()
        for query in queries:
            if query.isActive:
                query.stop()
    for query in queries:
        error = query.exception()
        if error is not None:
            message = str(getattr(error, "desc", error)).strip()  # desc: the JVM's own message
            raise QueryFailed(f"{query.name}: " + message.splitlines()[0][:500])


def _wait_for_an_end(manager: StreamingQueryManager, seconds: float | None) -> bool:
    """Block until a query ends (True) or ``seconds`` pass (False); None: no time limit."""
    try:
        if seconds is None:
            manager.awaitAnyTermination()
            return True
        # Whole seconds, as pyspark's annotation says (it sends milliseconds to the JVM).
        return seconds > 0 and bool(manager.awaitAnyTermination(math.ceil(seconds)))
    except StreamingQueryException:
        return True  # a query failed: the caller finds which in the queries


# --- main ----------------------------------------------------------------------------------------


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
