"""History from the Iceberg lake, read through the catalog with ``scripts.lake.read_table``.

The same reader ``python -m scripts.lake`` uses: pyiceberg plans the scan from the catalog (only
committed snapshots), prunes files by partition and column bounds, and returns Arrow.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from emr_jobs.core.contracts import LAKE
from emr_jobs.settings import JobSettings
from scripts.lake import catalog, read_table

#: Ids that go into a scan filter: what the simulator and the job make (no quotes, no spaces).
SAFE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _rows(table) -> list[dict]:
    rows = table.to_pylist()
    for row in rows:
        for key, value in row.items():
            if isinstance(value, datetime):
                row[key] = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            elif isinstance(value, bytes):
                row[key] = None  # raw bytes stay in the lake
    return rows


def tables(job: JobSettings) -> set[str]:
    from pyiceberg.exceptions import NoSuchNamespaceError

    try:
        return {name for _, name in catalog(job).list_tables(job.database)}
    except NoSuchNamespaceError:  # the job has made the catalog, not yet its tables
        return set()


def vehicle_track(
    job: JobSettings, device_id: str, *, until: datetime, minutes: int = 60
) -> list[dict]:
    """One vehicle's readings in the ``minutes`` before ``until``, oldest first."""
    if not SAFE_ID.match(device_id):
        raise ValueError(f"not a device id: {device_id!r}")
    since = until - timedelta(minutes=minutes)
    table = read_table(
        LAKE.data_table("vehicle"),
        job,
        row_filter=(
            f"deviceId == '{device_id}' AND timestamp >= '{_iso(since)}' "
            f"AND timestamp <= '{_iso(until)}'"
        ),
        columns=("timestamp", "location", "speed", "direction", "odometerKm", "fuelLevel"),
    )
    return sorted(_rows(table), key=lambda r: r["timestamp"])


def incident_timeline(job: JobSettings, incident_id: str) -> list[dict]:
    """Everything the lake holds about one incident, oldest first: the vehicle's reports
    (``emergency``: Active, Resolved) and, once the job writes them, its ``alerts``."""
    if not SAFE_ID.match(incident_id):
        raise ValueError(f"not an incident id: {incident_id!r}")
    present = tables(job)
    out: list[dict] = []
    for name, kind, columns in (
        (
            LAKE.data_table("emergency"),
            "report",
            ("timestamp", "status", "type", "description", "deviceId", "location"),
        ),
        (
            LAKE.data_table("alerts"),
            "alert",
            (
                "timestamp",
                "detectedAt",
                "rule",
                "severity",
                "status",
                "message",
                "deviceId",
                "location",
                "id",
            ),
        ),
    ):
        if name not in present:
            continue
        table = read_table(name, job, row_filter=f"incidentId == '{incident_id}'", columns=columns)
        out += [dict(row, kind=kind) for row in _rows(table)]
    return sorted(out, key=lambda r: (r["timestamp"], r["kind"]))


def recent(job: JobSettings, stream: str, *, since: datetime) -> list[dict]:
    """A derived stream's rows (``alerts``, ``road_conditions``) with event time since ``since``;
    empty while the job has not created the table."""
    name = LAKE.data_table(stream)
    if name not in tables(job):
        return []
    table = read_table(name, job, row_filter=f"timestamp >= '{_iso(since)}'")
    rows = _rows(table)
    for row in rows:
        for key in [k for k in row if k.startswith("kafka") or k == "ingestTime"]:
            del row[key]
    return sorted(rows, key=lambda r: r["timestamp"])
