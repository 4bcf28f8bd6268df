"""Alerts and road conditions: the job's real-time path, beside the lake writer.

Three streaming queries, each with its own Kafka sources and checkpoint, write to Kafka only:

``alerts``
    Stateless rules on single events (an incident becomes Active or Resolved, severe weather, a
    camera's measured speed over the section's limit) and a stream-stream join with watermarks
    (a vehicle with an active incident ahead of it on the route), united and deduplicated on the
    alert id within the watermark, to the ``alerts`` topic.
``stopped``
    ``applyInPandasWithState`` per vehicle: stopped on a motorway for ``ALERT_STOPPED_AFTER``,
    once per stop, to the ``alerts`` topic.
``road_conditions``
    A windowed aggregation per road section and ``ROAD_CONDITIONS_WINDOW``, emitted once the
    watermark closes the window, to the ``road_conditions`` topic.

They do not wait for the lake's trigger: each runs its next micro-batch as soon as the last
ends (``ALERT_TRIGGER_INTERVAL``). The lake writer reads the two topics like any other, checks
them against their contracts and writes the ``alerts`` and ``road_conditions`` tables exactly
once: a replayed alert repeats its deterministic id, and the lake keeps one row per id.

Only events that pass their contract count; invalid ones are the lake writer's to quarantine.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from functools import reduce
from typing import TYPE_CHECKING

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.streaming.state import GroupState, GroupStateTimeout

from emr_jobs.core.contracts import CONTRACTS, LATITUDE_RANGE, LONGITUDE_RANGE
from emr_jobs.core.contracts.roads import KM_PER_DEG_LAT, KM_PER_DEG_LON, RoadSection, sections
from emr_jobs.core.kafka import KafkaSettings, spark_kafka_options
from emr_jobs.core.settings import duration_seconds
from emr_jobs.settings import AlertSettings, JobSettings
from emr_jobs.transforms import JSON_OPTIONS, spark_schema

if TYPE_CHECKING:
    import pandas as pd

#: The queries this module starts, in start order.
QUERIES = ("alerts", "stopped", "road_conditions")

ALERT = CONTRACTS["alerts"]
ROAD = CONTRACTS["road_conditions"]


# --- where on the road --------------------------------------------------------------------------


def _nearest_sections(road: tuple[RoadSection, ...]):
    """A vectorised pandas UDF: (latitude, longitude) -> the nearest section's index, route km
    and distance off the route, computed with numpy against every section at once.

    The same arithmetic as ``roads.place``, in the same order; ties go to the later section.
    Measured against the alternatives on this machine: a Spark ``least`` over one struct per
    section does not compile (the generated method is too large, and Spark falls back to
    interpreting it), and ``array_min(transform(...))`` is interpreted at about 90 µs a row.
    """
    import numpy as np
    import pandas as pd
    from pyspark.sql.functions import pandas_udf

    ax = np.array([s.start_lon * KM_PER_DEG_LON for s in road])
    ay = np.array([s.start_lat * KM_PER_DEG_LAT for s in road])
    dx = np.array([s.end_lon * KM_PER_DEG_LON for s in road]) - ax
    dy = np.array([s.end_lat * KM_PER_DEG_LAT for s in road]) - ay
    den = dx * dx + dy * dy
    start_km = np.array([s.start_km for s in road])
    length_km = np.array([s.length_km for s in road])
    last = len(road) - 1

    def nearest(latitude, longitude):
        px = longitude.to_numpy(dtype=float)[:, None] * KM_PER_DEG_LON
        py = latitude.to_numpy(dtype=float)[:, None] * KM_PER_DEG_LAT
        t = np.clip(((px - ax) * dx + (py - ay) * dy) / den, 0.0, 1.0)
        off = np.hypot(px - (ax + t * dx), py - (ay + t * dy))
        best = last - np.argmin(off[:, ::-1], axis=1)  # the last of equal minima
        rows = np.arange(len(best))
        return pd.DataFrame(
            {
                "index": best.astype("int32"),
                "routeKm": start_km[best] + t[rows, best] * length_km[best],
                "offKm": off[rows, best],
            }
        )

    # Real classes, not the strings `from __future__ import annotations` would leave.
    nearest.__annotations__ = {
        "latitude": pd.Series,
        "longitude": pd.Series,
        "return": pd.DataFrame,
    }
    # pyspark's stubs only have the deprecated functionType overloads, not the type-hint form
    # (the UDF's kind comes from the annotations above), which pyspark 3 documents and prefers.
    return pandas_udf("index int, routeKm double, offKm double")(  # type: ignore[call-overload]
        nearest
    )


def with_placement(
    frame: DataFrame, max_km: float, road: tuple[RoadSection, ...] = ()
) -> DataFrame:
    """``frame`` with ``place``, the nearest road section to its ``location``: a struct of
    ``section`` (id, null when more than ``max_km`` off the route), ``road``, ``name``,
    ``roadClass``, ``limitKmh``, ``routeKm`` and ``offKm``.

    ``emr_jobs.core.contracts.roads.place`` is the same in Python, one position at a time; a test
    holds the two to each other.
    """
    road = road or sections()
    nearest = _nearest_sections(road)
    placed = frame.withColumn(
        "_best", nearest(F.col("location.latitude"), F.col("location.longitude"))
    )
    best = F.col("_best")
    index = best["index"] + 1  # element_at is 1-based

    def lookup(values: list) -> Column:
        return F.element_at(F.array(*[F.lit(v) for v in values]), index)

    on_route = best["offKm"] <= F.lit(max_km)
    place = F.struct(
        F.when(on_route, lookup([s.id for s in road])).alias("section"),
        lookup([s.road for s in road]).alias("road"),
        lookup([s.name for s in road]).alias("name"),
        lookup([s.road_class for s in road]).alias("roadClass"),
        lookup([s.limit_kmh for s in road]).alias("limitKmh"),
        best["routeKm"].alias("routeKm"),
        best["offKm"].alias("offKm"),
    )
    return placed.withColumn("place", place).drop("_best")


# --- reading -----------------------------------------------------------------------------------


def valid_events(
    spark: SparkSession, kafka: KafkaSettings, job: JobSettings, stream: str
) -> DataFrame:
    """One topic's events that keep their contract, flattened (contract fields as columns).

    The checks are the contract's, in their cheap form: typed parsing (a value of the wrong
    type reads as null), required fields present, enums, ranges, the location's bounds and the
    job's event-time bounds (``JOB_MAX_FUTURE``, ``JOB_EVENT_TIME_FLOOR``). The lake writer
    applies the full rules and keeps the reasons; here a failing event is simply not used.
    Measured: the full rule set (hundreds of expressions that build each reason) made planning
    each alert micro-batch cost more than running it.
    """
    contract = CONTRACTS[stream]
    raw = (
        spark.readStream.format("kafka")
        .options(**spark_kafka_options(kafka))
        .option("subscribe", kafka.topic(stream))
        .option("startingOffsets", job.starting_offsets)
        .option("failOnDataLoss", "true")
        .load()
    )
    parsed = F.from_json(F.col("value").cast("string"), spark_schema(contract), JSON_OPTIONS)
    # Behind a generator, so the parse runs once per record (see transforms.parse_events).
    events = raw.select(
        F.col("timestamp").alias("kafkaTimestamp"),
        F.inline(F.array(F.struct(parsed.alias("event")))),
    )
    checks = []
    for f in contract.fields:
        value = F.col(f"event.{f.name}")
        if f.required:
            checks.append(value.isNotNull())
        if f.type == "location":
            checks.append(
                value.isNull()
                | (
                    value["latitude"].between(*LATITUDE_RANGE)
                    & value["longitude"].between(*LONGITUDE_RANGE)
                )
            )
        if f.min is not None:
            checks.append(value.isNull() | (value >= f.min))
        if f.max is not None:
            checks.append(value.isNull() | (value <= f.max))
        if f.enum is not None:
            checks.append(value.isNull() | value.isin(*f.enum))
    checks.append(F.col("event.schemaVersion") <= contract.version)
    event_time = F.col(f"event.{contract.event_time_field}")
    checks.append(
        event_time
        <= F.col("kafkaTimestamp") + F.expr(f"INTERVAL {duration_seconds(job.max_future)} SECONDS")
    )
    floor = job.event_time_floor.replace("T", " ").removesuffix("Z")
    checks.append(event_time >= F.to_timestamp(F.lit(floor)))
    return events.where(reduce(lambda a, b: a & b, checks)).select(
        *[F.col(f"event.{name}").alias(name) for name in contract.field_names],
        F.col("kafkaTimestamp"),
    )


def _placed(events: DataFrame, settings: AlertSettings) -> DataFrame:
    return with_placement(events, settings.section_max_km)


# --- alert rows --------------------------------------------------------------------------------


def alert_id(rule: str, *keys: Column) -> Column:
    """Deterministic: a replay of the same event raises the same id."""
    return F.substring(F.sha2(F.concat_ws("|", F.lit(rule), *keys), 256), 1, 32)


def _alert(
    *,
    id: Column,
    rule: str,
    severity: Column,
    status: Column,
    timestamp: Column,
    location: Column,
    section: Column,
    message: Column,
    device: Column | None = None,
    incident: Column | None = None,
    value: Column | None = None,
) -> list[Column]:
    """The alert contract's columns, in its order."""
    null = F.lit(None)
    return [
        id.alias("id"),
        F.lit(ALERT.version).alias("schemaVersion"),
        F.lit(rule).alias("rule"),
        severity.alias("severity"),
        status.alias("status"),
        timestamp.alias("timestamp"),
        F.current_timestamp().alias("detectedAt"),
        location.alias("location"),
        section.alias("section"),
        (device if device is not None else null).cast("string").alias("deviceId"),
        (incident if incident is not None else null).cast("string").alias("incidentId"),
        (value if value is not None else null).cast("double").alias("value"),
        message.alias("message"),
    ]


def _plain(column: str) -> Column:
    """A copy of an event-time column without its watermark mark (one per stateful operator)."""
    return F.col(column) + F.expr("INTERVAL 0 SECONDS")


def _fmt(number: Column, decimals: int = 0) -> Column:
    return F.format_number(number, decimals)


def incident_alerts(emergency: DataFrame) -> DataFrame:
    """An incident reported Active or Resolved. A Resolved with no Active before it is still
    raised: the job keeps no incident state for this rule, and "cleared" is worth telling."""
    kind, status = F.col("type"), F.col("status")
    severity = (
        F.when(status == "Resolved", "info")
        .when(kind.isin("Fire", "Accident"), "critical")
        .otherwise("warning")
    )
    verb = F.when(status == "Active", F.lit("reported")).otherwise(F.lit("cleared"))
    where = F.coalesce(F.col("place.name"), F.lit("off the route"))
    return emergency.select(
        *_alert(
            id=alert_id("incident", F.col("incidentId"), status),
            rule="incident",
            severity=severity,
            status=status,
            timestamp=F.col("timestamp"),
            location=F.col("location"),
            section=F.col("place.section"),
            device=F.col("deviceId"),
            incident=F.col("incidentId"),
            message=F.concat_ws(
                " ",
                kind,
                verb,
                F.lit("on"),
                where,
                F.concat(F.lit("- "), F.coalesce(F.col("description"), F.lit(""))),
            ),
        ),
        F.col("timestamp").alias("until"),
    )


def weather_alerts(weather: DataFrame, settings: AlertSettings) -> DataFrame:
    """Snow, fog, heavy rain, strong wind or poor air on a road section: at most one alert per
    section per ``ALERT_WEATHER_PERIOD`` (the id is the section and the period's start)."""
    cond = F.col("weatherCondition")
    what = (
        F.when(cond == "Snow", F.lit("Snow"))
        .when(cond == "Fog", F.lit("Fog"))
        .when(F.col("precipitation") >= settings.heavy_rain_mm, F.lit("Heavy rain"))
        .when(F.col("windSpeed") >= settings.strong_wind_kmh, F.lit("Strong wind"))
        .when(F.col("airQualityIndex") >= settings.poor_air_quality, F.lit("Poor air quality"))
    )
    value = (
        F.when(cond.isin("Snow", "Fog"), F.col("temperature"))
        .when(F.col("precipitation") >= settings.heavy_rain_mm, F.col("precipitation"))
        .when(F.col("windSpeed") >= settings.strong_wind_kmh, F.col("windSpeed"))
        .otherwise(F.col("airQualityIndex"))
    )
    detail = (
        F.when(cond.isin("Snow", "Fog"), F.concat(_fmt(F.col("temperature"), 1), F.lit(" C")))
        .when(
            F.col("precipitation") >= settings.heavy_rain_mm,
            F.concat(_fmt(F.col("precipitation"), 1), F.lit(" mm/h")),
        )
        .when(
            F.col("windSpeed") >= settings.strong_wind_kmh,
            F.concat(_fmt(F.col("windSpeed")), F.lit(" km/h")),
        )
        .otherwise(F.concat(F.lit("AQI "), _fmt(F.col("airQualityIndex"))))
    )
    period = F.window("timestamp", settings.weather_period)
    severe = weather.where(F.col("place.section").isNotNull()).withColumn("what", what)
    return severe.where(F.col("what").isNotNull()).select(
        *_alert(
            id=alert_id("severe_weather", F.col("place.section"), period.start.cast("string")),
            rule="severe_weather",
            severity=F.when(F.col("what").isin("Snow", "Fog"), "warning").otherwise("info"),
            status=F.lit("Active"),
            timestamp=F.col("timestamp"),
            location=F.col("location"),
            section=F.col("place.section"),
            device=F.col("deviceId"),
            value=value,
            message=F.concat(
                F.col("what"), F.lit(" on "), F.col("place.name"), F.lit(" ("), detail, F.lit(")")
            ),
        ),
        period.end.alias("until"),
    )


def speeding_alerts(camera: DataFrame, settings: AlertSettings) -> DataFrame:
    """A camera measured a speed more than the tolerance over the section's limit."""
    limit = F.col("place.limitKmh")
    fast = camera.where(
        F.col("place.section").isNotNull()
        & (F.col("measuredSpeed") > limit + settings.speeding_tolerance_kmh)
    )
    return fast.select(
        *_alert(
            id=alert_id("speeding", F.col("id")),
            rule="speeding",
            severity=F.when(F.col("measuredSpeed") > limit * 1.25, "critical").otherwise("warning"),
            status=F.lit("Active"),
            timestamp=F.col("timestamp"),
            location=F.col("location"),
            section=F.col("place.section"),
            device=F.col("deviceId"),
            value=F.col("measuredSpeed"),
            message=F.concat(
                F.col("deviceId"),
                F.lit(" at "),
                _fmt(F.col("measuredSpeed")),
                F.lit(" km/h past "),
                F.col("cameraId"),
                F.lit(" ("),
                _fmt(limit),
                F.lit(" km/h limit, "),
                F.col("place.road"),
                F.lit(")"),
            ),
        ),
        F.col("timestamp").alias("until"),
    )


def approaching_alerts(gps: DataFrame, emergency: DataFrame, settings: AlertSettings) -> DataFrame:
    """A vehicle with an Active incident at most ``ALERT_APPROACH_KM`` ahead of it on the route,
    within ``ALERT_INCIDENT_HORIZON`` of the report: a stream-stream join with watermarks.

    The incident side's event time is ``until`` (report + horizon), so the dedupe after the
    join keeps each (vehicle, incident) pair until the join can no longer match it: one alert
    per vehicle and incident. The reporting vehicle itself is not warned.
    """
    horizon = f"INTERVAL {duration_seconds(settings.incident_horizon)} SECONDS"
    # Stream-stream joins need an equality: route buckets of ALERT_APPROACH_KM. An incident
    # within that distance ahead of a vehicle is in the vehicle's bucket or the next one, so
    # each incident is offered to its own bucket and the one before (incidents are few; the
    # many GPS rows are stored once).
    bucket_km = settings.approach_km
    vehicles = (
        gps.where(F.col("place.section").isNotNull())
        .select(
            F.col("deviceId"),
            F.col("timestamp").alias("seenAt"),
            F.col("location"),
            F.col("place.section").alias("section"),
            F.col("place.routeKm").alias("vehicleKm"),
            F.floor(F.col("place.routeKm") / bucket_km).alias("bucket"),
        )
        .withWatermark("seenAt", settings.watermark)
    )
    incidents = (
        emergency.where((F.col("status") == "Active") & F.col("place.section").isNotNull())
        .select(
            F.col("incidentId"),
            F.col("deviceId").alias("reporter"),
            F.col("type"),
            F.col("description"),
            F.col("place.name").alias("incidentPlace"),
            F.col("place.routeKm").alias("incidentKm"),
            F.explode(
                F.array(
                    F.floor(F.col("place.routeKm") / bucket_km) - 1,
                    F.floor(F.col("place.routeKm") / bucket_km),
                )
            ).alias("incidentBucket"),
            (F.col("timestamp") + F.expr(horizon)).alias("until"),
        )
        .withWatermark("until", settings.watermark)
    )
    ahead = F.col("incidentKm") - F.col("vehicleKm")
    # The join condition holds only the key and the time range, which Spark turns into state
    # clean-up; the distance and the reporter are a filter on the joined rows.
    joined = vehicles.join(
        incidents,
        (F.col("bucket") == F.col("incidentBucket"))
        & (F.col("seenAt") >= F.col("until") - F.expr(horizon))
        & (F.col("seenAt") <= F.col("until")),
    ).where(
        (F.col("deviceId") != F.col("reporter")) & (ahead >= 0) & (ahead <= settings.approach_km)
    )
    return joined.select(
        *_alert(
            id=alert_id("approaching_incident", F.col("deviceId"), F.col("incidentId")),
            rule="approaching_incident",
            severity=F.when(F.col("type").isin("Fire", "Accident"), "critical").otherwise(
                "warning"
            ),
            status=F.lit("Active"),
            timestamp=_plain("seenAt"),
            location=F.col("location"),
            section=F.col("section"),
            device=F.col("deviceId"),
            incident=F.col("incidentId"),
            value=F.round(ahead, 2),
            message=F.concat(
                F.col("deviceId"),
                F.lit(" is "),
                _fmt(ahead, 1),
                F.lit(" km from "),
                F.lower(F.col("type")),
                F.lit(" ahead on "),
                F.col("incidentPlace"),
            ),
        ),
        F.col("until"),
    )


def alerts_plan(
    spark: SparkSession, kafka: KafkaSettings, job: JobSettings, settings: AlertSettings
) -> DataFrame:
    """Every rule but the stopped-vehicle one, deduplicated on the id within the watermark."""

    def source(stream: str) -> DataFrame:
        return _placed(valid_events(spark, kafka, job, stream), settings)

    def marked(frame: DataFrame) -> DataFrame:
        return frame.withWatermark("until", settings.watermark)

    rules = [
        marked(incident_alerts(source("emergency"))),
        marked(weather_alerts(source("weather"), settings)),
        marked(speeding_alerts(source("traffic_camera"), settings)),
    ]
    united = rules[0].unionByName(rules[1]).unionByName(rules[2])
    approach = approaching_alerts(source("gps"), source("emergency"), settings)
    return united.unionByName(approach).dropDuplicates(["id", "until"]).drop("until")


# --- stopped vehicles: applyInPandasWithState ----------------------------------------------------

#: Two stopped readings further apart than this belong to two stops: the vehicle moved (or was
#: silent) in between. Readings come every few seconds (SIM_TICK_SECONDS, 5 by default).
STOP_GAP = timedelta(seconds=30)


class MissingPythonPackages(RuntimeError):
    """The job's Python lacks what the stopped-vehicle rule needs; the message says what."""


def check_python_packages() -> None:
    """``applyInPandasWithState`` needs pandas and pyarrow in the job's Python: say so at
    start-up, naming the setting that turns the alert queries off, rather than fail a batch."""
    missing = []
    for name in ("pandas", "pyarrow"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingPythonPackages(
            f"the alert queries need {' and '.join(missing)} in the job's Python "
            "(the stopped-vehicle rule runs applyInPandasWithState); install them, or set "
            "ALERTS_ENABLED=false"
        )


STOPPED_STATE = T.StructType(
    [
        T.StructField("stoppedSince", T.TimestampType()),
        T.StructField("lastSeen", T.TimestampType()),
        T.StructField("latitude", T.DoubleType()),
        T.StructField("longitude", T.DoubleType()),
        T.StructField("section", T.StringType()),
        T.StructField("name", T.StringType()),
        T.StructField("alerted", T.BooleanType()),
    ]
)


def _stopped_output() -> T.StructType:
    """The alert's fields with ``location`` as two columns (pandas returns flat columns)."""
    fields = []
    for f in spark_schema(ALERT).fields:
        if f.name == "location":
            fields += [
                T.StructField("latitude", T.DoubleType()),
                T.StructField("longitude", T.DoubleType()),
            ]
        else:
            fields.append(f)
    return T.StructType(fields)


def stopped_vehicles(settings: AlertSettings):
    """The state function, per vehicle: since when it has been stopped on a motorway, and
    whether it was told.

    It sees only readings that show the vehicle stopped on a motorway section (the plan filters
    the rest out before the state, so moving traffic costs nothing here). Readings more than
    ``STOP_GAP`` apart are two stops. The alert is raised once per stop, by the first reading
    ``ALERT_STOPPED_AFTER`` after the stop began. A stop's state is dropped once the watermark is
    ``STOP_GAP`` past its last reading.
    """
    import pandas as pd

    after = pd.Timedelta(seconds=duration_seconds(settings.stopped_after))
    gap = pd.Timedelta(STOP_GAP)

    def alert_row(device: str, state: dict, at: pd.Timestamp, now: pd.Timestamp) -> dict:
        since = state["stoppedSince"]
        minutes = (at - since).total_seconds() / 60.0
        return {
            "id": _sha_id("stopped_vehicle", device, since.strftime("%Y-%m-%dT%H:%M:%S.%f")),
            "schemaVersion": ALERT.version,
            "rule": "stopped_vehicle",
            "severity": "critical",
            "status": "Active",
            "timestamp": at,
            "detectedAt": now,
            "latitude": state["latitude"],
            "longitude": state["longitude"],
            "section": state["section"],
            "deviceId": device,
            "incidentId": None,
            "value": round(minutes, 1),
            "message": f"{device} stopped on {state['name']} for {minutes:.0f} min",
        }

    def step(
        key: tuple, frames: Iterator[pd.DataFrame], state: GroupState
    ) -> Iterator[pd.DataFrame]:
        (device,) = key
        current = _state_dict(state) if state.exists else None
        out: list[dict] = []
        if state.hasTimedOut:
            current = None  # no stopped reading for STOP_GAP: that stop is over
        else:
            now = pd.Timestamp.now(tz="UTC").tz_localize(None)
            rows = pd.concat(list(frames)).sort_values("timestamp", kind="stable")
            for r in rows.itertuples(index=False):
                at = pd.Timestamp(r.timestamp)
                if current is None or at - current["lastSeen"] > gap:
                    current = {
                        "stoppedSince": at,
                        "lastSeen": at,
                        "latitude": r.latitude,
                        "longitude": r.longitude,
                        "section": r.section,
                        "name": r.name,
                        "alerted": False,
                    }
                    continue
                current["lastSeen"] = max(current["lastSeen"], at)
                if not current["alerted"] and at - current["stoppedSince"] >= after:
                    out.append(alert_row(device, current, at, now))
                    current["alerted"] = True
        if current is None:
            state.remove()
        else:
            state.update(tuple(current[f.name] for f in STOPPED_STATE.fields))
            forget = current["lastSeen"] + gap
            state.setTimeoutTimestamp(
                max(
                    int(forget.tz_localize("UTC").value // 1_000_000),
                    state.getCurrentWatermarkMs() + 1,
                )
            )
        yield pd.DataFrame(out, columns=[f.name for f in _stopped_output().fields])

    return step


def _state_dict(state: GroupState) -> dict:
    import pandas as pd

    values = state.get
    current = {f.name: values[i] for i, f in enumerate(STOPPED_STATE.fields)}
    current["stoppedSince"] = pd.Timestamp(current["stoppedSince"])
    current["lastSeen"] = pd.Timestamp(current["lastSeen"])
    return current


def _sha_id(rule: str, *keys: str) -> str:
    """Python twin of :func:`alert_id`: sha-256 of ``rule|key|...``, first 32 hex digits."""
    import hashlib

    return hashlib.sha256("|".join((rule, *keys)).encode()).hexdigest()[:32]


def stopped_plan(
    spark: SparkSession, kafka: KafkaSettings, job: JobSettings, settings: AlertSettings
) -> DataFrame:
    gps = _placed(valid_events(spark, kafka, job, "gps"), settings)
    stopped = gps.where(
        (F.col("speed") < settings.stopped_speed_kmh)
        & (F.col("place.roadClass") == "motorway")
        & F.col("place.section").isNotNull()
    ).select(
        "deviceId",
        "timestamp",
        F.col("location.latitude").alias("latitude"),
        F.col("location.longitude").alias("longitude"),
        F.col("place.section").alias("section"),
        F.col("place.name").alias("name"),
    )
    alerts = (
        stopped.withWatermark("timestamp", settings.watermark)
        .groupBy("deviceId")
        .applyInPandasWithState(
            stopped_vehicles(settings),
            outputStructType=_stopped_output(),
            stateStructType=STOPPED_STATE,
            outputMode="append",
            timeoutConf=GroupStateTimeout.EventTimeTimeout,
        )
    )
    location = F.struct(F.col("latitude"), F.col("longitude")).alias("location")
    return alerts.select(*[location if f == "location" else f for f in ALERT.field_names])


# --- road conditions ---------------------------------------------------------------------------


def road_conditions_plan(
    spark: SparkSession, kafka: KafkaSettings, job: JobSettings, settings: AlertSettings
) -> DataFrame:
    """Per section and window: vehicles, mean and p95 speed, weather means, active incidents.

    The three inputs are united first and get one watermark: with a watermark per input, Spark
    would follow the slowest (incidents are rare), and no window would close between them.
    Repeats of an event id within the watermark are dropped before counting (the lake drops
    them too). Events later than the watermark miss their window here; the lake still has them.
    """
    nothing = F.lit(None).cast("double")
    no_text = F.lit(None).cast("string")

    def source(stream: str, *columns: Column) -> DataFrame:
        events = _placed(valid_events(spark, kafka, job, stream), settings)
        if stream == "emergency":
            events = events.where(F.col("status") == "Active")  # a Resolved report adds nothing
        return events.where(F.col("place.section").isNotNull()).select(
            F.lit(stream).alias("stream"),
            "id",
            "timestamp",
            F.col("place.section").alias("section"),
            F.col("place.road").alias("road"),
            F.col("place.limitKmh").alias("speedLimit"),
            *columns,
        )

    gps = source(
        "gps",
        F.col("deviceId"),
        F.col("speed"),
        *[nothing.alias(c) for c in ("temperature", "precipitation", "windSpeed", "airQuality")],
        no_text.alias("incidentId"),
    )
    weather = source(
        "weather",
        no_text.alias("deviceId"),
        nothing.alias("speed"),
        F.col("temperature"),
        F.col("precipitation"),
        F.col("windSpeed"),
        F.col("airQualityIndex").alias("airQuality"),
        no_text.alias("incidentId"),
    )
    incidents = source(
        "emergency",
        no_text.alias("deviceId"),
        *[
            nothing.alias(c)
            for c in ("speed", "temperature", "precipitation", "windSpeed", "airQuality")
        ],
        F.col("incidentId"),
    )
    events = (
        gps.unionByName(weather)
        .unionByName(incidents)
        .withWatermark("timestamp", settings.road_watermark)
        .dropDuplicates(["stream", "id", "timestamp"])
    )
    window = F.window("timestamp", settings.road_window)
    grouped = events.groupBy(window.alias("window"), "section", "road", "speedLimit").agg(
        F.size(F.collect_set("deviceId")).cast("long").alias("vehicleCount"),
        F.round(F.avg("speed"), 2).alias("avgSpeed"),
        F.round(F.percentile("speed", 0.95), 2).alias("p95Speed"),
        F.round(F.avg("temperature"), 2).alias("temperature"),
        F.round(F.avg("precipitation"), 2).alias("precipitation"),
        F.round(F.avg("windSpeed"), 2).alias("windSpeed"),
        F.round(F.avg("airQuality"), 2).alias("airQualityIndex"),
        F.size(F.collect_set("incidentId")).cast("long").alias("activeIncidents"),
    )
    return grouped.select(
        alert_id("road_conditions", F.col("section"), F.col("window.start").cast("string")).alias(
            "id"
        ),
        F.lit(ROAD.version).alias("schemaVersion"),
        "section",
        "road",
        F.col("window.start").alias("timestamp"),
        F.col("window.end").alias("windowEnd"),
        "vehicleCount",
        "avgSpeed",
        "p95Speed",
        "speedLimit",
        "temperature",
        "precipitation",
        "windSpeed",
        "airQualityIndex",
        "activeIncidents",
    )


# --- to Kafka ----------------------------------------------------------------------------------


def to_kafka_records(rows: DataFrame, stream: str) -> DataFrame:
    """Contract-shaped JSON values (timestamps ISO-8601 UTC with ``Z``) keyed by the key field."""
    contract = CONTRACTS[stream]
    return rows.select(
        F.col(contract.key_field).cast("string").alias("key"),
        F.to_json(
            F.struct(*[F.col(f) for f in contract.field_names]),
            {"timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", "ignoreNullFields": "true"},
        ).alias("value"),
    )


PLANS = {
    "alerts": (alerts_plan, "alerts"),
    "stopped": (stopped_plan, "alerts"),
    "road_conditions": (road_conditions_plan, "road_conditions"),
}


def start_queries(
    spark: SparkSession,
    kafka: KafkaSettings,
    job: JobSettings,
    settings: AlertSettings,
    trigger: Mapping[str, object],
) -> list:
    """Start the three queries (Kafka sinks, own checkpoints) in the ``alerts`` scheduler pool."""
    check_python_packages()
    spark.sparkContext.setLocalProperty("spark.scheduler.pool", "alerts")
    queries = []
    try:
        for name in QUERIES:
            plan, stream = PLANS[name]
            query = (
                to_kafka_records(plan(spark, kafka, job, settings), stream)
                .writeStream.queryName(name)
                .format("kafka")
                .options(**spark_kafka_options(kafka))
                .option("topic", kafka.topic(stream))
                .option("checkpointLocation", job.query_checkpoint(name))
                .outputMode("append")
                # pyspark types trigger() as one overload per keyword; a mapping holding exactly
                # one of them (built by emr_jobs.job) matches none of them statically.
                .trigger(**trigger)  # type: ignore[call-overload]
                .start()
            )
            queries.append(query)
    finally:
        # None removes the property (Spark's SparkContext.setLocalProperty documents null as
        # "remove"); pyspark's annotation allows only str.
        spark.sparkContext.setLocalProperty(
            "spark.scheduler.pool",
            None,  # type: ignore[arg-type]
        )
    return queries
