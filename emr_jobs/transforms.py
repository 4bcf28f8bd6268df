"""Pure DataFrame -> DataFrame transforms of the job. No I/O: the job applies them to each
micro-batch inside ``foreachBatch``; tests apply them to small batch DataFrames.

    kafka rows ─ parse_events ─ validate ─┬─ to_lake_rows ─ flag_duplicates ──┬─► <stream>
                                          │                                   └─► duplicates
                                          └─ to_quarantine_rows ──────► <stream>_quarantine

Every rule comes from the stream's contract (``emr_jobs.core.contracts``), and each reason is
worded exactly as ``Contract.violations`` words it; a test holds the two to each other. The
event-time bounds (``EventTimeBounds``) are the job's own rules on top of the contract.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from emr_jobs.core.contracts import LAKE, LATITUDE_RANGE, LONGITUDE_RANGE, Contract, Field, _num

CORRUPT = "_corrupt_record"

_SPARK_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "int": T.IntegerType(),
    "long": T.LongType(),
    "double": T.DoubleType(),
    "timestamp": T.TimestampType(),
    "boolean": T.BooleanType(),
    "binary": T.BinaryType(),
    "location": T.StructType(
        [
            T.StructField("latitude", T.DoubleType(), True),
            T.StructField("longitude", T.DoubleType(), True),
        ]
    ),
}

JSON_OPTIONS = {
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
        F.from_json(raw, _parse_schema(contract), JSON_OPTIONS).alias("event"),
        # Top-level keys as text: tells "missing" from "present with the wrong type".
        # pyspark's annotation omits MapType, which from_json takes like any DataType (its doc
        # says "DataType or str").
        F.from_json(
            raw,
            T.MapType(T.StringType(), T.StringType()),  # type: ignore[arg-type]
        ).alias("rawFields"),
    )
    return kafka_rows.select(
        raw.alias("rawValue"),
        F.col("value").alias("rawBytes"),
        # Java's decoder replaces invalid UTF-8 with U+FFFD, so the text column stays readable.
        F.decode(F.col("key"), "UTF-8").alias("rawKey"),
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


@dataclass(frozen=True)
class EventTimeBounds:
    """The job's event-time rules: an event outside them goes to quarantine, never to a table.

    ``max_future_seconds``: how far the event time may lie after the Kafka record time (clock
    skew); ``floor``: the earliest event time accepted (``yyyy-MM-dd HH:mm:ss``, UTC). Both are
    relative to data in the record, so a replayed batch classifies every record the same way.
    """

    max_future_seconds: int
    floor: str
    max_future_setting: str = "JOB_MAX_FUTURE"
    floor_setting: str = "JOB_EVENT_TIME_FLOOR"

    def rules(self, contract: Contract) -> list[Column]:
        event_time = F.col(f"event.{contract.event_time_field}")
        name = contract.event_time_field
        future = event_time > F.col("kafkaTimestamp") + F.expr(
            f"INTERVAL {self.max_future_seconds} SECONDS"
        )
        early = event_time < F.to_timestamp(F.lit(self.floor))
        return [
            F.when(
                future,
                F.lit(
                    f"{name}: more than {self.max_future_seconds}s after the Kafka record time "
                    f"({self.max_future_setting})"
                ),
            ),
            F.when(early, F.lit(f"{name}: before {self.floor} UTC ({self.floor_setting})")),
        ]


def _maybe_bad(contract: Contract, bounds: EventTimeBounds | None = None) -> Column:
    """A cheap test that is true for every event some rule rejects (and for a few that pass).

    Valid events, nearly all of them, stop here; only the rest pay for the exact reasons.
    """
    conditions = [
        F.col(f"event.{CORRUPT}").isNotNull(),  # some field could not be converted
        F.col("event.schemaVersion") > contract.version,
    ]
    if bounds is not None:
        conditions.extend(rule.isNotNull() for rule in bounds.rules(contract))
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


def validate(
    parsed: DataFrame, contract: Contract, bounds: EventTimeBounds | None = None
) -> DataFrame:
    """Adds ``reason``: null for a valid event, else every broken rule joined by ``; ``.

    Events written against an older version of the contract are valid (a contract only ever
    gains optional fields); a newer ``schemaVersion`` than the job's contract is quarantined.
    """
    rules = [rule for f in contract.fields for rule in _field_rules(f)]
    version = F.col("event.schemaVersion")
    rules.append(
        F.when(
            version > contract.version,
            F.concat(
                F.lit("schemaVersion: "),
                version.cast("string"),
                F.lit(f" is newer than this job's contract ({contract.version})"),
            ),
        )
    )
    if bounds is not None:
        rules.extend(bounds.rules(contract))
    field_reasons = F.concat_ws("; ", F.array(*rules))
    reason = (
        F.when(F.col("rawValue").isNull(), F.lit("empty value"))
        .when(F.col("rawFields").isNull(), F.lit("malformed JSON: not a JSON object"))
        .when(_maybe_bad(contract, bounds), F.when(field_reasons != "", field_reasons))
    )
    return parsed.withColumn("reason", reason)


KAFKA_COORDINATES = ("kafkaTopic", "kafkaPartition", "kafkaOffset")


def to_lake_rows(checked: DataFrame, contract: Contract) -> DataFrame:
    """Valid events as lake rows: contract fields and Kafka coordinates (no ingest time yet)."""
    metadata = [c["name"] for c in LAKE.metadata_columns if c["name"] != "ingestTime"]
    return checked.where(F.col("reason").isNull()).select(
        *[F.col(f"event.{name}").alias(name) for name in contract.field_names], *metadata
    )


def to_quarantine_rows(checked: DataFrame) -> DataFrame:
    """Failed records: the exact bytes, readable text, the reason and the Kafka coordinates."""
    columns = [c["name"] for c in LAKE.quarantine_columns if c["name"] != "ingestTime"]
    return (
        checked.where(F.col("reason").isNotNull())
        .withColumn("rawValue", F.decode(F.col("rawBytes"), "UTF-8"))
        .select(*columns)
    )


def flag_duplicates(rows: DataFrame, written: DataFrame, contract: Contract) -> DataFrame:
    """``rows`` with a boolean ``duplicate`` column, deterministic for a replayed batch.

    ``written`` holds the id and Kafka coordinates of rows already in the table around the
    batch's event times. A row is a duplicate when an earlier batch wrote its id from another
    record, or when the batch holds its id more than once and it is not the copy with the
    lowest Kafka coordinates. A row in ``written`` with the row's own coordinates is the row
    itself (a replay after the table was committed), never a duplicate of it.
    """
    key = contract.id_field
    seen = written.select(
        F.col(key).alias("_seenId"), *[F.col(c).alias(f"_seen_{c}") for c in KAFKA_COORDINATES]
    )
    same_record = reduce(
        lambda a, b: a & b, [F.col(c) == F.col(f"_seen_{c}") for c in KAFKA_COORDINATES]
    )
    matches_earlier = (F.col(key) == F.col("_seenId")) & ~same_record
    ranked = rows.withColumn(
        "_copy", F.row_number().over(Window.partitionBy(key).orderBy(*KAFKA_COORDINATES))
    )
    earlier = ranked.join(seen, on=matches_earlier, how="left_semi")
    fresh = ranked.join(seen, on=matches_earlier, how="left_anti")
    return (
        earlier.withColumn("duplicate", F.lit(True))
        .unionByName(fresh.withColumn("duplicate", F.col("_copy") > 1))
        .drop("_copy")
    )


def to_duplicate_rows(removed: DataFrame, contract: Contract) -> DataFrame:
    """Rows removed as duplicates, in the shape of the shared ``duplicates`` table."""
    return removed.select(
        F.lit(contract.stream).alias("stream"),
        F.col(contract.id_field).alias("eventId"),
        F.col(contract.event_time_field).alias("eventTime"),
        *[c["name"] for c in LAKE.duplicate_columns if c["name"].startswith("kafka")],
    )


def with_ingest_time(rows: DataFrame, stamp: DataFrame) -> DataFrame:
    """Adds ``ingestTime`` from a one-row frame rather than a literal.

    A per-batch literal (``current_timestamp()`` or ``lit(now)``) is inlined into the generated
    code, so Spark would compile every plan anew each batch; a value read from a broadcast row
    leaves the generated code the same from batch to batch.
    """
    return rows.crossJoin(F.broadcast(stamp.select("ingestTime")))


def lake_columns(contract: Contract) -> list[str]:
    """Column order of a stream's data table (contract fields, then metadata)."""
    return [*contract.field_names, *[c["name"] for c in LAKE.metadata_columns]]
