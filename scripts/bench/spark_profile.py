"""The job's own Spark metrics, from Spark's event log (``spark.eventLog.enabled``).

The benchmark turns the event log on with ``--conf`` when it starts the job, so the job runs
unchanged. The log holds every streaming query's progress events (the same
``StreamingQueryProgress`` a listener sees: rows and the time split of each batch) and every
task's metrics (run time, CPU time, GC time), which give a noise-resistant figure: task CPU time
per 1,000 rows, next to the batch ceiling's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

PROGRESS = "org.apache.spark.sql.streaming.StreamingQueryListener$QueryProgressEvent"
PHASES = ("latestOffset", "getBatch", "queryPlanning", "addBatch", "walCommit", "commitOffsets")


def event_log_conf(directory: Path) -> dict[str, str]:
    """Spark settings that write the event log into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    return {"spark.eventLog.enabled": "true", "spark.eventLog.dir": directory.resolve().as_uri()}


def _events(directory: Path) -> Iterator[dict]:
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if '"Event":"SparkListenerTaskEnd"' in line or PROGRESS in line:
                    yield json.loads(line)


def profile(directory: Path) -> dict:
    """Task time and, for streaming queries, the split of batch time by phase.

    ``batch_ms`` sums each ``durationMs`` phase over all batches of all queries, per area
    (``data``/``quarantine``); queries run concurrently, so these are query-seconds, not wall
    seconds. ``task_*_s`` sum over all tasks.
    """
    tasks = run_ms = cpu_ns = gc_ms = 0
    batches: dict[str, dict[str, int]] = {}
    rows: dict[str, int] = {}
    counts: dict[str, int] = {}
    if not directory.is_dir():
        return {}
    for event in _events(directory):
        if event["Event"] == "SparkListenerTaskEnd":
            metrics = event.get("Task Metrics") or {}
            tasks += 1
            run_ms += metrics.get("Executor Run Time", 0)
            cpu_ns += metrics.get("Executor CPU Time", 0)
            gc_ms += metrics.get("JVM GC Time", 0)
            continue
        progress = event["progress"]
        area = (progress.get("name") or "").partition(":")[2] or "query"
        split = batches.setdefault(area, dict.fromkeys(PHASES, 0))
        for phase in PHASES:
            split[phase] += int(progress.get("durationMs", {}).get(phase, 0))
        read = sum(int(src.get("numInputRows", 0)) for src in progress.get("sources", []))
        rows[area] = rows.get(area, 0) + read
        counts[area] = counts.get(area, 0) + 1
    return {
        "tasks": tasks,
        "task_run_s": run_ms / 1000,
        "task_cpu_s": cpu_ns / 1e9,
        "task_gc_s": gc_ms / 1000,
        "batches": counts,
        "rows_read": rows,
        "batch_ms": batches,
    }
