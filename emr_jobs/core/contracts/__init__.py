"""Event contracts: the one source of truth for every stream.

Each stream has a JSON file beside this module (``vehicle.json``, ``gps.json``, ...). The
producer's events, the Spark schema and validation, the Glue table columns (Terraform reads the
same files with ``jsondecode(file(...))``) and the field tables of contracts/README.md are all
derived from them. ``_lake.json`` holds what the job adds to every row and the lake layout.

This module imports nothing from the project and nothing outside the standard library, so the
producer, the job, the scripts and Terraform-facing tests can all use it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any

#: Field types a contract may use. ``location`` is the shared ``{latitude, longitude}`` struct.
FIELD_TYPES = ("string", "int", "long", "double", "timestamp", "boolean", "location")

#: How each contract type is spelt as a Hive/Glue column type (also used by infra/modules/glue).
GLUE_TYPES = {
    "string": "string",
    "int": "int",
    "long": "bigint",
    "double": "double",
    "timestamp": "timestamp",
    "boolean": "boolean",
    "location": "struct<latitude:double,longitude:double>",
    "binary": "binary",
}

LATITUDE_RANGE = (-90.0, 90.0)
LONGITUDE_RANGE = (-180.0, 180.0)


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool
    description: str = ""
    min: float | None = None
    max: float | None = None
    enum: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise ValueError(f"field {self.name!r}: unknown type {self.type!r}; use {FIELD_TYPES}")


@dataclass(frozen=True)
class Contract:
    stream: str
    version: int
    topic_env: str
    default_topic: str
    description: str
    id_field: str
    event_time_field: str
    key_field: str
    fields: tuple[Field, ...] = field(default_factory=tuple)
    #: ``producer`` for the five sensor streams; ``job`` for what the job derives (alerts, ...).
    produced_by: str = "producer"

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.stream} has no field {name!r}")

    def violations(self, event: Any) -> list[str]:
        """The rules ``event`` (a decoded JSON value) breaks; empty when it is valid.

        The Spark job applies the same rules (``emr_jobs.transforms.validate``); a test holds
        the two to each other, so the wording of each reason is part of the contract.
        """
        if not isinstance(event, dict):
            return [f"not a JSON object: {type(event).__name__}"]
        problems: list[str] = []
        for f in self.fields:
            value = event.get(f.name)
            if value is None:
                if f.required:
                    problems.append(f"{f.name}: required")
                continue
            if not _has_type(value, f.type):
                problems.append(f"{f.name}: expected {f.type}")
                continue
            problems.extend(_range_and_enum(f, value))
        version = event.get("schemaVersion")
        if isinstance(version, int) and not isinstance(version, bool) and version > self.version:
            problems.append(self.newer_version_reason(version))
        return problems

    def newer_version_reason(self, version: int | str) -> str:
        """Events written against a later contract than the job's: fields it cannot store."""
        return f"schemaVersion: {version} is newer than this job's contract ({self.version})"


@dataclass(frozen=True)
class LakeLayout:
    """The Iceberg lake: extra columns, table names, partition specs, exactly-once properties."""

    metadata_columns: tuple[dict[str, str], ...]
    quarantine_columns: tuple[dict[str, str], ...]
    duplicate_columns: tuple[dict[str, str], ...]
    catalog: str
    database: str
    format_version: int
    data_partition: str
    quarantine_partition: str
    duplicates_partition: str
    quarantine_suffix: str
    duplicates_table: str
    query_id_property: str
    batch_id_property: str
    tables_prefix: str
    checkpoints_prefix: str
    metrics_namespace: str
    lag_metric: str
    metrics_dimension: str
    consumer_group_prefix: str

    def data_table(self, stream: str) -> str:
        return stream

    def quarantine_table(self, stream: str) -> str:
        return f"{stream}{self.quarantine_suffix}"

    def tables(self, streams: tuple[str, ...] | list[str]) -> list[str]:
        """Every table the job writes for ``streams``: data, quarantine, then duplicates."""
        return [
            *[self.data_table(s) for s in streams],
            *[self.quarantine_table(s) for s in streams],
            self.duplicates_table,
        ]

    def table_location(self, lake_uri: str, table: str) -> str:
        """``<lake>/tables/<table>``: the same path in every catalog (Terraform uses it too)."""
        return f"{lake_uri.rstrip('/')}/{self.tables_prefix}/{table}"

    def checkpoint_location(self, lake_uri: str, query: str = "job") -> str:
        """``<lake>/checkpoints/<query>``: ``job`` is the lake writer's."""
        return f"{lake_uri.rstrip('/')}/{self.checkpoints_prefix}/{query}"


def _has_type(value: Any, type_: str) -> bool:
    if type_ == "string":
        return isinstance(value, str)
    if type_ in ("int", "long"):
        return (
            isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31
            if type_ == "int"
            else isinstance(value, int) and not isinstance(value, bool)
        )
    if type_ == "double":
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    if type_ == "boolean":
        return isinstance(value, bool)
    if type_ == "timestamp":
        return isinstance(value, str) and parse_timestamp(value) is not None
    if type_ == "location":
        return isinstance(value, dict) and all(
            isinstance(value.get(k), int | float) and not isinstance(value.get(k), bool)
            for k in ("latitude", "longitude")
        )
    return False


def _range_and_enum(f: Field, value: Any) -> list[str]:
    problems = []
    if f.type == "location":
        lat, lon = value["latitude"], value["longitude"]
        if not LATITUDE_RANGE[0] <= lat <= LATITUDE_RANGE[1]:
            problems.append("location.latitude: out of range [-90, 90]")
        if not LONGITUDE_RANGE[0] <= lon <= LONGITUDE_RANGE[1]:
            problems.append("location.longitude: out of range [-180, 180]")
        return problems
    if f.min is not None and value < f.min:
        problems.append(f"{f.name}: below minimum {_num(f.min)}")
    if f.max is not None and value > f.max:
        problems.append(f"{f.name}: above maximum {_num(f.max)}")
    if f.enum is not None and value not in f.enum:
        problems.append(f"{f.name}: not one of {'|'.join(f.enum)}")
    return problems


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def parse_timestamp(text: str) -> datetime | None:
    """Parse an ISO-8601 timestamp with an explicit offset (``Z`` or ``+hh:mm``)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def format_timestamp(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and a ``Z``: the one wire form of every timestamp."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _load_json(name: str) -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))


def _load_contract(stream: str) -> Contract:
    doc = _load_json(f"{stream}.json")
    fields = tuple(
        Field(
            name=f["name"],
            type=f["type"],
            required=bool(f["required"]),
            description=f.get("description", ""),
            min=f.get("min"),
            max=f.get("max"),
            enum=tuple(f["enum"]) if "enum" in f else None,
        )
        for f in doc["fields"]
    )
    return Contract(
        stream=doc["stream"],
        version=int(doc["version"]),
        topic_env=doc["topic_env"],
        default_topic=doc["default_topic"],
        description=doc["description"],
        id_field=doc["id_field"],
        event_time_field=doc["event_time_field"],
        key_field=doc["key_field"],
        fields=fields,
        produced_by=doc["produced_by"],
    )


def _load_layout() -> LakeLayout:
    doc = _load_json("_lake.json")
    ice = doc["iceberg"]
    return LakeLayout(
        metadata_columns=tuple(doc["metadata_columns"]),
        quarantine_columns=tuple(doc["quarantine_columns"]),
        duplicate_columns=tuple(doc["duplicate_columns"]),
        catalog=ice["catalog"],
        database=ice["database"],
        format_version=int(ice["format_version"]),
        data_partition=ice["data_partition"],
        quarantine_partition=ice["quarantine_partition"],
        duplicates_partition=ice["duplicates_partition"],
        quarantine_suffix=ice["quarantine_suffix"],
        duplicates_table=ice["duplicates_table"],
        query_id_property=ice["query_id_property"],
        batch_id_property=ice["batch_id_property"],
        tables_prefix=doc["layout"]["tables"],
        checkpoints_prefix=doc["layout"]["checkpoints"],
        metrics_namespace=doc["metrics"]["namespace"],
        lag_metric=doc["metrics"]["lag_metric"],
        metrics_dimension=doc["metrics"]["dimension"],
        consumer_group_prefix=doc["consumer_group_prefix"],
    )


#: The five sensor streams the producer sends, in a fixed order.
STREAMS: tuple[str, ...] = ("vehicle", "gps", "traffic_camera", "weather", "emergency")
#: What the job derives from them, to Kafka and to the lake (``emr_jobs.alerts``).
DERIVED_STREAMS: tuple[str, ...] = ("alerts", "road_conditions")
#: Every stream with a contract, a topic and tables: the lake writer reads all of them.
ALL_STREAMS: tuple[str, ...] = STREAMS + DERIVED_STREAMS
CONTRACTS: dict[str, Contract] = {s: _load_contract(s) for s in ALL_STREAMS}
LAKE: LakeLayout = _load_layout()
