"""The job's pure transforms on small batch DataFrames (one shared local SparkSession)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual, assertSchemaEqual

from emr_jobs.core.contracts import CONTRACTS, LAKE
from emr_jobs.transforms import (
    EventTimeBounds,
    flag_duplicates,
    lake_columns,
    parse_events,
    spark_schema,
    to_duplicate_rows,
    to_lake_rows,
    to_quarantine_rows,
    validate,
    with_ingest_time,
)

WEATHER = CONTRACTS["weather"]
KAFKA_TS = dt.datetime(2026, 1, 5, 9, 30)


def weather(event_id: str, minute: int = 0, **change) -> dict:
    doc = {
        "id": event_id,
        "schemaVersion": 1,
        "deviceId": "vehicle-0001",
        "timestamp": f"2026-01-05T08:{minute:02d}:00.000Z",
        "location": {"latitude": 51.75, "longitude": -1.25},
        "temperature": 7.5,
        "weatherCondition": "Rain",
        "precipitation": 1.2,
        "windSpeed": 18.0,
        "humidity": 81.0,
        "airQualityIndex": 35.0,
    }
    doc.update(change)
    return doc


def kafka_rows(spark, values):
    rows = [
        (
            b"vehicle-0001",
            None if v is None else (v if isinstance(v, bytes) else json.dumps(v).encode()),
            "weather_data",
            1,
            100 + i,
            KAFKA_TS,
        )
        for i, v in enumerate(values)
    ]
    return spark.createDataFrame(
        rows,
        "key binary, value binary, topic string, partition int, offset long, timestamp timestamp",
    )


def test_valid_events_become_lake_rows_with_kafka_coordinates(spark):
    checked = validate(
        parse_events(kafka_rows(spark, [weather("e-1", minute=5)]), WEATHER), WEATHER
    )
    actual = to_lake_rows(checked, WEATHER)
    expected = spark.createDataFrame(
        [
            Row(
                id="e-1",
                schemaVersion=1,
                deviceId="vehicle-0001",
                timestamp=dt.datetime(2026, 1, 5, 8, 5),
                location=Row(latitude=51.75, longitude=-1.25),
                temperature=7.5,
                weatherCondition="Rain",
                precipitation=1.2,
                windSpeed=18.0,
                humidity=81.0,
                airQualityIndex=35.0,
                kafkaTopic="weather_data",
                kafkaPartition=1,
                kafkaOffset=100,
                kafkaTimestamp=KAFKA_TS,
            )
        ],
        schema=actual.schema,
    )
    assertDataFrameEqual(actual, expected)
    stamp = spark.createDataFrame([(KAFKA_TS,)], "ingestTime timestamp")
    assert with_ingest_time(actual, stamp).columns == lake_columns(WEATHER)


def test_lake_schema_is_the_contract_schema_plus_metadata(spark):
    checked = validate(parse_events(kafka_rows(spark, [weather("e-1")]), WEATHER), WEATHER)
    rows = to_lake_rows(checked, WEATHER)
    contract_part = rows.select(*WEATHER.field_names)
    assertSchemaEqual(contract_part.schema, spark_schema(WEATHER))


INVALID_UTF8 = b'{"id": "\xff\xfe broken", "schemaVersion": 1}'


def quarantine_row(offset: int, raw: bytes | None, reason: str) -> Row:
    return Row(
        rawValue=None if raw is None else raw.decode("utf-8", errors="replace"),
        rawBytes=None if raw is None else bytearray(raw),
        rawKey="vehicle-0001",
        reason=reason,
        kafkaTopic="weather_data",
        kafkaPartition=1,
        kafkaOffset=offset,
        kafkaTimestamp=KAFKA_TS,
    )


def test_bad_records_go_to_quarantine_with_exact_bytes_readable_text_reason_and_coordinates(
    spark,
):
    hot = json.dumps(weather("hot", humidity=140.0)).encode()
    values = [weather("ok"), b"{not json", hot, None, b"[1, 2]", INVALID_UTF8]
    checked = validate(parse_events(kafka_rows(spark, values), WEATHER), WEATHER)
    actual = to_quarantine_rows(checked)
    expected = spark.createDataFrame(
        [
            quarantine_row(101, b"{not json", "malformed JSON: not a JSON object"),
            quarantine_row(102, hot, "humidity: above maximum 100"),
            quarantine_row(103, None, "empty value"),
            quarantine_row(104, b"[1, 2]", "malformed JSON: not a JSON object"),
            quarantine_row(
                105,
                INVALID_UTF8,
                "deviceId: required; timestamp: required; location: required; "
                "temperature: required; weatherCondition: required; precipitation: required; "
                "windSpeed: required; humidity: required; airQualityIndex: required",
            ),
        ],
        schema=actual.schema,
    )
    assertDataFrameEqual(actual, expected)
    broken = actual.where("kafkaOffset = 105").first()
    assert bytes(broken.rawBytes) == INVALID_UTF8, "the exact bytes are kept"
    assert "\ufffd" in broken.rawValue and broken.rawValue.encode("utf-8"), "text stays UTF-8"
    assert [r.id for r in to_lake_rows(checked, WEATHER).collect()] == ["ok"]
    assert [*actual.columns, "ingestTime"] == [c["name"] for c in LAKE.quarantine_columns]


BOUNDS = EventTimeBounds(max_future_seconds=300, floor="2000-01-01 00:00:00")


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [
        ("9999-12-31T23:59:59.000Z", "timestamp: more than 300s after the Kafka record time"),
        ("2026-01-05T09:36:00.000Z", "timestamp: more than 300s after the Kafka record time"),
        ("1970-01-01T00:00:00.000Z", "timestamp: before 2000-01-01 00:00:00 UTC"),
        ("2026-01-05T09:34:00.000Z", None),  # 4 minutes ahead of Kafka: clock skew, accepted
        ("2003-01-05T09:30:00.000Z", None),  # very late, but valid: written, never dropped
    ],
)
def test_event_time_outside_the_bounds_goes_to_quarantine_and_late_is_valid(
    spark, timestamp, reason
):
    checked = validate(
        parse_events(kafka_rows(spark, [weather("t", timestamp=timestamp)]), WEATHER),
        WEATHER,
        BOUNDS,
    )
    got = checked.first().reason
    if reason is None:
        assert got is None
    else:
        assert got is not None and got.startswith(reason), got
        setting = "JOB_MAX_FUTURE" if "after" in reason else "JOB_EVENT_TIME_FLOOR"
        assert setting in got, "the reason names the setting"


def test_a_newer_schema_version_is_quarantined_and_an_older_one_is_valid(spark):
    import dataclasses

    newer = validate(
        parse_events(kafka_rows(spark, [weather("n", schemaVersion=2)]), WEATHER), WEATHER
    ).first()
    assert newer.reason == "schemaVersion: 2 is newer than this job's contract (1)"
    assert WEATHER.violations(weather("n", schemaVersion=2)) == [newer.reason]
    v2 = dataclasses.replace(WEATHER, version=2)
    older = validate(parse_events(kafka_rows(spark, [weather("o")]), v2), v2).first()
    assert older.reason is None, "an event of an older contract version is still valid"
    zero = validate(
        parse_events(kafka_rows(spark, [weather("z", schemaVersion=0)]), WEATHER), WEATHER
    ).first()
    assert zero.reason == "schemaVersion: below minimum 1"


def test_every_record_lands_in_exactly_one_of_lake_or_quarantine(spark):
    values = [weather(f"e-{i}", humidity=float(i * 30)) for i in range(6)] + [b"", b"null", b"{}"]
    checked = validate(parse_events(kafka_rows(spark, values), WEATHER), WEATHER)
    good = {r.kafkaOffset for r in to_lake_rows(checked, WEATHER).collect()}
    bad = {r.kafkaOffset for r in to_quarantine_rows(checked).collect()}
    assert good.isdisjoint(bad)
    assert good | bad == set(range(100, 100 + len(values)))
    assert good == {100, 101, 102, 103}  # humidity 0, 30, 60, 90; 120 and 150 are out of range


def split_duplicates(rows, written, contract):
    """(kept, removed) as the job takes them from :func:`flag_duplicates`."""
    flagged = flag_duplicates(rows, written, contract)
    return (
        flagged.where("NOT duplicate").drop("duplicate"),
        flagged.where("duplicate").drop("duplicate"),
    )


def lake_frame(spark, values, first_offset=100):
    checked = validate(parse_events(kafka_rows(spark, values), WEATHER), WEATHER)
    rows = to_lake_rows(checked, WEATHER)
    return rows.withColumn("kafkaOffset", rows["kafkaOffset"] + (first_offset - 100))


def written_frame(spark, rows: list[tuple[str, int]]):
    return spark.createDataFrame(
        [(i, "weather_data", 1, o) for i, o in rows],
        "id string, kafkaTopic string, kafkaPartition int, kafkaOffset long",
    )


def test_repeats_within_a_batch_keep_the_copy_with_the_lowest_kafka_offset(spark):
    values = [weather("a", 1), weather("b", 2), weather("a", 1), weather("c", 3), weather("b", 2)]
    keep, removed = split_duplicates(lake_frame(spark, values), written_frame(spark, []), WEATHER)
    assert sorted((r.id, r.kafkaOffset) for r in keep.collect()) == [
        ("a", 100),
        ("b", 101),
        ("c", 103),
    ]
    assert sorted((r.id, r.kafkaOffset) for r in removed.collect()) == [("a", 102), ("b", 104)]


def test_an_id_an_earlier_batch_wrote_is_a_duplicate_whatever_its_lateness(spark):
    values = [weather("a", 1), weather("new", 2)]
    written = written_frame(spark, [("a", 7)])  # offset 7: another record, written before
    keep, removed = split_duplicates(lake_frame(spark, values), written, WEATHER)
    assert [r.id for r in keep.collect()] == ["new"]
    rows = to_duplicate_rows(removed, WEATHER).collect()
    assert [(r.stream, r.eventId, r.kafkaOffset) for r in rows] == [("weather", "a", 100)]
    assert [*to_duplicate_rows(removed, WEATHER).columns, "ingestTime"] == [
        c["name"] for c in LAKE.duplicate_columns
    ]


def test_a_replayed_batch_splits_the_same_way_after_its_rows_were_written(spark):
    """A crash after the data table took the batch: the replay finds its own rows (same Kafka
    coordinates) in the table, and must not call them duplicates of themselves."""
    values = [weather("a", 1), weather("b", 2), weather("a", 1)]
    first_keep, first_removed = split_duplicates(
        lake_frame(spark, values), written_frame(spark, []), WEATHER
    )
    already = written_frame(spark, [(r.id, r.kafkaOffset) for r in first_keep.collect()])
    keep, removed = split_duplicates(lake_frame(spark, values), already, WEATHER)
    assert sorted(map(tuple, keep.select("id", "kafkaOffset").collect())) == sorted(
        map(tuple, first_keep.select("id", "kafkaOffset").collect())
    )
    assert sorted(map(tuple, removed.select("id", "kafkaOffset").collect())) == sorted(
        map(tuple, first_removed.select("id", "kafkaOffset").collect())
    )


def _generated_code(frame) -> str:
    jvm = frame.sparkSession.sparkContext._jvm
    plan = frame._jdf.queryExecution().executedPlan()
    return jvm.org.apache.spark.sql.execution.debug.package.codegenString(plan)


def test_the_ingest_time_changes_per_batch_but_the_generated_code_does_not(spark):
    import datetime as dt

    from pyspark.sql import functions as F

    rows = lake_frame(spark, [weather("a")])
    stamps = [dt.datetime(2026, 1, 5, 10, 0, s) for s in (1, 2)]
    frames = [
        with_ingest_time(rows, spark.createDataFrame([(t,)], "ingestTime timestamp"))
        for t in stamps
    ]
    assert [f.first().ingestTime for f in frames] == stamps
    assert _generated_code(frames[0]) == _generated_code(frames[1])
    # The check can fail: a literal per batch would put a new constant into the code.
    literal = [rows.withColumn("ingestTime", F.lit(t)) for t in stamps]
    assert _generated_code(literal[0]) != _generated_code(literal[1])
