"""The batch ceiling: the job's own work on the same events, as one Spark batch job.

Spark ``local[2]`` with the job's settings (2 GB driver, UTC, the job's shuffle partitions,
constraint propagation off) and the same Iceberg catalog (JDBC on SQLite, ``file://``
warehouse, tables made by ``emr_jobs.iceberg.ensure_tables``). For each stream it reads the
benchmark's JSON lines as Kafka-shaped rows, runs the job's ``parse_events`` and ``validate``
once (persisted), and appends ``to_lake_rows`` to the stream's table and ``to_quarantine_rows``
to its quarantine table, each append tagged like the job's. What it leaves out is what makes the
job a streaming job: Kafka, the micro-batch machinery, the per-batch statistics and the
deduplication against the table.

The JVM is warmed first: the same pass runs once over ``--warmup-input`` (by default the input
itself) into a separate namespace and is reported as ``cold``; then ``--passes`` timed passes
over ``--input`` follow, and the ceiling is their median.

    python -m scripts.bench.batch_ceiling --input DIR --lake DIR [--warmup-input DIR]
        [--passes 1] [--event-log DIR]

Prints ``BENCH_BATCH {"rows": ..., "seconds": ..., "passes": [...], "warmup_rows": ...,
"cold_seconds": ..., "steps": {table: seconds}, "session_seconds": ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")

WARM_DATABASE = "bench_warmup"


def metrics_dir(event_log: Path) -> Path:
    return event_log.parent / f"{event_log.name}-metrics"


def session(lake: Path, event_log: Path | None):
    """A session configured like the job's (``emr_jobs.job.build_session``) plus the jars and
    master ``scripts.run_job`` gives it."""
    from pyspark.sql import SparkSession

    from emr_jobs.iceberg import spark_catalog_conf
    from emr_jobs.settings import JobSettings
    from scripts.run_job import LOG4J_CONFIG, job_jars

    job = JobSettings(lake_uri=lake.resolve().as_uri())
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("smartcity-bench-batch-ceiling")
        .config("spark.driver.memory", "2g")
        .config(
            "spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={LOG4J_CONFIG.as_uri()}"
        )
        .config("spark.jars", ",".join(str(j) for j in job_jars()))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(job.shuffle_partitions))
        .config("spark.sql.constraintPropagation.enabled", "false")
    )
    if event_log is not None:
        from scripts.bench.spark_profile import event_log_conf, metrics_conf

        conf = {**event_log_conf(event_log), **metrics_conf(metrics_dir(event_log))}
        for key, value in conf.items():
            builder = builder.config(key, value)
    for key, value in spark_catalog_conf(job).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark, job


def one_pass(spark, job, sources: dict[str, Path], batch_id: int) -> dict[str, float]:
    """Parse, validate and append every stream's file once; returns the seconds each table's
    append took (the first one includes reading and checking the stream)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from emr_jobs.core.contracts import CONTRACTS, LAKE
    from emr_jobs.core.settings import duration_seconds
    from emr_jobs.transforms import (
        EventTimeBounds,
        parse_events,
        to_lake_rows,
        to_quarantine_rows,
        validate,
        with_ingest_time,
    )

    bounds = EventTimeBounds(
        max_future_seconds=duration_seconds(job.max_future),
        floor=job.event_time_floor.replace("T", " ").removesuffix("Z"),
    )
    tags = {
        f"snapshot-property.{LAKE.query_id_property}": "batch-ceiling",
        f"snapshot-property.{LAKE.batch_id_property}": str(batch_id),
    }
    steps: dict[str, float] = {}
    previous = time.perf_counter()
    stamp = spark.createDataFrame([(None,)], "ingestTime timestamp").select(
        F.current_timestamp().alias("ingestTime")
    )
    for stream, source in sources.items():
        contract = CONTRACTS[stream]
        kafka_rows = spark.read.text(str(source)).select(
            F.lit(None).cast("binary").alias("key"),
            F.col("value").cast("binary").alias("value"),
            F.lit(f"bench-{stream}").alias("topic"),
            F.lit(0).alias("partition"),
            F.monotonically_increasing_id().alias("offset"),
            F.current_timestamp().alias("timestamp"),
        )
        checked = validate(parse_events(kafka_rows, contract), contract, bounds).persist(
            StorageLevel.MEMORY_AND_DISK
        )
        try:
            for table, rows in (
                (LAKE.data_table(stream), to_lake_rows(checked, contract)),
                (LAKE.quarantine_table(stream), to_quarantine_rows(checked)),
            ):
                with_ingest_time(rows, stamp).writeTo(job.table(table)).options(**tags).append()
                steps[table] = time.perf_counter() - previous
                previous = time.perf_counter()
        finally:
            checked.unpersist()
    return steps


def _sources(folder: Path) -> dict[str, Path]:
    from emr_jobs.core.contracts import STREAMS

    paths = {s: folder / f"{s}.jsonl" for s in STREAMS}
    return {s: p for s, p in paths.items() if p.exists() and p.stat().st_size}


def _rows(sources: dict[str, Path]) -> int:
    rows = 0
    for path in sources.values():
        with path.open("rb") as fh:
            rows += sum(1 for _ in fh)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=Path, required=True, help="folder of <stream>.jsonl files")
    parser.add_argument("--lake", type=Path, required=True, help="a fresh lake folder")
    parser.add_argument("--warmup-input", type=Path, help="folder for the untimed warm-up pass")
    parser.add_argument("--passes", type=int, default=1, help="timed passes after the warm-up")
    parser.add_argument("--event-log", type=Path, help="write Spark's event log here")
    args = parser.parse_args(argv)

    from emr_jobs.iceberg import ensure_tables, table_specs

    began = time.perf_counter()
    args.lake.mkdir(parents=True, exist_ok=True)
    spark, job = session(args.lake, args.event_log)
    sources = _sources(args.input)
    warm_sources = _sources(args.warmup_input or args.input)
    warm = job.updated(database=WARM_DATABASE)
    for settings in (warm, job):
        ensure_tables(spark, settings, table_specs(list(sources)))
    session_seconds = time.perf_counter() - began
    cold = one_pass(spark, warm, warm_sources, 0)
    passes = [one_pass(spark, job, sources, i) for i in range(args.passes)]
    spark.stop()
    totals = [sum(p.values()) for p in passes]
    print(
        "BENCH_BATCH "
        + json.dumps(
            {
                "rows": _rows(sources),
                "seconds": statistics.median(totals),
                "passes": totals,
                "steps": passes[0],
                "warmup_rows": _rows(warm_sources),
                "cold_seconds": sum(cold.values()),
                "session_seconds": session_seconds,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
