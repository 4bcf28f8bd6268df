"""What the job has done so far: record totals per stream, batch timings and the Kafka lag.

The lake writer (``emr_jobs.lake_writer``) adds each batch's totals to a :class:`Progress`.
:class:`ProgressListener`, registered for all of the job's queries, logs a progress line every
ten seconds and publishes the lag metric the CloudWatch alarm watches
(:func:`publish_lag_metric`). :func:`summary` is what the job prints at the end
(``JOB_SUMMARY``). One home for the accounting that the writer, the listener and ``main`` share.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from pyspark.sql.streaming import StreamingQueryListener

from emr_jobs.core.contracts import ALL_STREAMS, LAKE

#: The job's one logger: its lines read the same whichever of its modules writes them.
log = logging.getLogger("emr_jobs.job")


@dataclass
class StreamTotals:
    """What became of the records of one stream: ``read = written + quarantined + duplicates``."""

    read: int = 0
    written: int = 0
    quarantined: int = 0
    duplicates: int = 0
    late: int = 0

    def add(self, other: StreamTotals) -> None:
        for name in ("read", "written", "quarantined", "duplicates", "late"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Progress:
    """Totals per stream, batch timings and the Kafka lag, for logs, metrics and the summary."""

    totals: dict[str, StreamTotals] = field(default_factory=dict)
    batches: int = 0
    batch_seconds: list[float] = field(default_factory=list)
    offsets_behind_latest: int | None = None
    last_log: float = 0.0

    def stream(self, name: str) -> StreamTotals:
        return self.totals.setdefault(name, StreamTotals())


def offsets_behind_latest(progress: dict) -> int | None:
    """The largest ``maxOffsetsBehindLatest`` of a progress event's Kafka sources, if any."""
    behind = [
        int(v)
        for source in progress.get("sources", [])
        for v in [(source.get("metrics") or {}).get("maxOffsetsBehindLatest")]
        if v is not None
    ]
    return max(behind) if behind else None


class ProgressListener(StreamingQueryListener):
    """Logs a progress line every ``every`` seconds and publishes the lag metric if asked."""

    def __init__(
        self, progress: Progress, every: float = 10.0, publish: bool = False, region: str = ""
    ) -> None:
        self.progress = progress
        self.every = every
        self.publish = publish
        self.region = region

    def onQueryStarted(self, event) -> None:  # noqa: N802 - Spark's API
        log.info("query %s started (id %s)", event.name, event.id)

    def onQueryProgress(self, event) -> None:  # noqa: N802
        doc = json.loads(event.progress.json)
        behind = offsets_behind_latest(doc)
        if behind is not None:
            self.progress.offsets_behind_latest = behind
        if self.publish and behind is not None:
            try:
                publish_lag_metric(behind, self.region)
            except Exception as err:  # noqa: BLE001 - metrics must never stop the job
                # A missing boto3 or a CloudWatch outage is reported once, not per batch.
                self.publish = False
                log.warning("lag metric disabled: cannot publish to CloudWatch (%s)", err)
        now = time.monotonic()
        if now - self.progress.last_log >= self.every:
            self.progress.last_log = now
            log.info("progress: %s", format_progress_line(self.progress))

    def onQueryIdle(self, event) -> None:  # noqa: N802
        pass

    def onQueryTerminated(self, event) -> None:  # noqa: N802
        if event.exception:
            log.error("query %s failed: %s", event.id, event.exception.splitlines()[0])


def format_progress_line(progress: Progress) -> str:
    parts = [f"batches={progress.batches}"]
    if progress.offsets_behind_latest is not None:
        parts.append(f"behind={progress.offsets_behind_latest}")
    for name, t in sorted(progress.totals.items()):
        parts.append(
            f"{name} read={t.read} written={t.written} quarantined={t.quarantined} "
            f"duplicates={t.duplicates} late={t.late}"
        )
    return "; ".join(parts)


def publish_lag_metric(behind: int, region: str) -> None:
    """``MaxOffsetsBehindLatest`` of the job's one Kafka source to CloudWatch (infra/ alarms on it).

    Spark's Kafka source commits no consumer-group offsets, so MSK's own lag metrics stay
    empty for this job; this is the metric the lag alarm uses.
    """
    import boto3

    boto3.client("cloudwatch", region_name=region or None).put_metric_data(
        Namespace=LAKE.metrics_namespace,
        MetricData=[
            {
                "MetricName": LAKE.lag_metric,
                "Dimensions": [{"Name": LAKE.metrics_dimension, "Value": "all"}],
                "Value": float(behind),
                "Unit": "Count",
            }
        ],
    )


def summary(progress: Progress, streams: Sequence[str] = ALL_STREAMS) -> dict[str, dict[str, int]]:
    """Per stream: read, written, quarantined, duplicates (the three add up to read) and late."""
    return {s: vars(progress.totals.get(s, StreamTotals())).copy() for s in streams}
