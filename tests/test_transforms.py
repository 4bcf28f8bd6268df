"""The job's pure transforms on small batch DataFrames (one shared local SparkSession)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual, assertSchemaEqual

from emr_jobs.contracts import CONTRACTS, LAKE
from emr_jobs.transforms import (
    deduplicate,
    lake_columns,
    parse_events,
    spark_schema,
    to_lake_rows,
    to_quarantine_rows,
    validate,
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


def test_valid_events_become_lake_rows_with_kafka_coordinates_and_partitions(spark):
    checked = validate(
        parse_events(kafka_rows(spark, [weather("e-1", minute=5)]), WEATHER), WEATHER
    )
    actual = to_lake_rows(checked, WEATHER).drop("ingestTime")
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
                date="2026-01-05",
                hour=8,
            )
        ],
        schema=actual.schema,
    )
    assertDataFrameEqual(actual, expected)
    assert to_lake_rows(checked, WEATHER).columns == lake_columns(WEATHER)


def test_lake_schema_is_the_contract_schema_plus_metadata(spark):
    checked = validate(parse_events(kafka_rows(spark, [weather("e-1")]), WEATHER), WEATHER)
    rows = to_lake_rows(checked, WEATHER)
    contract_part = rows.select(*WEATHER.field_names)
    assertSchemaEqual(contract_part.schema, spark_schema(WEATHER))


def test_bad_records_go_to_quarantine_with_raw_value_reason_and_coordinates(spark):
    values = [weather("ok"), b"{not json", weather("hot", humidity=140.0), None, b"[1, 2]"]
    checked = validate(parse_events(kafka_rows(spark, values), WEATHER), WEATHER)
    actual = to_quarantine_rows(checked).drop("ingestTime")
    expected = spark.createDataFrame(
        [
            Row(
                rawValue="{not json",
                rawKey="vehicle-0001",
                reason="malformed JSON: not a JSON object",
                kafkaTopic="weather_data",
                kafkaPartition=1,
                kafkaOffset=101,
                kafkaTimestamp=KAFKA_TS,
                date="2026-01-05",
            ),
            Row(
                rawValue=json.dumps(weather("hot", humidity=140.0)),
                rawKey="vehicle-0001",
                reason="humidity: above maximum 100",
                kafkaTopic="weather_data",
                kafkaPartition=1,
                kafkaOffset=102,
                kafkaTimestamp=KAFKA_TS,
                date="2026-01-05",
            ),
            Row(
                rawValue=None,
                rawKey="vehicle-0001",
                reason="empty value",
                kafkaTopic="weather_data",
                kafkaPartition=1,
                kafkaOffset=103,
                kafkaTimestamp=KAFKA_TS,
                date="2026-01-05",
            ),
            Row(
                rawValue="[1, 2]",
                rawKey="vehicle-0001",
                reason="malformed JSON: not a JSON object",
                kafkaTopic="weather_data",
                kafkaPartition=1,
                kafkaOffset=104,
                kafkaTimestamp=KAFKA_TS,
                date="2026-01-05",
            ),
        ],
        schema=actual.schema,
    )
    assertDataFrameEqual(actual, expected)
    assert [r.id for r in to_lake_rows(checked, WEATHER).collect()] == ["ok"]
    assert to_quarantine_rows(checked).columns == [
        *[c["name"] for c in LAKE.quarantine_columns],
        "date",
    ]


def test_every_record_lands_in_exactly_one_of_lake_or_quarantine(spark):
    values = [weather(f"e-{i}", humidity=float(i * 30)) for i in range(6)] + [b"", b"null", b"{}"]
    checked = validate(parse_events(kafka_rows(spark, values), WEATHER), WEATHER)
    good = {r.kafkaOffset for r in to_lake_rows(checked, WEATHER).collect()}
    bad = {r.kafkaOffset for r in to_quarantine_rows(checked).collect()}
    assert good.isdisjoint(bad)
    assert good | bad == set(range(100, 100 + len(values)))
    assert good == {100, 101, 102, 103}  # humidity 0, 30, 60, 90; 120 and 150 are out of range


def test_duplicate_event_ids_are_dropped_keeping_one_row(spark):
    values = [weather("a", 1), weather("b", 2), weather("a", 1), weather("c", 3), weather("b", 2)]
    checked = validate(parse_events(kafka_rows(spark, values), WEATHER), WEATHER)
    actual = deduplicate(to_lake_rows(checked, WEATHER), WEATHER, "2 minutes").select("id")
    assertDataFrameEqual(actual, spark.createDataFrame([("a",), ("b",), ("c",)], "id string"))


@pytest.mark.parametrize("stream", list(CONTRACTS))
def test_event_hour_partition_uses_utc_event_time(spark, stream):
    contract = CONTRACTS[stream]
    # 23:30 at +02:00 is 21:30 UTC.
    value = {"timestamp": "2026-01-05T23:30:00.000+02:00"}
    checked = validate(parse_events(kafka_rows(spark, [value]), contract), contract)
    row = checked.selectExpr(
        "date_format(event.timestamp, 'yyyy-MM-dd') AS d", "hour(event.timestamp) AS h"
    ).first()
    assert (row.d, row.h) == ("2026-01-05", 21)
