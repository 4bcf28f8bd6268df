"""The streaming job: five Kafka topics -> checked, deduplicated, partitioned Parquet, exactly once.

Run locally through ``python -m scripts.run_job`` (which adds the Kafka jars and a local master),
or on EMR through ``spark-submit`` (``scripts/emr_steps.py``). Settings come from the
environment (see README, "Settings"); command-line flags override the most common ones.

Per stream it runs two file-sink queries, each with its own checkpoint:
``<lake>/data/<stream>/date=…/hour=…/`` and ``<lake>/quarantine/<stream>/date=…/``. The file
sink commits a batch's files and its Kafka offsets together (``_spark_metadata`` + checkpoint),
so a restart after a crash neither loses nor repeats a row.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery, StreamingQueryListener

from emr_jobs.contracts import CONTRACTS, LAKE, STREAMS, Contract
from emr_jobs.kafka_options import KafkaSettings, spark_kafka_options
from emr_jobs.settings import JobSettings, SettingsError
from emr_jobs.sink_log import committed_uris, interrupted_batches, is_data_file
from emr_jobs.transforms import (
    deduplicate,
    parse_events,
    to_lake_rows,
    to_quarantine_rows,
    validate,
)

log = logging.getLogger("emr_jobs.job")


# --- read --------------------------------------------------------------------------------------


def read_kafka(
    spark: SparkSession, kafka: KafkaSettings, job: JobSettings, stream: str
) -> DataFrame:
    reader = (
        spark.readStream.format("kafka")
        .options(**spark_kafka_options(kafka))
        .option("subscribe", kafka.topic(stream))
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
    """Fail within seconds, before any query starts, if the brokers or topics are not there.

    Uses the JVM Kafka AdminClient with the very options the Kafka source gets, so it also
    proves the MSK IAM login. Without it, an unreachable broker keeps the source retrying for
    minutes, and a missing topic (auto-creation is off) makes a query wait forever.
    """
    jvm = spark.sparkContext._jvm
    props = jvm.java.util.Properties()
    for key, value in spark_kafka_options(kafka).items():
        if key.startswith("kafka."):
            props.setProperty(key.removeprefix("kafka."), value)
    props.setProperty("request.timeout.ms", str(timeout_seconds * 1000))
    props.setProperty("default.api.timeout.ms", str(timeout_seconds * 1000))
    seconds = jvm.java.util.concurrent.TimeUnit.SECONDS
    admin = jvm.org.apache.kafka.clients.admin.AdminClient.create(props)
    try:
        try:
            names = set(admin.listTopics().names().get(timeout_seconds, seconds))
        except Exception as err:  # noqa: BLE001 - py4j wraps the Java exception
            cause = _root_cause(err)
            raise KafkaUnavailable(
                f"cannot reach Kafka at {kafka.bootstrap_servers} (KAFKA_BOOTSTRAP_SERVERS, "
                f"auth {kafka.auth_mode}) within {timeout_seconds}s: {cause}"
            ) from None
    finally:
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
    """The innermost Java exception of a py4j error, e.g. Kafka's TimeoutException text."""
    java = getattr(err, "java_exception", None)
    while java is not None and java.getCause() is not None:
        java = java.getCause()
    text = java.toString() if java is not None else str(err).splitlines()[0]
    return text[:300]


# --- start-up hygiene ---------------------------------------------------------------------------


class _HadoopFs:
    """The few Hadoop FileSystem calls the job needs, for any lake URI (file, s3a, s3)."""

    def __init__(self, spark: SparkSession, uri: str) -> None:
        self.jvm = spark.sparkContext._jvm
        self.Path = self.jvm.org.apache.hadoop.fs.Path
        self.fs = self.Path(uri).getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())

    def names(self, uri: str) -> list[str]:
        path = self.Path(uri)
        if not self.fs.exists(path):
            return []
        return [status.getPath().getName() for status in self.fs.listStatus(path)]

    def read(self, uri: str) -> str:
        stream = self.fs.open(self.Path(uri))
        try:
            return self.jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
        finally:
            stream.close()

    def files(self, uri: str) -> list[str]:
        path = self.Path(uri)
        if not self.fs.exists(path):
            return []
        found, listing = [], self.fs.listFiles(path, True)
        while listing.hasNext():
            found.append(listing.next().getPath().toString())
        return found

    def delete(self, uri: str) -> None:
        self.fs.delete(self.Path(uri), False)


def _path_part(uri: str) -> str:
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(uri).path).rstrip("/")


def remove_uncommitted_files(spark: SparkSession, job: JobSettings, stream: str, area: str) -> int:
    """Delete data files a crashed batch left behind; returns how many.

    Spark's file sink writes a batch's files, then lists them in ``_spark_metadata``. A driver
    killed in between leaves files that no log lists. Spark ignores them and rewrites the batch
    on restart, but readers that list folders (Athena, Glue, a DuckDB glob) would count those
    rows twice. This runs only when the checkpoint shows an interrupted batch (``offsets/N``
    without ``commits/N``), and only touches ``part-*.parquet`` files the log does not list.
    The job must be the lake's only writer (``scripts/emr_steps.py submit`` refuses a second).
    """
    checkpoint = job.path(LAKE.checkpoints_prefix, stream, area)
    table = job.path(area, stream)
    fs = _HadoopFs(spark, table)
    if not interrupted_batches(
        fs.names(f"{checkpoint}/offsets"), fs.names(f"{checkpoint}/commits")
    ):
        return 0
    log_dir = f"{table}/_spark_metadata"
    committed = {
        _path_part(u)
        for u in committed_uris(fs.names(log_dir), lambda n: fs.read(f"{log_dir}/{n}"))
    }
    removed = 0
    for uri in fs.files(table):
        name = uri.rsplit("/", 1)[-1]
        if "/_spark_metadata/" in uri or not is_data_file(name) or _path_part(uri) in committed:
            continue
        fs.delete(uri)
        removed += 1
        crc = uri[: -len(name)] + f".{name}.crc"  # the local filesystem's checksum, if any
        fs.delete(crc)
    if removed:
        log.warning("%s:%s removed %d files of an interrupted batch", stream, area, removed)
    return removed


# --- write -------------------------------------------------------------------------------------


def _trigger(job: JobSettings) -> dict[str, object]:
    if job.trigger == "availableNow":
        return {"availableNow": True}
    return {"processingTime": job.trigger_interval}


def write_parquet(
    rows: DataFrame, job: JobSettings, area: str, stream: str, partition_by: Sequence[str]
) -> StreamingQuery:
    return (
        rows.writeStream.format("parquet")
        .queryName(f"{stream}:{area}")
        .outputMode("append")
        .option("path", job.path(area, stream))
        .option("checkpointLocation", job.path(LAKE.checkpoints_prefix, stream, area))
        .partitionBy(*partition_by)
        .trigger(**_trigger(job))
        .start()
    )


def start_stream(
    spark: SparkSession, kafka: KafkaSettings, job: JobSettings, contract: Contract
) -> list[StreamingQuery]:
    checked = validate(
        parse_events(read_kafka(spark, kafka, job, contract.stream), contract), contract
    )
    valid = deduplicate(to_lake_rows(checked, contract), contract, job.watermark_delay)
    invalid = to_quarantine_rows(checked)
    return [
        write_parquet(
            valid,
            job,
            LAKE.data_prefix,
            contract.stream,
            [c["name"] for c in LAKE.partition_columns],
        ),
        write_parquet(
            invalid,
            job,
            LAKE.quarantine_prefix,
            contract.stream,
            [c["name"] for c in LAKE.quarantine_partition_columns],
        ),
    ]


# --- progress, metrics, summary ------------------------------------------------------------------


@dataclass
class StreamTotals:
    input_rows: int = 0
    batches: int = 0
    duplicates_dropped: int = 0
    late_rows_dropped: int = 0
    offsets_behind_latest: int | None = None


def offsets_behind_latest(progress: dict) -> int | None:
    """The largest ``maxOffsetsBehindLatest`` of a progress event's Kafka sources, if any."""
    behind = [
        int(v)
        for source in progress.get("sources", [])
        for v in [(source.get("metrics") or {}).get("maxOffsetsBehindLatest")]
        if v is not None
    ]
    return max(behind) if behind else None


@dataclass
class Progress:
    """Totals per query name (``<stream>:<area>``) from Spark's progress events."""

    totals: dict[str, StreamTotals] = field(default_factory=dict)
    last_log: float = 0.0

    def record(self, progress: dict) -> None:
        totals = self.totals.setdefault(progress["name"], StreamTotals())
        totals.batches += 1
        totals.input_rows += int(progress.get("numInputRows", 0))
        for op in progress.get("stateOperators", []):
            totals.late_rows_dropped += int(op.get("numRowsDroppedByWatermark", 0))
            totals.duplicates_dropped += int(
                op.get("customMetrics", {}).get("numDroppedDuplicateRows", 0)
            )
        behind = offsets_behind_latest(progress)
        if behind is not None:
            totals.offsets_behind_latest = behind


class ProgressListener(StreamingQueryListener):
    """Logs a line per stream every ``every`` seconds and publishes the lag metric if asked."""

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
        self.progress.record(doc)
        late = sum(
            int(op.get("numRowsDroppedByWatermark", 0)) for op in doc.get("stateOperators", [])
        )
        if late:
            log.warning(
                "%s: batch %s dropped %d rows older than the watermark (JOB_WATERMARK_DELAY); "
                "see README, 'Watermark and JOB_MAX_OFFSETS_PER_TRIGGER'",
                doc.get("name"),
                doc.get("batchId"),
                late,
            )
        if self.publish:
            try:
                publish_lag_metric(doc, self.region)
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
            log.error("query %s failed: %s", event.id, event.exception)


def format_progress_line(progress: Progress) -> str:
    parts = []
    for name, t in sorted(progress.totals.items()):
        lag = "" if t.offsets_behind_latest is None else f" behind={t.offsets_behind_latest}"
        parts.append(f"{name} rows={t.input_rows} batches={t.batches}{lag}")
    return "; ".join(parts)


def publish_lag_metric(progress: dict, region: str) -> None:
    """``MaxOffsetsBehindLatest`` per stream to CloudWatch (the alarm in infra/ watches it).

    Spark's Kafka source commits no consumer-group offsets, so MSK's own lag metrics stay
    empty for this job; this is the metric the lag alarm uses.
    """
    name = progress.get("name") or ""
    stream, _, area = name.partition(":")
    if area != LAKE.data_prefix:
        return
    behind = offsets_behind_latest(progress)
    if behind is None:
        return
    import boto3

    boto3.client("cloudwatch", region_name=region or None).put_metric_data(
        Namespace=LAKE.metrics_namespace,
        MetricData=[
            {
                "MetricName": LAKE.lag_metric,
                "Dimensions": [{"Name": LAKE.metrics_dimension, "Value": stream}],
                "Value": float(behind),
                "Unit": "Count",
            }
        ],
    )


def summary(progress: Progress) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for stream in STREAMS:
        data = progress.totals.get(f"{stream}:{LAKE.data_prefix}", StreamTotals())
        bad = progress.totals.get(f"{stream}:{LAKE.quarantine_prefix}", StreamTotals())
        out[stream] = {
            "read": data.input_rows,
            "quarantined_read": bad.input_rows,
            "duplicates_dropped": data.duplicates_dropped,
            "late_rows_dropped": data.late_rows_dropped,
        }
    return out


# --- main ----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Smart City streaming job (Kafka -> Parquet lake)")
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
    parser.add_argument("--streams", default=",".join(STREAMS), help="comma-separated subset")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> tuple[KafkaSettings, JobSettings, list[str]]:
    kafka = KafkaSettings.from_env()
    job = JobSettings.from_env()
    kafka = replace(
        kafka,
        bootstrap_servers=args.bootstrap_servers or kafka.bootstrap_servers,
        auth_mode=args.auth_mode or kafka.auth_mode,
    )
    job = replace(
        job,
        lake_uri=args.lake_uri or job.lake_uri,
        trigger="availableNow" if args.available_now else job.trigger,
        trigger_interval=args.trigger_interval or job.trigger_interval,
        timeout_seconds=args.timeout_seconds or job.timeout_seconds,
    )
    streams = [s.strip() for s in args.streams.split(",") if s.strip()]
    unknown = sorted(set(streams) - set(STREAMS))
    if unknown or not streams:
        raise SettingsError(
            f"--streams must name some of {', '.join(STREAMS)}; got {args.streams!r}"
        )
    return kafka, job, streams


def build_session(job: JobSettings) -> SparkSession:
    return (
        SparkSession.builder.appName("smartcity-streaming-job")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(job.shuffle_partitions))
        .config("spark.sql.streaming.stopGracefullyOnShutdown", "true")
        .getOrCreate()
    )


def run(
    spark: SparkSession, kafka: KafkaSettings, job: JobSettings, streams: Sequence[str]
) -> Progress:
    progress = Progress()
    if job.remove_uncommitted_files:
        for stream in streams:
            for area in (LAKE.data_prefix, LAKE.quarantine_prefix):
                remove_uncommitted_files(spark, job, stream, area)
    spark.streams.addListener(
        ProgressListener(progress, publish=job.publish_metrics, region=kafka.aws_region)
    )
    queries = [q for s in streams for q in start_stream(spark, kafka, job, CONTRACTS[s])]
    log.info(
        "started %d queries for %s; lake %s; trigger %s",
        len(queries),
        ", ".join(streams),
        job.lake_uri,
        job.trigger,
    )

    stopping = {"signal": None}

    def on_signal(signum, _frame):
        stopping["signal"] = signum

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    deadline = time.monotonic() + job.timeout_seconds if job.timeout_seconds else None
    try:
        while any(q.isActive for q in queries):
            for q in queries:
                if q.exception() is not None:
                    raise RuntimeError(f"query {q.name} failed: {q.exception()}")
            if stopping["signal"] is not None:
                log.info(
                    "signal %s: stopping queries after their current batch", stopping["signal"]
                )
                break
            if deadline is not None and time.monotonic() > deadline:
                log.info("JOB_TIMEOUT_SECONDS reached: stopping queries")
                break
            time.sleep(0.5)
    finally:
        for q in queries:
            if q.isActive:
                q.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    for q in queries:
        if q.exception() is not None:
            raise RuntimeError(f"query {q.name} failed: {q.exception()}")
    return progress


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # py4j logs every listener callback at INFO; the job's progress lines say what matters.
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        kafka, job, streams = settings_from(parse_args(argv))
    except SettingsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    spark = build_session(job)
    spark.sparkContext.setLogLevel("WARN")
    started = time.monotonic()
    try:
        check_kafka(spark, kafka, streams)
    except KafkaUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        spark.stop()
        return 2
    progress = run(spark, kafka, job, streams)
    result = summary(progress)
    log.info("summary after %.1fs: %s", time.monotonic() - started, format_progress_line(progress))
    # One machine-readable line for operators and scripts.
    print("JOB_SUMMARY " + json.dumps(result, sort_keys=True), flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
