"""Read the lake as the job committed it, without Spark: pyarrow and DuckDB.

Spark's file sink records every committed file in ``<table>/_spark_metadata``. A batch that
crashed before its commit can leave files behind that are not in that log; Spark ignores them,
and so must every other reader. :func:`committed_files` returns exactly the committed ones.

Lakes on S3 or any S3-compatible store (``s3://`` or ``s3a://`` URIs: MinIO, moto's S3 server)
are read the same way through pyarrow's S3 filesystem: see :func:`s3_filesystem` and
:func:`committed_s3_files`. Credentials come from the default AWS chain, never from arguments.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.dataset as ds
from pyarrow import fs as pafs

from emr_jobs.contracts import LAKE, STREAMS
from emr_jobs.sink_log import committed_uris


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
    return _sink_log_files(
        (entry.name for entry in log_dir.iterdir()),
        lambda name: (log_dir / name).read_text(encoding="utf-8"),
        lambda uri: str(_local_path(uri)),
    )


def _sink_log_files(
    names: Iterable[str], read: Callable[[str], str], to_path: Callable[[str], str]
) -> list[str]:
    """The files a sink log lists as committed, as paths ``to_path`` makes of their URIs."""
    return sorted(to_path(uri) for uri in committed_uris(names, read))


def table_uri(lake_uri: str, area: str, stream: str) -> str:
    return "/".join([lake_uri.rstrip("/"), area, stream])


def read_table(
    lake_uri: str, area: str, stream: str, *, filesystem: pafs.FileSystem | None = None
) -> pa.Table | None:
    """The committed rows of one table (with its hive partitions), or None when empty.

    For an ``s3://``/``s3a://`` lake, ``filesystem`` is the S3 filesystem to read it with
    (default: :func:`s3_filesystem` from the environment).
    """
    uri = table_uri(lake_uri, area, stream)
    if is_s3_uri(uri):
        filesystem = filesystem or s3_filesystem()
        files = committed_s3_files(uri, filesystem)
        root = _s3_path(uri)
    else:
        files = committed_files(uri)
        root = str(_local_path(uri))
    if not files:
        return None
    dataset = ds.dataset(
        files, format="parquet", partitioning="hive", partition_base_dir=root, filesystem=filesystem
    )
    return dataset.to_table()


def count_rows(
    lake_uri: str, area: str, stream: str, *, filesystem: pafs.FileSystem | None = None
) -> int:
    table = read_table(lake_uri, area, stream, filesystem=filesystem)
    return 0 if table is None else table.num_rows


def lake_counts(
    lake_uri: str, *, filesystem: pafs.FileSystem | None = None
) -> dict[str, dict[str, int]]:
    return {
        s: {
            "written": count_rows(lake_uri, LAKE.data_prefix, s, filesystem=filesystem),
            "quarantined": count_rows(lake_uri, LAKE.quarantine_prefix, s, filesystem=filesystem),
        }
        for s in STREAMS
    }


# --- lakes on S3 or an S3-compatible store (s3://, s3a://) ---------------------------------------

S3_SCHEMES = ("s3", "s3a")


def is_s3_uri(uri: str) -> bool:
    return urlparse(uri).scheme in S3_SCHEMES


def _s3_path(uri: str) -> str:
    """``s3a://bucket/key`` -> ``bucket/key``, the path form pyarrow's S3 filesystem uses."""
    parsed = urlparse(uri)
    if parsed.scheme not in S3_SCHEMES or not parsed.netloc:
        raise ValueError(f"not an s3:// or s3a:// URI: {uri!r}")
    return "/".join(p for p in [parsed.netloc, unquote(parsed.path).strip("/")] if p)


def s3_filesystem(endpoint_url: str | None = None, region: str | None = None) -> pafs.S3FileSystem:
    """pyarrow's S3 filesystem for AWS S3 or any S3-compatible endpoint.

    ``endpoint_url`` (e.g. ``http://localhost:9000`` for the compose stack's MinIO) defaults to
    ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``; unset means AWS S3 itself. A custom endpoint
    is addressed path-style. Credentials come from the default AWS chain (environment,
    profile, instance or task role); they are never passed in here.
    """
    endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get(
        "AWS_ENDPOINT_URL"
    )
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    options: dict[str, object] = {}
    if region:
        options["region"] = region
    if endpoint_url:
        parsed = urlparse(endpoint_url if "://" in endpoint_url else f"https://{endpoint_url}")
        options.update(endpoint_override=parsed.netloc, scheme=parsed.scheme)
    return pafs.S3FileSystem(**options)


def committed_s3_files(table_uri: str, filesystem: pafs.FileSystem) -> list[str]:
    """``bucket/key`` paths of the Parquet files the file sink committed under ``table_uri``."""
    log_dir = _s3_path(table_uri) + "/_spark_metadata"
    infos = filesystem.get_file_info(pafs.FileSelector(log_dir, allow_not_found=True))
    names = [i.base_name for i in infos if i.type == pafs.FileType.File]

    def read(name: str) -> str:
        with filesystem.open_input_stream(f"{log_dir}/{name}") as stream:
            return stream.read().decode("utf-8")

    return _sink_log_files(names, read, _s3_path)


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
