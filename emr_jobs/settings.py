"""The job's settings: where the lake is, how the job triggers, and the alert thresholds.

Kafka's settings are ``emr_jobs.core.kafka.KafkaSettings``, shared with the producer. Each field
declares its variable, default, checks and help in one place (``emr_jobs.core.settings``).
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import unquote, urlparse

from pydantic import field_validator, model_validator

# typing.Self is Python 3.11; the compose stack's Spark image runs the job on 3.10.
from typing_extensions import Self  # noqa: UP035

from emr_jobs.core.contracts import LAKE
from emr_jobs.core.paths import REPO_ROOT
from emr_jobs.core.settings import Duration, Settings, duration_seconds, setting

#: LAKE_CATALOG: ``jdbc`` is Iceberg's JDBC catalog on a SQLite file (local runs, compose, any
#: S3-compatible store); ``glue`` is the AWS Glue Data Catalog (EMR).
CATALOGS = ("jdbc", "glue")
TRIGGERS = ("processingTime", "availableNow")
_LAKE_SCHEMES = ("file", "s3", "s3a")


def default_lake_uri() -> str:
    return (REPO_ROOT / "lake").as_uri()


def _scheme(uri: str) -> str:
    return uri.split("://", 1)[0] if "://" in uri else ""


class JobSettings(Settings):
    """Settings of the Spark job."""

    lake_uri: str = setting(
        "LAKE_URI",
        description="lake root: file://, s3a:// or s3:// (default: ./lake)",
        flag="--lake-uri",
        default_factory=default_lake_uri,
    )
    catalog: Literal["jdbc", "glue"] = setting("LAKE_CATALOG", "jdbc", "jdbc | glue")
    catalog_uri: str = setting(
        "LAKE_CATALOG_URI", "", "jdbc:sqlite:<file>; default <lake>/catalog.db"
    )
    database: str = setting("LAKE_DATABASE", "smartcity", "Iceberg namespace / Glue database")
    trigger: Literal["processingTime", "availableNow"] = setting(
        "JOB_TRIGGER", "processingTime", "processingTime | availableNow"
    )
    trigger_interval: Duration = setting(
        "JOB_TRIGGER_INTERVAL",
        "10 seconds",
        "time between micro-batches",
        flag="--trigger-interval",
    )
    dedupe_window: Duration = setting(
        "JOB_DEDUPE_WINDOW", "2 minutes", "repeats of an event id this close are one"
    )
    late_after: Duration = setting(
        "JOB_LATE_AFTER", "2 minutes", "this far behind the newest: counted late"
    )
    max_future: Duration = setting(
        "JOB_MAX_FUTURE", "5 minutes", "event time this far past Kafka's: quarantine"
    )
    event_time_floor: str = setting(
        "JOB_EVENT_TIME_FLOOR",
        "2000-01-01T00:00:00Z",
        "earlier event times: quarantine",
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$",
    )
    max_offsets_per_trigger: int | None = setting(
        "JOB_MAX_OFFSETS_PER_TRIGGER", None, "records per micro-batch; unset: no cap", ge=1
    )
    starting_offsets: Literal["earliest", "latest"] = setting(
        "JOB_STARTING_OFFSETS", "earliest", "earliest | latest (a new checkpoint only)"
    )
    shuffle_partitions: int = setting(
        "JOB_SHUFFLE_PARTITIONS", 4, "spark.sql.shuffle.partitions", ge=1, le=10_000
    )
    publish_metrics: bool = setting(
        "JOB_PUBLISH_METRICS", False, "CloudWatch lag metric (AWS mode)"
    )
    timeout_seconds: int | None = setting(
        "JOB_TIMEOUT_SECONDS",
        None,
        "stop a continuous run after this many seconds",
        flag="--timeout-seconds",
        ge=1,
    )

    @field_validator("lake_uri")
    @classmethod
    def _lake_scheme(cls, value: str) -> str:
        if _scheme(value) not in _LAKE_SCHEMES:
            raise ValueError("must start with file://, s3a:// or s3://")
        return value

    @field_validator("database")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not re.match(r"^[a-z_][a-z0-9_]*$", value):
            raise ValueError("must be lower-case letters, digits and _")
        return value

    @model_validator(mode="after")
    def _catalog_fits_the_lake(self) -> Self:
        if self.catalog == "jdbc" and not self.catalog_uri and _scheme(self.lake_uri) == "file":
            # The SQLite catalog beside a local lake (a derived default: the model is frozen).
            local = unquote(urlparse(self.lake_uri).path).rstrip("/")
            object.__setattr__(self, "catalog_uri", f"jdbc:sqlite:{local}/catalog.db")
        if self.catalog == "glue":
            if _scheme(self.lake_uri) == "file":
                raise ValueError("LAKE_CATALOG=glue needs an s3:// LAKE_URI")
        elif not self.catalog_uri:
            raise ValueError(
                "LAKE_CATALOG_URI is required when LAKE_CATALOG=jdbc and the lake is not a "
                "file:// URI (the SQLite catalog is a local file), e.g. "
                "jdbc:sqlite:/var/lib/smartcity/catalog.db"
            )
        elif not self.catalog_uri.startswith("jdbc:sqlite:") or len(self.catalog_uri) <= 12:
            raise ValueError(
                "LAKE_CATALOG_URI must look like jdbc:sqlite:/path/to/catalog.db; "
                f"got {self.catalog_uri!r}"
            )
        return self

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


def _at_least_one_second(value: str) -> str:
    if duration_seconds(value) < 1:
        raise ValueError("must be at least 1 second")
    return value


class AlertSettings(Settings):
    """The alert and road-condition queries and their thresholds (emr_jobs/README.md)."""

    enabled: bool = setting("ALERTS_ENABLED", True, "run the alert and road-condition queries")
    trigger_interval: Duration = setting(
        "ALERT_TRIGGER_INTERVAL", "0 seconds", "0: the next batch starts at once"
    )
    watermark: Duration = setting(
        "ALERT_WATERMARK", "10 seconds", "how late an event may be and still count"
    )
    approach_km: float = setting(
        "ALERT_APPROACH_KM", 5.0, "an incident this far ahead on the route", ge=0.001
    )
    incident_horizon: Duration = setting(
        "ALERT_INCIDENT_HORIZON", "30 minutes", "how long an Active report lasts"
    )
    weather_period: Duration = setting(
        "ALERT_WEATHER_PERIOD", "15 minutes", "one weather alert per section and period"
    )
    heavy_rain_mm: float = setting("ALERT_HEAVY_RAIN_MM", 4.0, "precipitation, mm/h", ge=0.001)
    strong_wind_kmh: float = setting("ALERT_STRONG_WIND_KMH", 50.0, "wind, km/h", ge=0.001)
    poor_air_quality: float = setting(
        "ALERT_POOR_AIR_QUALITY", 100.0, "air-quality index", ge=0.001
    )
    speeding_tolerance_kmh: float = setting(
        "ALERT_SPEEDING_TOLERANCE_KMH", 5.0, "over the section's limit", ge=0
    )
    stopped_after: Duration = setting(
        "ALERT_STOPPED_AFTER", "2 minutes", "stopped on a motorway this long"
    )
    stopped_speed_kmh: float = setting(
        "ALERT_STOPPED_SPEED_KMH", 5.0, "below this counts as stopped", ge=0.001
    )
    section_max_km: float = setting(
        "ROAD_SECTION_MAX_KM", 1.0, "further from the route: no section", ge=0.001
    )
    road_window: Duration = setting("ROAD_CONDITIONS_WINDOW", "1 minute", "road-condition window")
    road_watermark: Duration = setting(
        "ROAD_CONDITIONS_WATERMARK", "10 seconds", "how late a reading may be and still count"
    )

    _positive = field_validator(
        "incident_horizon", "weather_period", "stopped_after", "road_window"
    )(_at_least_one_second)
