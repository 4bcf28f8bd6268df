"""Pure DataFrame -> DataFrame transforms of the job. No I/O: each works on a batch DataFrame
in tests and on a streaming DataFrame in the job.

    kafka rows ─ parse_events ─ validate ─┬─ to_lake_rows ─ deduplicate ─► data/<stream>/
                                          └─ to_quarantine_rows ───────► quarantine/<stream>/

Every rule comes from the stream's contract (``emr_jobs.contracts``), and each reason is
worded exactly as ``Contract.violations`` words it; a test holds the two to each other.
"""

from __future__ import annotations

import re
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from emr_jobs.contracts import LAKE, LATITUDE_RANGE, LONGITUDE_RANGE, Contract, Field, _num

CORRUPT = "_corrupt_record"

_SPARK_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "int": T.IntegerType(),
    "long": T.LongType(),
    "double": T.DoubleType(),
    "timestamp": T.TimestampType(),
    "boolean": T.BooleanType(),
    "location": T.StructType(
        [
            T.StructField("latitude", T.DoubleType(), True),
            T.StructField("longitude", T.DoubleType(), True),
        ]
    ),
}

_JSON_OPTIONS = {
    "mode": "PERMISSIVE",
    "columnNameOfCorruptRecord": CORRUPT,
    "timestampFormat": "yyyy-MM-dd'T'HH:mm:ss[.SSSSSS][.SSS][XXX]",
}

# An explicit UTC offset at the end of a timestamp string: Z or +hh:mm.
_OFFSET_SUFFIX = r"(Z|[+-][0-9]{2}:[0-9]{2})$"


def spark_type(type_name: str) -> T.DataType:
    return _SPARK_TYPES[type_name]


def spark_schema(contract: Contract) -> T.StructType:
    """The contract's event schema as Spark sees it (every field nullable: rules check it)."""
    return T.StructType([T.StructField(f.name, spark_type(f.type), True) for f in contract.fields])


def _parse_schema(contract: Contract) -> T.StructType:
    return T.StructType([*spark_schema(contract).fields, T.StructField(CORRUPT, T.StringType())])


def parse_events(kafka_rows: DataFrame, contract: Contract) -> DataFrame:
    """Kafka source rows -> raw value, Kafka coordinates, the typed event and its raw fields.

    The two parses are emitted through ``inline(array(struct(...)))``: one row in, one row out,
    but a generator the optimizer cannot inline through. Without it, pushing ``reason IS NULL``
    and the per-field selects down into this projection copies ``from_json`` into every rule
    and column (82 parses per record for the vehicle stream, ten times slower).
    """
    raw = F.col("value").cast("string")
    parsed = F.struct(
        F.from_json(raw, _parse_schema(contract), _JSON_OPTIONS).alias("event"),
        # Top-level keys as text: tells "missing" from "present with the wrong type".
        F.from_json(raw, T.MapType(T.StringType(), T.StringType())).alias("rawFields"),
    )
    return kafka_rows.select(
        raw.alias("rawValue"),
        F.col("key").cast("string").alias("rawKey"),
        F.col("topic").alias("kafkaTopic"),
        F.col("partition").alias("kafkaPartition"),
        F.col("offset").alias("kafkaOffset"),
        F.col("timestamp").alias("kafkaTimestamp"),
        F.inline(F.array(parsed)),
    )


def _field_rules(f: Field) -> list[Column]:
    """Reasons (or null) for one field, in the order Contract.violations reports them."""
    value = F.col(f"event.{f.name}")
    raw_text = F.col("rawFields").getItem(f.name)
    present = raw_text.isNotNull()
    rules: list[Column] = []
    if f.required:
        rules.append(F.when(~present, F.lit(f"{f.name}: required")))
    wrong_type = present & value.isNull()
    if f.type == "string":
        # Spark coerces a number or object into a string field; the contract does not.
        key = re.escape(f.name)
        wrong_type = wrong_type | (
            value.isNotNull() & F.col("rawValue").rlike(f'"{key}"\\s*:\\s*[^"\\s]')
        )
    elif f.type == "timestamp":
        wrong_type = wrong_type | (value.isNotNull() & ~raw_text.rlike(_OFFSET_SUFFIX))
    elif f.type == "double":
        # NaN and Infinity parse, but are not numbers the contract accepts.
        wrong_type = wrong_type | F.isnan(value) | (F.abs(value) == float("inf"))
    elif f.type == "location":
        wrong_type = wrong_type | (
            value.isNotNull() & (value["latitude"].isNull() | value["longitude"].isNull())
        )
    rules.append(F.when(wrong_type, F.lit(f"{f.name}: expected {f.type}")))
    checked = present & ~wrong_type
    if f.type == "location":
        lat, lon = value["latitude"], value["longitude"]
        rules.append(
            F.when(
                checked & ~lat.between(*LATITUDE_RANGE),
                F.lit("location.latitude: out of range [-90, 90]"),
            )
        )
        rules.append(
            F.when(
                checked & ~lon.between(*LONGITUDE_RANGE),
                F.lit("location.longitude: out of range [-180, 180]"),
            )
        )
        return rules
    if f.min is not None:
        rules.append(
            F.when(checked & (value < f.min), F.lit(f"{f.name}: below minimum {_num(f.min)}"))
        )
    if f.max is not None:
        rules.append(
            F.when(checked & (value > f.max), F.lit(f"{f.name}: above maximum {_num(f.max)}"))
        )
    if f.enum is not None:
        rules.append(
            F.when(
                checked & ~value.isin(*f.enum), F.lit(f"{f.name}: not one of {'|'.join(f.enum)}")
            )
        )
    return rules


def _maybe_bad(contract: Contract) -> Column:
    """A cheap test that is true for every event some rule rejects (and for a few that pass).

    Valid events, nearly all of them, stop here; only the rest pay for the exact reasons.
    """
    conditions = [
        F.col(f"event.{CORRUPT}").isNotNull(),  # some field could not be converted
        F.col("event.schemaVersion") != contract.version,
    ]
    strings = [re.escape(f.name) for f in contract.fields if f.type == "string"]
    if strings:  # one scan for a non-string token after any string field's key
        conditions.append(F.col("rawValue").rlike(f'"(?:{"|".join(strings)})"\\s*:\\s*[^"\\s]'))
    for f in contract.fields:
        value = F.col(f"event.{f.name}")
        if f.required:
            conditions.append(value.isNull())
        if f.type == "timestamp":
            conditions.append(~F.col("rawFields").getItem(f.name).endswith("Z"))
        elif f.type == "double":
            conditions.append(F.isnan(value) | (F.abs(value) == float("inf")))
        elif f.type == "location":
            lat, lon = value["latitude"], value["longitude"]
            conditions.append(~lat.between(*LATITUDE_RANGE) | ~lon.between(*LONGITUDE_RANGE))
            conditions.append(lat.isNull() | lon.isNull())
        if f.min is not None:
            conditions.append(value < f.min)
        if f.max is not None:
            conditions.append(value > f.max)
        if f.enum is not None:
            conditions.append(~value.isin(*f.enum))
    # A null comparison (absent optional field) must not make the whole test null.
    return reduce(lambda a, b: a | b, [F.coalesce(c, F.lit(False)) for c in conditions])


def validate(parsed: DataFrame, contract: Contract) -> DataFrame:
    """Adds ``reason``: null for a valid event, else every broken rule joined by ``; ``."""
    rules = [rule for f in contract.fields for rule in _field_rules(f)]
    version = F.col("event.schemaVersion")
    rules.append(
        F.when(
            version.isNotNull() & (version != contract.version),
            F.lit(f"schemaVersion: expected {contract.version}"),
        )
    )
    field_reasons = F.concat_ws("; ", F.array(*rules))
    reason = (
        F.when(F.col("rawValue").isNull(), F.lit("empty value"))
        .when(F.col("rawFields").isNull(), F.lit("malformed JSON: not a JSON object"))
        .when(_maybe_bad(contract), F.when(field_reasons != "", field_reasons))
    )
    return parsed.withColumn("reason", reason)


def to_lake_rows(checked: DataFrame, contract: Contract) -> DataFrame:
    """Valid events as lake rows: contract fields, Kafka coordinates, ingest time, partitions."""
    event_time = F.col(contract.event_time_field)
    metadata = [c["name"] for c in LAKE.metadata_columns if c["name"] != "ingestTime"]
    return (
        checked.where(F.col("reason").isNull())
        .select(*[F.col(f"event.{name}").alias(name) for name in contract.field_names], *metadata)
        .withColumn("ingestTime", F.current_timestamp())
        .withColumn("date", F.date_format(event_time, "yyyy-MM-dd"))
        .withColumn("hour", F.hour(event_time))
    )


def deduplicate(rows: DataFrame, contract: Contract, watermark_delay: str) -> DataFrame:
    """Drops repeats of an event id that arrive within the event-time watermark.

    On a batch DataFrame (tests, backfills) there is no watermark: every repeat is dropped.
    """
    if not rows.isStreaming:
        return rows.dropDuplicates([contract.id_field])
    return rows.withWatermark(
        contract.event_time_field, watermark_delay
    ).dropDuplicatesWithinWatermark([contract.id_field])


def to_quarantine_rows(checked: DataFrame) -> DataFrame:
    """Failed records: raw value and key, the reason, Kafka coordinates; partitioned by date."""
    return (
        checked.where(F.col("reason").isNotNull())
        .withColumn("ingestTime", F.current_timestamp())
        .select(
            *[c["name"] for c in LAKE.quarantine_columns],
            F.date_format("kafkaTimestamp", "yyyy-MM-dd").alias("date"),
        )
    )


def lake_columns(contract: Contract) -> list[str]:
    """Column order of a stream's data table (contract fields, metadata, partitions)."""
    return [
        *contract.field_names,
        *[c["name"] for c in LAKE.metadata_columns],
        *[c["name"] for c in LAKE.partition_columns],
    ]
