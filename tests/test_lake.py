"""The Iceberg lake in-process: tables from contracts, the exactly-once guard, schema evolution,
maintenance and the catalog readers (pyiceberg -> Arrow -> DuckDB), on real Iceberg tables."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from pyspark.sql import functions as F

from emr_jobs.core.contracts import CONTRACTS, LAKE, STREAMS, Field
from emr_jobs.iceberg import CommitLog, LakeSchemaError, data_spec, ensure_tables, table_specs
from emr_jobs.transforms import parse_events, to_lake_rows, validate, with_ingest_time
from producer.simulator import SimulationOptions, simulate
from scripts import lake

VEHICLE = CONTRACTS["vehicle"]
CLOSED_HOUR = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


@functools.cache
def _template() -> dict:
    """A real simulated vehicle event: the tests change only id, device and time."""
    return next(
        e.payload for e in simulate(SimulationOptions(vehicles=1, seed=1)) if e.stream == "vehicle"
    )


def vehicle_event(i: int, at: datetime, **change) -> dict:
    doc = {
        **_template(),
        "id": f"v-{i:05d}",
        "deviceId": f"vehicle-{i % 3:05d}",
        "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }
    doc.update(change)
    return doc


def lake_rows(session, events: list[dict], first_offset: int = 0):
    """Events -> data-table rows through the job's own transforms."""
    kafka = session.createDataFrame(
        [
            (b"k", json.dumps(e).encode(), "vehicle_data", 0, first_offset + i, datetime.now(UTC))
            for i, e in enumerate(events)
        ],
        "key binary, value binary, topic string, partition int, offset long, timestamp timestamp",
    )
    checked = validate(parse_events(kafka, VEHICLE), VEHICLE)
    bad = checked.where(F.col("reason").isNotNull()).select("reason").collect()
    assert not bad, bad
    stamp = session.createDataFrame([(datetime.now(UTC),)], "ingestTime timestamp")
    return with_ingest_time(to_lake_rows(checked, VEHICLE), stamp)


def test_every_table_is_created_from_the_contracts_with_hidden_partitions(iceberg):
    session, job = iceberg
    changes = ensure_tables(session, job, table_specs(STREAMS))
    assert changes == {name: ["created"] for name in LAKE.tables(STREAMS)}
    catalog = lake.catalog(job)
    for stream in STREAMS:
        table = catalog.load_table((job.database, stream))
        contract = CONTRACTS[stream]
        expected = [*contract.field_names, *[c["name"] for c in LAKE.metadata_columns]]
        assert [f.name for f in table.schema().fields] == expected
        [partition] = table.spec().fields
        assert str(partition.transform) == "hour"
        assert table.schema().find_field(partition.source_id).name == contract.event_time_field
        assert table.format_version == 2
        # Hadoop writes file:/path for file:///path: the same place.
        assert urlparse(table.location()).path == urlparse(job.table_location(stream)).path
    quarantine = catalog.load_table((job.database, "vehicle_quarantine"))
    assert [f.name for f in quarantine.schema().fields] == [
        c["name"] for c in LAKE.quarantine_columns
    ]
    assert str(quarantine.spec().fields[0].transform) == "day"
    # A second start-up changes nothing.
    assert ensure_tables(session, job, table_specs(STREAMS)) == {
        name: [] for name in LAKE.tables(STREAMS)
    }


def test_a_replayed_batch_skips_the_tables_that_already_hold_it(iceberg):
    session, job = iceberg
    ensure_tables(session, job, [data_spec(VEHICLE)])
    rows = lake_rows(session, [vehicle_event(i, CLOSED_HOUR) for i in range(5)])
    first = CommitLog(session, job, "query-a", ["vehicle"]).load()
    assert first.committed == {"vehicle": None}
    assert first.append("vehicle", 0, rows) is True
    assert first.append("vehicle", 1, rows.limit(2)) is True

    # A restart reads the last batch from the snapshots and skips a replay of batch 1...
    restarted = CommitLog(session, job, "query-a", ["vehicle"]).load()
    assert restarted.committed == {"vehicle": 1}
    assert restarted.append("vehicle", 1, rows.limit(2)) is False
    assert restarted.append("vehicle", 2, rows.limit(1)) is True
    # ...while another query (a new checkpoint) starts from nothing.
    assert CommitLog(session, job, "query-b", ["vehicle"]).load().committed == {"vehicle": None}

    table = lake.catalog(job).load_table((job.database, "vehicle"))
    assert table.scan().count() == 5 + 2 + 1
    tags = [s["batch"] for s in lake.snapshots("vehicle", job)]
    assert tags == ["0", "1", "2"]  # one snapshot per written batch (creating makes none)


def test_a_contract_gaining_an_optional_field_adds_the_column_and_old_rows_read_null(iceberg):
    session, job = iceberg
    ensure_tables(session, job, [data_spec(VEHICLE)])
    CommitLog(session, job, "q", ["vehicle"]).load().append(
        "vehicle", 0, lake_rows(session, [vehicle_event(i, CLOSED_HOUR) for i in range(3)])
    )
    v2 = dataclasses.replace(
        VEHICLE,
        version=2,
        fields=(*VEHICLE.fields, Field("tyrePressureBar", "double", False, "Tyre pressure")),
    )
    changes = ensure_tables(session, job, [data_spec(v2)])
    assert changes == {"vehicle": ["added column tyrePressureBar"]}

    table = lake.read_table("vehicle", job)
    assert "tyrePressureBar" in table.column_names
    assert table.column("tyrePressureBar").to_pylist() == [None, None, None]
    assert table.schema.field("tyrePressureBar").nullable


def test_a_column_whose_type_changed_stops_start_up_naming_table_and_column(iceberg):
    session, job = iceberg
    ensure_tables(session, job, [data_spec(VEHICLE)])
    fields = tuple(
        dataclasses.replace(f, type="string") if f.name == "speed" else f for f in VEHICLE.fields
    )
    with pytest.raises(LakeSchemaError, match=r"vehicle\.speed is double .* says string"):
        ensure_tables(session, job, [data_spec(dataclasses.replace(VEHICLE, fields=fields))])


def test_readers_see_committed_snapshots_and_the_lake_as_of_a_time(iceberg):
    session, job = iceberg
    ensure_tables(session, job, [data_spec(VEHICLE)])
    log = CommitLog(session, job, "q", ["vehicle"]).load()
    log.append("vehicle", 0, lake_rows(session, [vehicle_event(i, CLOSED_HOUR) for i in range(4)]))
    between = datetime.now(UTC)
    log.append(
        "vehicle", 1, lake_rows(session, [vehicle_event(i, CLOSED_HOUR) for i in range(4, 10)])
    )

    assert lake.read_table("vehicle", job).num_rows == 10
    assert lake.read_table("vehicle", job, as_of=between).num_rows == 4
    before_any = datetime(2000, 1, 1, tzinfo=UTC)
    assert lake.read_table("vehicle", job, as_of=before_any).num_rows == 0
    result = lake.query("SELECT count(DISTINCT id) AS n FROM vehicle", job).fetchall()
    assert result == [(10,)]
    old = lake.query("SELECT count(*) FROM vehicle", job, as_of=between).fetchall()
    assert old == [(4,)]


def canonical(rows: list[dict]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)


def _data_files(job, name: str) -> int:
    table = lake.catalog(job).load_table((job.database, name))
    return len(table.inspect.files())


def test_maintenance_compacts_closed_hours_expires_snapshots_and_keeps_every_row(iceberg):
    """About 30 micro-batches of small files, as the streaming job leaves them: afterwards the
    closed hours hold few files, the snapshot count is bounded and every row is still there."""
    session, job = iceberg
    ensure_tables(session, job, table_specs(STREAMS))
    log = CommitLog(session, job, "q", ["vehicle"]).load()
    for batch in range(30):
        events = [
            vehicle_event(batch * 10 + i, CLOSED_HOUR + timedelta(minutes=batch, seconds=i))
            for i in range(10)
        ]
        log.append("vehicle", batch, lake_rows(session, events, first_offset=batch * 10))
    # The hour being written now: compaction must leave its files alone.
    now = datetime.now(UTC)
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    current = [vehicle_event(900 + i, max(now - timedelta(seconds=i), this_hour)) for i in range(3)]
    for i, event in enumerate(current):
        log.append("vehicle", 30 + i, lake_rows(session, [event], first_offset=900 + i))

    before_rows = canonical(lake.read_table("vehicle", job).to_pylist())
    files_before = _data_files(job, "vehicle")
    snapshots_before = len(lake.snapshots("vehicle", job))
    assert files_before == 33 and snapshots_before == 33

    # Files no snapshot lists (a crashed writer's leftovers): one old, one that may be in flight.
    data_dir = Path(urlparse(job.table_location("vehicle")).path) / "data"
    old_orphan, new_orphan = data_dir / "orphan-old.parquet", data_dir / "orphan-new.parquet"
    for orphan in (old_orphan, new_orphan):
        orphan.write_bytes(b"not referenced by any snapshot")
    four_days_ago = (now - timedelta(days=4)).timestamp()
    os.utime(old_orphan, (four_days_ago, four_days_ago))

    result = lake.maintain(session, job, retain=timedelta(0), retain_last=5, now=now)

    files_after = _data_files(job, "vehicle")
    after_rows = canonical(lake.read_table("vehicle", job).to_pylist())
    assert after_rows == before_rows, "compaction must keep every row exactly"
    assert result["vehicle"]["files_rewritten"] == 30
    assert files_after == 1 + 3, "one file for the closed hour, the open hour's three untouched"
    assert len(lake.snapshots("vehicle", job)) <= 5
    assert result["vehicle"]["snapshots_expired"] > 0
    # The exactly-once guard still finds the last batch after compaction and expiry.
    assert CommitLog(session, job, "q", ["vehicle"]).load().committed == {"vehicle": 32}
    assert set(result) == set(LAKE.tables(STREAMS))
    assert not old_orphan.exists() and new_orphan.exists(), "only orphans older than 3 days go"
    assert result["vehicle"]["orphans_removed"] >= 1
