"""Read and maintain the Iceberg lake through its catalog: pyiceberg to Arrow, DuckDB on top.

    python -m scripts.lake counts                         # rows per table
    python -m scripts.lake query "SELECT ... FROM vehicle" [--as-of 2026-11-30T10:00:00Z]
    python -m scripts.lake snapshots vehicle              # the table's history
    python -m scripts.lake maintain                       # compact, expire, remove orphans

Readers see only committed snapshots: a batch that crashed half-way is invisible. The catalog
comes from the job's own settings (``LAKE_URI``, ``LAKE_CATALOG``, ``LAKE_CATALOG_URI``,
``LAKE_DATABASE``), so this reads exactly what the job wrote, locally (SQLite catalog), on an
S3-compatible store, or on AWS (Glue). S3 credentials come from the default AWS chain.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypedDict
from urllib.parse import urlparse

import pyarrow as pa

from emr_jobs.core.contracts import ALL_STREAMS, LAKE
from emr_jobs.core.paths import REPO_ROOT
from emr_jobs.core.settings import SettingsError
from emr_jobs.settings import JobSettings

log = logging.getLogger("scripts.lake")


def catalog(job: JobSettings | None = None):
    """The pyiceberg catalog the job writes to (``SqlCatalog`` on SQLite, or ``GlueCatalog``)."""
    job = job or JobSettings.from_env()
    props = _s3_properties()
    if job.catalog == "glue":
        from pyiceberg.catalog.glue import GlueCatalog

        return GlueCatalog(LAKE.catalog, **props)
    from pyiceberg.catalog.sql import SqlCatalog

    path = job.catalog_uri.removeprefix("jdbc:sqlite:")
    if not Path(path).is_file():
        raise SettingsError(f"no lake catalog at {path} (LAKE_CATALOG_URI); run the job first")
    return SqlCatalog(
        LAKE.catalog,
        uri=f"sqlite:///{path}",
        warehouse=f"{job.lake_uri.rstrip('/')}/{LAKE.tables_prefix}",
        init_catalog_tables="false",
        **props,
    )


def _s3_properties() -> dict[str, str]:
    """pyiceberg's S3 settings from the standard AWS variables (an endpoint for MinIO or moto)."""
    props: dict[str, str] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        props["s3.endpoint"] = endpoint
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        props["s3.region"] = region
    return props


def _as_of_millis(as_of: str | datetime) -> int:
    moment = datetime.fromisoformat(as_of) if isinstance(as_of, str) else as_of
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def read_table(
    name: str,
    job: JobSettings | None = None,
    *,
    snapshot_id: int | None = None,
    as_of: str | datetime | None = None,
    row_filter: str | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """One table as Arrow: its current snapshot, a given snapshot, or the lake as of a time."""
    job = job or JobSettings.from_env()
    table = catalog(job).load_table((job.database, name))
    if as_of is not None:
        snapshot = table.snapshot_as_of_timestamp(_as_of_millis(as_of))
        if snapshot is None:
            return table.schema().as_arrow().empty_table()
        snapshot_id = snapshot.snapshot_id
    options: dict[str, object] = {}
    if row_filter:
        options["row_filter"] = row_filter
    if columns:
        options["selected_fields"] = tuple(columns)
    return table.scan(snapshot_id=snapshot_id, **options).to_arrow()


class Snapshot(TypedDict):
    """One snapshot of a table, as :func:`snapshots` lists them."""

    snapshot_id: int
    committed: datetime
    operation: str
    batch: str | None  # the job's batch id tag; None for snapshots the job did not write
    added_records: int
    data_files: int


def snapshots(name: str, job: JobSettings | None = None) -> list[Snapshot]:
    """The table's snapshots, oldest first: id, time, operation and the job's batch tags."""
    job = job or JobSettings.from_env()
    table = catalog(job).load_table((job.database, name))
    out: list[Snapshot] = []
    for snap in table.snapshots():
        summary = snap.summary.additional_properties if snap.summary else {}
        out.append(
            {
                "snapshot_id": snap.snapshot_id,
                "committed": datetime.fromtimestamp(snap.timestamp_ms / 1000, UTC),
                "operation": snap.summary.operation.value if snap.summary else "",
                "batch": summary.get(LAKE.batch_id_property),
                "added_records": int(summary.get("added-records", 0)),
                "data_files": int(summary.get("total-data-files", 0)),
            }
        )
    return out


def lake_counts(job: JobSettings | None = None) -> dict[str, dict[str, int]]:
    """Rows per stream in its data and quarantine tables, and its rows in ``duplicates``."""
    job = job or JobSettings.from_env()
    cat = catalog(job)
    dups = cat.load_table((job.database, LAKE.duplicates_table)).scan(selected_fields=("stream",))
    per_stream: dict[str, int] = {}
    for value in dups.to_arrow().column("stream").to_pylist():
        per_stream[value] = per_stream.get(value, 0) + 1
    return {
        s: {
            "written": cat.load_table((job.database, LAKE.data_table(s))).scan().count(),
            "quarantined": cat.load_table((job.database, LAKE.quarantine_table(s))).scan().count(),
            "duplicates": per_stream.get(s, 0),
        }
        for s in ALL_STREAMS
    }


def query(
    sql: str,
    job: JobSettings | None = None,
    *,
    as_of: str | datetime | None = None,
    tables: Sequence[str] | None = None,
):
    """Run DuckDB SQL over lake tables (by their names), read through the catalog as Arrow."""
    import duckdb

    job = job or JobSettings.from_env()
    wanted = tables or [t for t in LAKE.tables(ALL_STREAMS) if _mentions(sql, t)]
    con = duckdb.connect()
    for name in wanted:
        con.register(name, read_table(name, job, as_of=as_of))
    return con.execute(sql)


def _mentions(sql: str, table: str) -> bool:
    import re

    return re.search(rf"\b{re.escape(table)}\b", sql) is not None


def format_result(result) -> str:
    names = [d[0] for d in result.description]
    rows = result.fetchall()
    widths = [max(len(str(x)) for x in [n, *[r[i] for r in rows]]) for i, n in enumerate(names)]
    lines = ["  ".join(str(n).ljust(w) for n, w in zip(names, widths, strict=True))]
    lines += ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


EXAMPLE_QUERY = """
SELECT deviceId,
       count(*)                       AS events,
       round(avg(speed), 1)           AS avg_speed_kmh,
       round(max(odometerKm), 1)      AS km_driven,
       min("timestamp")               AS departed,
       max("timestamp")               AS arrived
FROM vehicle
GROUP BY deviceId
ORDER BY deviceId
"""


def example_query(job: JobSettings | None = None, sql: str = EXAMPLE_QUERY) -> str:
    """Average speed per vehicle, DuckDB over the vehicle table's current snapshot."""
    return format_result(query(sql, job, tables=["vehicle"]))


ALERTS_BY_RULE = """
SELECT rule, count(*) AS alerts,
       count(*) FILTER (WHERE severity = 'critical') AS critical,
       min("timestamp") AS first, max("timestamp") AS last
FROM alerts GROUP BY rule ORDER BY alerts DESC, rule
"""

RECENT_ALERTS = """
SELECT "timestamp", severity, rule, message
FROM alerts ORDER BY "timestamp" DESC, id LIMIT 3
"""

SLOWEST_SECTIONS = """
SELECT section, road, count(*) AS minutes,
       round(avg(avgSpeed), 1) AS avg_speed_kmh, max(speedLimit) AS limit_kmh,
       round(100 * avg(avgSpeed) / max(speedLimit)) AS pct_of_limit
FROM road_conditions WHERE avgSpeed IS NOT NULL
GROUP BY section, road ORDER BY pct_of_limit, section LIMIT 5
"""


def alert_report(job: JobSettings | None = None) -> str:
    """Alerts per rule, the three most recent, and the slowest road sections (for make run)."""
    parts = []
    for title, sql, tables in (
        ("Alerts per rule:", ALERTS_BY_RULE, ["alerts"]),
        ("Most recent alerts:", RECENT_ALERTS, ["alerts"]),
        (
            "Slowest road sections (mean speed against the limit):",
            SLOWEST_SECTIONS,
            ["road_conditions"],
        ),
    ):
        result = query(sql, job, tables=tables)
        parts.append(f"{title}\n{format_result(result)}")
    return "\n\n".join(parts)


# --- maintenance ---------------------------------------------------------------------------------


def maintenance_session(job: JobSettings):
    """A local SparkSession with the Iceberg runtime and the job's catalog settings."""
    from pyspark.sql import SparkSession

    from emr_jobs.iceberg import spark_catalog_conf

    jars = sorted((REPO_ROOT / ".cache" / "jars" / "iceberg").glob("*.jar"))
    if urlparse(job.lake_uri).scheme == "s3a":
        jars += sorted((REPO_ROOT / ".cache" / "jars" / "s3a").glob("*.jar"))
    if not jars:
        raise SettingsError("the Iceberg jars are missing in .cache/jars/iceberg; run `make setup`")
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("smartcity-lake-maintenance")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.jars", ",".join(str(j) for j in jars))
    )
    for key, value in spark_catalog_conf(job).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def closed_period_filter(table: str, now: datetime) -> str:
    """Rows of closed hours (data tables) or closed days (quarantine, duplicates) only.

    Compaction never touches the period the job is still writing, so it cannot conflict with
    the streaming appends.
    """
    if table in ALL_STREAMS:
        cutoff = now.replace(minute=0, second=0, microsecond=0)
        column = "timestamp"
    else:
        cutoff = now.replace(hour=0, minute=0, second=0, microsecond=0)
        column = "kafkaTimestamp"
    return f"{column} < TIMESTAMP '{cutoff:%Y-%m-%d %H:%M:%S}'"


def maintain(
    spark,
    job: JobSettings,
    *,
    tables: Sequence[str] | None = None,
    retain: timedelta = timedelta(days=7),
    retain_last: int = 10,
    orphan_age: timedelta = timedelta(days=3),
    now: datetime | None = None,
) -> dict[str, dict[str, int]]:
    """Compact closed periods, expire old snapshots, remove orphan files; counts per table.

    ``retain_last`` keeps at least that many snapshots whatever their age: the job's
    exactly-once guard reads its last batch id from recent snapshots.
    """
    now = now or datetime.now(UTC)
    out: dict[str, dict[str, int]] = {}
    # A lake written by a job that read only some streams lacks the others' tables.
    existing = {r[1] for r in spark.sql(f"SHOW TABLES IN {LAKE.catalog}.{job.database}").collect()}
    for name in tables or [t for t in LAKE.tables(ALL_STREAMS) if t in existing]:
        ident = f"{job.database}.{name}"
        rewrite = spark.sql(
            f"CALL {LAKE.catalog}.system.rewrite_data_files(table => '{ident}', "
            f'where => "{closed_period_filter(name, now)}", '
            "options => map('min-input-files', '2', 'partial-progress.enabled', 'true'))"
        ).first()
        expire = spark.sql(
            f"CALL {LAKE.catalog}.system.expire_snapshots(table => '{ident}', "
            f"older_than => TIMESTAMP '{now - retain:%Y-%m-%d %H:%M:%S}', "
            f"retain_last => {retain_last})"
        ).first()
        orphans = spark.sql(
            f"CALL {LAKE.catalog}.system.remove_orphan_files(table => '{ident}', "
            f"older_than => TIMESTAMP '{now - orphan_age:%Y-%m-%d %H:%M:%S}')"
        ).collect()
        out[name] = {
            "files_rewritten": int(rewrite["rewritten_data_files_count"]),
            "files_added": int(rewrite["added_data_files_count"]),
            "snapshots_expired": int(expire["deleted_manifest_lists_count"]),
            "data_files_deleted": int(expire["deleted_data_files_count"]),
            "orphans_removed": len(orphans),
        }
    return out


# --- command line --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Read and maintain the Iceberg lake.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("counts", help="rows per stream: written, quarantined, duplicates")
    q = sub.add_parser("query", help="DuckDB SQL over the lake's tables (by name)")
    q.add_argument("sql")
    q.add_argument("--as-of", help="read the lake as it was at this time (ISO-8601, UTC)")
    s = sub.add_parser("snapshots", help="a table's snapshots")
    s.add_argument("table")
    m = sub.add_parser("maintain", help="compact closed hours, expire snapshots, remove orphans")
    m.add_argument("--retain-hours", type=float, default=24 * 7, help="snapshot age kept (168)")
    m.add_argument("--retain-last", type=int, default=10, help="snapshots always kept (10)")
    m.add_argument("--orphan-hours", type=float, default=72, help="orphan file age (72)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        job = JobSettings.from_env()
        if args.command == "counts":
            for stream, counts in lake_counts(job).items():
                print(f"{stream:<16}" + "  ".join(f"{k}={v}" for k, v in counts.items()))
        elif args.command == "query":
            print(format_result(query(args.sql, job, as_of=args.as_of)))
        elif args.command == "snapshots":
            for snap in snapshots(args.table, job):
                print("  ".join(f"{k}={v}" for k, v in snap.items()))
        else:
            spark = maintenance_session(job)
            try:
                result = maintain(
                    spark,
                    job,
                    retain=timedelta(hours=args.retain_hours),
                    retain_last=args.retain_last,
                    orphan_age=timedelta(hours=args.orphan_hours),
                )
            finally:
                spark.stop()
            for table, counts in result.items():
                print(f"{table:<28}" + "  ".join(f"{k}={v}" for k, v in counts.items()))
    except SettingsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
