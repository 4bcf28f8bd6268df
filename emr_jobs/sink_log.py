"""Spark's file-sink commit log (``<table>/_spark_metadata``) and checkpoint batch state.

Pure functions over names and texts: the job reads them through Hadoop's FileSystem (any of
``file://``, ``s3a://``, ``s3://``), ``scripts/lake.py`` through the local or an S3 filesystem.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from urllib.parse import unquote


def committed_uris(names: Iterable[str], read: Callable[[str], str]) -> list[str]:
    """The file URIs a sink log lists as committed (added and not deleted since).

    ``names`` are the entry names in ``_spark_metadata`` (``0``, ``1``, ``9.compact``, ...);
    ``read(name)`` returns an entry's text. A compact entry holds everything up to its batch.
    """
    batches: dict[int, str] = {}
    for name in names:
        if name.startswith(".") or name.endswith(".tmp"):
            continue
        batch = name.removesuffix(".compact")
        if batch.isdigit() and (name.endswith(".compact") or int(batch) not in batches):
            batches[int(batch)] = name
    compacts = [b for b, n in batches.items() if n.endswith(".compact")]
    start = max(compacts) if compacts else -1
    files: dict[str, bool] = {}
    for batch in sorted(b for b in batches if b >= start):
        for line in read(batches[batch]).splitlines()[1:]:  # line 1 is the version, "v1"
            if not line.strip():
                continue
            entry = json.loads(line)
            uri = unquote(entry["path"])
            if entry.get("action", "add") == "add":
                files[uri] = True
            else:
                files.pop(uri, None)
    return sorted(files)


def batch_ids(names: Iterable[str]) -> set[int]:
    """Batch ids among checkpoint entry names (``offsets/`` or ``commits/``)."""
    return {int(n) for n in names if n.isdigit()}


def interrupted_batches(offsets: Iterable[str], commits: Iterable[str]) -> set[int]:
    """Batches that were started (``offsets/N``) but never committed (``commits/N``).

    Such a batch may have left data files that its sink log does not list.
    """
    return batch_ids(offsets) - batch_ids(commits)


def is_data_file(name: str) -> bool:
    """A file Spark's Parquet sink writes (``part-….parquet``), as opposed to logs and checksums."""
    return name.startswith("part-") and name.endswith(".parquet")
