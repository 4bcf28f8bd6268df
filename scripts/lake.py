"""Read the lake as the job committed it, without Spark: pyarrow and DuckDB.

Spark's file sink records every committed file in ``<table>/_spark_metadata``. A batch that
crashed before its commit can leave files behind that are not in that log; Spark ignores them,
and so must every other reader. :func:`committed_files` returns exactly the committed ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.dataset as ds

from emr_jobs.contracts import LAKE, STREAMS


def _local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"only file:// lakes are read here, got {uri!r}")
    return Path(unquote(parsed.path))


def committed_files(table_uri: str) -> list[str]:
    """Local paths of the Parquet files the file sink committed under ``table_uri``."""
    log_dir = _local_path(table_uri) / "_spark_metadata"
    if not log_dir.is_dir():
        return []
    batches: dict[int, Path] = {}
    for entry in log_dir.iterdir():
        name = entry.name
        if name.startswith(".") or name.endswith(".tmp"):
            continue
        batch = name.removesuffix(".compact")
        if batch.isdigit():
            # A compact file holds everything up to and including its batch.
            if name.endswith(".compact") or int(batch) not in batches:
                batches[int(batch)] = entry
    compacts = [b for b, p in batches.items() if p.name.endswith(".compact")]
    start = max(compacts) if compacts else -1
    files: dict[str, bool] = {}
    for batch in sorted(b for b in batches if b >= start):
        lines = batches[batch].read_text(encoding="utf-8").splitlines()
        for line in lines[1:]:  # first line is the log version, e.g. "v1"
            if not line.strip():
                continue
            entry = json.loads(line)
            path = str(_local_path(unquote(entry["path"])))
            if entry.get("action", "add") == "add":
                files[path] = True
            else:
                files.pop(path, None)
    return sorted(files)


def table_uri(lake_uri: str, area: str, stream: str) -> str:
    return "/".join([lake_uri.rstrip("/"), area, stream])


def read_table(lake_uri: str, area: str, stream: str) -> pa.Table | None:
    """The committed rows of one table (with its hive partitions), or None when empty."""
    files = committed_files(table_uri(lake_uri, area, stream))
    if not files:
        return None
    root = str(_local_path(table_uri(lake_uri, area, stream)))
    dataset = ds.dataset(files, format="parquet", partitioning="hive", partition_base_dir=root)
    return dataset.to_table()


def count_rows(lake_uri: str, area: str, stream: str) -> int:
    table = read_table(lake_uri, area, stream)
    return 0 if table is None else table.num_rows


def lake_counts(lake_uri: str) -> dict[str, dict[str, int]]:
    return {
        s: {
            "written": count_rows(lake_uri, LAKE.data_prefix, s),
            "quarantined": count_rows(lake_uri, LAKE.quarantine_prefix, s),
        }
        for s in STREAMS
    }


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


def example_query(lake_uri: str, sql: str = EXAMPLE_QUERY) -> str:
    """Average speed per vehicle with DuckDB over the committed files; returns a text table."""
    import duckdb

    vehicle = read_table(lake_uri, LAKE.data_prefix, "vehicle")
    if vehicle is None:
        return "(the vehicle table is empty)"
    con = duckdb.connect()
    con.register("vehicle", vehicle)
    result = con.execute(sql)
    names = [d[0] for d in result.description]
    rows = result.fetchall()
    widths = [max(len(str(x)) for x in [n, *[r[i] for r in rows]]) for i, n in enumerate(names)]
    lines = ["  ".join(str(n).ljust(w) for n, w in zip(names, widths, strict=True))]
    lines += ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)
