"""The job's Glue catalog start-up in a fresh SparkSession, for tests/test_glue_catalog.py.

A separate process because the test session's shared SparkSession cannot take new jars: this one
has Iceberg's Spark runtime and its AWS bundle (GlueCatalog, S3FileIO). It runs what the job
runs at start-up on AWS, ``check_catalog`` and ``ensure_tables``, against moto's server, then
appends one small batch through ``CommitLog``, and writes what it saw as JSON.

    python tests/glue_startup_driver.py '<json: endpoint, bucket, database, region, output>'

Catalog settings are the job's own (``spark_catalog_conf`` for ``LAKE_CATALOG=glue``); only the
endpoints, path-style access and the region are test overrides. Credentials come from the
environment (the test's fake ones).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import types as T  # noqa: E402

from emr_jobs.core.contracts import ALL_STREAMS, LAKE  # noqa: E402
from emr_jobs.iceberg import (  # noqa: E402
    CommitLog,
    check_catalog,
    ensure_tables,
    spark_catalog_conf,
    table_specs,
)
from emr_jobs.settings import JobSettings  # noqa: E402
from emr_jobs.transforms import spark_type  # noqa: E402

JAR_SETS = ("iceberg", "iceberg-aws")
QUERY_ID = "glue-startup-test"
BATCH_ID = 7


def jars() -> list[str]:
    found = [str(j) for s in JAR_SETS for j in sorted((REPO / ".cache/jars" / s).glob("*.jar"))]
    if not any("iceberg-aws-bundle" in j for j in found):
        raise SystemExit("iceberg-aws-bundle missing in .cache/jars/iceberg-aws: run make setup")
    return found


def session(job: JobSettings, endpoint: str, region: str) -> SparkSession:
    prefix = f"spark.sql.catalog.{LAKE.catalog}"
    conf = {
        **spark_catalog_conf(job),
        # Test only: AWS SDK v2 clients of GlueCatalog and S3FileIO talk HTTP to moto.
        f"{prefix}.glue.endpoint": endpoint,
        f"{prefix}.s3.endpoint": endpoint,
        f"{prefix}.s3.path-style-access": "true",
        f"{prefix}.client.region": region,
    }
    builder = (
        SparkSession.builder.master("local[1]")
        .appName("glue-startup-test")
        .config("spark.jars", ",".join(jars()))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.session.timeZone", "UTC")
    )
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def one_duplicate_row(spark: SparkSession, columns: tuple[tuple[str, str], ...]):
    moment = dt.datetime(2026, 1, 5, 12, 30, tzinfo=dt.UTC)
    values = {
        "stream": "gps",
        "eventId": "00000000-0000-4000-8000-000000000001",
        "eventTime": moment,
        "kafkaTopic": "gps_data",
        "kafkaPartition": 0,
        "kafkaOffset": 42,
        "kafkaTimestamp": moment,
        "ingestTime": moment,
    }
    schema = T.StructType([T.StructField(n, spark_type(t), True) for n, t in columns])
    return spark.createDataFrame([tuple(values[n] for n, _ in columns)], schema)


def main() -> None:
    args = json.loads(sys.argv[1])
    job = JobSettings(lake_uri=f"s3://{args['bucket']}", catalog="glue", database=args["database"])
    spark = session(job, args["endpoint"], args["region"])
    result: dict[str, object] = {}
    try:
        check_catalog(spark, job)
        specs = table_specs(ALL_STREAMS)
        result["changes"] = ensure_tables(spark, job, specs)
        result["schemas"] = {
            s.name: {
                f.name: f.dataType.simpleString() for f in spark.table(job.table(s.name)).schema
            }
            for s in specs
        }
        result["partitions"] = {
            s.name: spark.sql(f"SELECT * FROM {job.table(s.name)}.partitions LIMIT 0")
            .schema["partition"]
            .dataType.simpleString()
            for s in specs
        }
        # Everything the job checks passes a second time with nothing left to do.
        result["changes_again"] = ensure_tables(spark, job, specs)

        duplicates = next(s for s in specs if s.name == LAKE.duplicates_table)
        log = CommitLog(spark, job, QUERY_ID, [duplicates.name]).load()
        result["written"] = log.append(
            duplicates.name, BATCH_ID, one_duplicate_row(spark, duplicates.columns)
        )
        summary = spark.sql(
            f"SELECT summary FROM {job.table(duplicates.name)}.snapshots"
        ).collect()[-1]["summary"]
        result["summary"] = dict(summary)
        result["rows"] = spark.table(job.table(duplicates.name)).count()
        # A replay of the same batch after a restart finds it and skips the table.
        again = CommitLog(spark, job, QUERY_ID, [duplicates.name]).load()
        result["replay_written"] = again.append(
            duplicates.name, BATCH_ID, one_duplicate_row(spark, duplicates.columns)
        )
    finally:
        spark.stop()
    Path(args["output"]).write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
