"""The batch ceiling: a Spark batch job that turns the benchmark's events from JSON lines into
Parquet with the contracts' schema (``emr_jobs.transforms.spark_schema``), partitioned by date
and hour like the lake. It runs with the job's Spark settings (``local[2]``, 2 GB driver, UTC,
the job's shuffle partitions) in a fresh JVM, so it is the most this machine can do for the same
rows: no Kafka, no validation, no deduplication.

    python -m scripts.bench.batch_ceiling --input DIR --output DIR

Prints ``BENCH_BATCH {"seconds": ..., "rows": ..., "session_seconds": ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=Path, required=True, help="folder of <stream>.jsonl files")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--event-log", type=Path, help="write Spark's event log here")
    args = parser.parse_args(argv)

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from emr_jobs.contracts import CONTRACTS, STREAMS
    from emr_jobs.settings import JobSettings
    from emr_jobs.transforms import spark_schema

    began = time.perf_counter()
    builder = SparkSession.builder
    if args.event_log:
        builder = builder.config("spark.eventLog.enabled", "true").config(
            "spark.eventLog.dir", args.event_log.resolve().as_uri())
    spark = (
        builder.master("local[2]")
        .appName("smartcity-bench-batch-ceiling")
        .config("spark.driver.memory", "2g")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(JobSettings().shuffle_partitions))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    session_seconds = time.perf_counter() - began
    sources = {s: args.input / f"{s}.jsonl" for s in STREAMS}
    sources = {s: p for s, p in sources.items() if p.exists() and p.stat().st_size}
    rows = 0
    for path in sources.values():
        with path.open("rb") as fh:
            rows += sum(1 for _ in fh)
    started = time.perf_counter()
    for stream, source in sources.items():
        contract = CONTRACTS[stream]
        ts = F.col(contract.event_time_field)
        (
            spark.read.schema(spark_schema(contract)).json(str(source))
            .withColumn("date", F.date_format(ts, "yyyy-MM-dd"))
            .withColumn("hour", F.hour(ts))
            .write.mode("overwrite").partitionBy("date", "hour")
            .parquet(str(args.output / stream))
        )
    seconds = time.perf_counter() - started
    spark.stop()
    print("BENCH_BATCH " + json.dumps(
        {"seconds": seconds, "rows": rows, "session_seconds": session_seconds}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
