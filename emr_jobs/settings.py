"""The job's settings, read from the environment.

Kafka settings live in ``emr_jobs.core.kafka``, the producer's in ``producer.settings``.
``from_env()`` reads the process
environment; tests build settings by passing values to the constructor. A wrong value fails at
start-up with a message that names the environment variable.

Standard library only: the producer imports this module and must not pull in pyspark.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

from emr_jobs.core.contracts import LAKE
from emr_jobs.core.paths import REPO_ROOT
from emr_jobs.core.settings import (
    SettingsError,
    check_choice,
    check_duration,
    check_range,
    duration_seconds,
    env_bool,
    env_float,
    env_int,
    env_str,
)


def default_lake_uri() -> str:
    return (REPO_ROOT / "lake").as_uri()


_LAKE_SCHEMES = ("file", "s3", "s3a")
TRIGGERS = ("processingTime", "availableNow")
STARTING_OFFSETS = ("earliest", "latest")
#: LAKE_CATALOG: ``jdbc`` is Iceberg's JDBC catalog on a SQLite file (local runs, compose, any
#: S3-compatible store); ``glue`` is the AWS Glue Data Catalog (EMR).
CATALOGS = ("jdbc", "glue")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def _scheme(uri: str) -> str:
    return uri.split("://", 1)[0] if "://" in uri else ""


@dataclass(frozen=True)
class JobSettings:
    """Settings of the Spark job (environment variable in brackets)."""

    lake_uri: str = ""  # [LAKE_URI] file://, s3a:// or s3:// URI of the lake root
    catalog: str = "jdbc"  # [LAKE_CATALOG] jdbc | glue
    catalog_uri: str = ""  # [LAKE_CATALOG_URI] jdbc:sqlite:<file>; default <lake>/catalog.db
    database: str = "smartcity"  # [LAKE_DATABASE] Iceberg namespace / Glue database
    trigger: str = "processingTime"  # [JOB_TRIGGER] processingTime | availableNow
    trigger_interval: str = "10 seconds"  # [JOB_TRIGGER_INTERVAL]
    dedupe_window: str = "2 minutes"  # [JOB_DEDUPE_WINDOW] repeats of an id this close are one
    late_after: str = "2 minutes"  # [JOB_LATE_AFTER] this far behind the newest: counted late
    max_future: str = "5 minutes"  # [JOB_MAX_FUTURE] event time this far past Kafka's: quarantine
    event_time_floor: str = "2000-01-01T00:00:00Z"  # [JOB_EVENT_TIME_FLOOR] earlier: quarantine
    max_offsets_per_trigger: int | None = None  # [JOB_MAX_OFFSETS_PER_TRIGGER] unset = no cap
    starting_offsets: str = "earliest"  # [JOB_STARTING_OFFSETS] earliest | latest
    shuffle_partitions: int = 4  # [JOB_SHUFFLE_PARTITIONS]
    publish_metrics: bool = False  # [JOB_PUBLISH_METRICS] CloudWatch lag metric (AWS mode)
    timeout_seconds: int | None = None  # [JOB_TIMEOUT_SECONDS] stop a continuous run after this

    def __post_init__(self) -> None:
        if not self.lake_uri:
            object.__setattr__(self, "lake_uri", default_lake_uri())
        if _scheme(self.lake_uri) not in _LAKE_SCHEMES:
            raise SettingsError(
                f"LAKE_URI must start with file://, s3a:// or s3://; got {self.lake_uri!r}"
            )
        check_choice("LAKE_CATALOG", self.catalog, CATALOGS)
        if self.catalog == "jdbc":
            if not self.catalog_uri:
                if _scheme(self.lake_uri) != "file":
                    raise SettingsError(
                        "LAKE_CATALOG_URI is required when LAKE_CATALOG=jdbc and the lake is not "
                        "a file:// URI (the SQLite catalog is a local file), e.g. "
                        "jdbc:sqlite:/var/lib/smartcity/catalog.db"
                    )
                local = unquote(urlparse(self.lake_uri).path).rstrip("/")
                object.__setattr__(self, "catalog_uri", f"jdbc:sqlite:{local}/catalog.db")
            if not self.catalog_uri.startswith("jdbc:sqlite:") or len(self.catalog_uri) <= 12:
                raise SettingsError(
                    "LAKE_CATALOG_URI must look like jdbc:sqlite:/path/to/catalog.db; "
                    f"got {self.catalog_uri!r}"
                )
        elif _scheme(self.lake_uri) == "file":
            raise SettingsError("LAKE_CATALOG=glue needs an s3:// LAKE_URI")
        if not re.match(r"^[a-z_][a-z0-9_]*$", self.database):
            raise SettingsError(
                f"LAKE_DATABASE must be lower-case letters, digits and _; got {self.database!r}"
            )
        check_choice("JOB_TRIGGER", self.trigger, TRIGGERS)
        check_duration("JOB_TRIGGER_INTERVAL", self.trigger_interval)
        check_duration("JOB_DEDUPE_WINDOW", self.dedupe_window)
        check_duration("JOB_LATE_AFTER", self.late_after)
        check_duration("JOB_MAX_FUTURE", self.max_future)
        if not _TIMESTAMP.match(self.event_time_floor):
            raise SettingsError(
                "JOB_EVENT_TIME_FLOOR must look like 2000-01-01T00:00:00Z; "
                f"got {self.event_time_floor!r}"
            )
        check_choice("JOB_STARTING_OFFSETS", self.starting_offsets, STARTING_OFFSETS)
        if self.max_offsets_per_trigger is not None:
            check_range("JOB_MAX_OFFSETS_PER_TRIGGER", self.max_offsets_per_trigger, 1, None)
        check_range("JOB_SHUFFLE_PARTITIONS", self.shuffle_partitions, 1, 10_000)
        if self.timeout_seconds is not None:
            check_range("JOB_TIMEOUT_SECONDS", self.timeout_seconds, 1, None)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> JobSettings:
        env = os.environ if env is None else env
        return cls(
            lake_uri=env_str(env, "LAKE_URI", ""),
            catalog=env_str(env, "LAKE_CATALOG", "jdbc"),
            catalog_uri=env_str(env, "LAKE_CATALOG_URI", ""),
            database=env_str(env, "LAKE_DATABASE", "smartcity"),
            trigger=env_str(env, "JOB_TRIGGER", "processingTime"),
            trigger_interval=env_str(env, "JOB_TRIGGER_INTERVAL", "10 seconds"),
            dedupe_window=env_str(env, "JOB_DEDUPE_WINDOW", "2 minutes"),
            late_after=env_str(env, "JOB_LATE_AFTER", "2 minutes"),
            max_future=env_str(env, "JOB_MAX_FUTURE", "5 minutes"),
            event_time_floor=env_str(env, "JOB_EVENT_TIME_FLOOR", "2000-01-01T00:00:00Z"),
            max_offsets_per_trigger=env_int(env, "JOB_MAX_OFFSETS_PER_TRIGGER", None, minimum=1),
            starting_offsets=env_str(env, "JOB_STARTING_OFFSETS", "earliest"),
            shuffle_partitions=env_int(env, "JOB_SHUFFLE_PARTITIONS", 4, minimum=1),
            publish_metrics=env_bool(env, "JOB_PUBLISH_METRICS", False),
            timeout_seconds=env_int(env, "JOB_TIMEOUT_SECONDS", None, minimum=1),
        )

    @property
    def checkpoint_location(self) -> str:
        return LAKE.checkpoint_location(self.lake_uri)

    def query_checkpoint(self, query: str) -> str:
        """Checkpoint of one of the derived queries (``alerts``, ``stopped``, ...)."""
        return LAKE.checkpoint_location(self.lake_uri, query)

    def table_location(self, table: str) -> str:
        return LAKE.table_location(self.lake_uri, table)

    def table(self, name: str) -> str:
        """The Spark identifier of one lake table: ``lake.<database>.<name>``."""
        return f"{LAKE.catalog}.{self.database}.{name}"


@dataclass(frozen=True)
class AlertSettings:
    """The alert and road-condition queries and their thresholds (README, "Alerts")."""

    enabled: bool = True  # [ALERTS_ENABLED] run the alert and road-condition queries
    trigger_interval: str = "0 seconds"  # [ALERT_TRIGGER_INTERVAL] 0: next batch at once
    watermark: str = "10 seconds"  # [ALERT_WATERMARK] how late an event may be and still count
    approach_km: float = 5.0  # [ALERT_APPROACH_KM] an incident this far ahead on the route
    incident_horizon: str = "30 minutes"  # [ALERT_INCIDENT_HORIZON] an Active report lasts
    weather_period: str = "15 minutes"  # [ALERT_WEATHER_PERIOD] one alert per section and period
    heavy_rain_mm: float = 4.0  # [ALERT_HEAVY_RAIN_MM] precipitation, mm/h
    strong_wind_kmh: float = 50.0  # [ALERT_STRONG_WIND_KMH]
    poor_air_quality: float = 100.0  # [ALERT_POOR_AIR_QUALITY] air-quality index
    speeding_tolerance_kmh: float = 5.0  # [ALERT_SPEEDING_TOLERANCE_KMH] over the section's limit
    stopped_after: str = "2 minutes"  # [ALERT_STOPPED_AFTER] stopped on a motorway this long
    stopped_speed_kmh: float = 5.0  # [ALERT_STOPPED_SPEED_KMH] below this counts as stopped
    section_max_km: float = 1.0  # [ROAD_SECTION_MAX_KM] further from the route: no section
    road_window: str = "1 minute"  # [ROAD_CONDITIONS_WINDOW]
    road_watermark: str = "10 seconds"  # [ROAD_CONDITIONS_WATERMARK]

    def __post_init__(self) -> None:
        for name, value in (
            ("ALERT_TRIGGER_INTERVAL", self.trigger_interval),
            ("ALERT_WATERMARK", self.watermark),
            ("ALERT_INCIDENT_HORIZON", self.incident_horizon),
            ("ALERT_WEATHER_PERIOD", self.weather_period),
            ("ALERT_STOPPED_AFTER", self.stopped_after),
            ("ROAD_CONDITIONS_WINDOW", self.road_window),
            ("ROAD_CONDITIONS_WATERMARK", self.road_watermark),
        ):
            check_duration(name, value)
        for name, value in (
            ("ALERT_INCIDENT_HORIZON", self.incident_horizon),
            ("ALERT_WEATHER_PERIOD", self.weather_period),
            ("ALERT_STOPPED_AFTER", self.stopped_after),
            ("ROAD_CONDITIONS_WINDOW", self.road_window),
        ):
            check_range(name, duration_seconds(value), 1, None)
        for name, number in (
            ("ALERT_APPROACH_KM", self.approach_km),
            ("ALERT_HEAVY_RAIN_MM", self.heavy_rain_mm),
            ("ALERT_STRONG_WIND_KMH", self.strong_wind_kmh),
            ("ALERT_POOR_AIR_QUALITY", self.poor_air_quality),
            ("ALERT_STOPPED_SPEED_KMH", self.stopped_speed_kmh),
            ("ROAD_SECTION_MAX_KM", self.section_max_km),
        ):
            check_range(name, number, 0.001, None)
        check_range("ALERT_SPEEDING_TOLERANCE_KMH", self.speeding_tolerance_kmh, 0, None)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AlertSettings:
        env = os.environ if env is None else env
        d = cls.__dataclass_fields__
        return cls(
            enabled=env_bool(env, "ALERTS_ENABLED", d["enabled"].default),
            trigger_interval=env_str(env, "ALERT_TRIGGER_INTERVAL", d["trigger_interval"].default),
            watermark=env_str(env, "ALERT_WATERMARK", d["watermark"].default),
            approach_km=env_float(env, "ALERT_APPROACH_KM", d["approach_km"].default),
            incident_horizon=env_str(env, "ALERT_INCIDENT_HORIZON", d["incident_horizon"].default),
            weather_period=env_str(env, "ALERT_WEATHER_PERIOD", d["weather_period"].default),
            heavy_rain_mm=env_float(env, "ALERT_HEAVY_RAIN_MM", d["heavy_rain_mm"].default),
            strong_wind_kmh=env_float(env, "ALERT_STRONG_WIND_KMH", d["strong_wind_kmh"].default),
            poor_air_quality=env_float(
                env, "ALERT_POOR_AIR_QUALITY", d["poor_air_quality"].default
            ),
            speeding_tolerance_kmh=env_float(
                env, "ALERT_SPEEDING_TOLERANCE_KMH", d["speeding_tolerance_kmh"].default
            ),
            stopped_after=env_str(env, "ALERT_STOPPED_AFTER", d["stopped_after"].default),
            stopped_speed_kmh=env_float(
                env, "ALERT_STOPPED_SPEED_KMH", d["stopped_speed_kmh"].default
            ),
            section_max_km=env_float(env, "ROAD_SECTION_MAX_KM", d["section_max_km"].default),
            road_window=env_str(env, "ROAD_CONDITIONS_WINDOW", d["road_window"].default),
            road_watermark=env_str(env, "ROAD_CONDITIONS_WATERMARK", d["road_watermark"].default),
        )
