"""The file sink's commit log and the checkpoint's batch state, parsed without Spark."""

from __future__ import annotations

import json

from emr_jobs.sink_log import batch_ids, committed_uris, interrupted_batches, is_data_file


def _log(*entries: tuple[str, str]) -> str:
    return "v1\n" + "\n".join(json.dumps({"path": p, "action": a, "size": 1}) for p, a in entries)


def test_committed_files_are_the_adds_minus_the_deletes_from_the_latest_compaction_on():
    log = {
        "0": _log(("file:///l/a.parquet", "add")),  # superseded by the compaction
        "8": _log(("file:///l/stale.parquet", "add")),
        "9.compact": _log(("file:///l/a.parquet", "add"), ("file:///l/b%20c.parquet", "add")),
        "10": _log(("file:///l/d.parquet", "add"), ("file:///l/a.parquet", "delete")),
        ".10.crc": "binary",
        "11.tmp": "half-written",
    }
    assert committed_uris(log, log.__getitem__) == ["file:///l/b c.parquet", "file:///l/d.parquet"]


def test_an_empty_or_missing_log_commits_nothing():
    assert committed_uris([], lambda name: "") == []


def test_a_batch_with_offsets_but_no_commit_is_interrupted():
    assert interrupted_batches(["0", "1", "2", ".2.crc"], ["0", "1"]) == {2}
    assert interrupted_batches(["0", "1"], ["0", "1"]) == set()
    assert batch_ids(["metadata", "3", "04", ".3.crc"]) == {3, 4}


def test_only_the_sinks_parquet_parts_count_as_data_files():
    assert is_data_file("part-00000-1b2c.c000.snappy.parquet")
    assert not is_data_file(".part-00000-1b2c.c000.snappy.parquet.crc")
    assert not is_data_file("_SUCCESS")
    assert not is_data_file("0.compact")
