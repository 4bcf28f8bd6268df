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
SQL_START = "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart"
SQL_END = "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionEnd"
#: Root operators of the SQL executions inside a batch -> what they are in the job.
ROOTS = {
    "AppendData": "Iceberg appends (write files + commit)",
    "ObjectHashAggregate": "first action per stream (parse, validate, cache, statistics)",
    "HashAggregate": "aggregations (duplicates count)",
    "AdaptiveSparkPlan": "small queries (metadata tables, newest event times, dedupe scans)",
}
PHASES = ("latestOffset", "getBatch", "queryPlanning", "addBatch", "walCommit", "commitOffsets")


def event_log_conf(directory: Path) -> dict[str, str]:
    """Spark settings that write the event log into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    return {"spark.eventLog.enabled": "true", "spark.eventLog.dir": directory.resolve().as_uri()}


def metrics_conf(directory: Path, period_seconds: int = 2) -> dict[str, str]:
    """Spark settings that write the driver's Dropwizard metrics as CSV into ``directory``; among
    them the code generator's (``CodeGenerator.compilationTime``: one sample per class that
    Janino compiles)."""
    directory.mkdir(parents=True, exist_ok=True)
    prefix = "spark.metrics.conf.driver.sink.csv"
    return {
        f"{prefix}.class": "org.apache.spark.metrics.sink.CsvSink",
        f"{prefix}.directory": str(directory.resolve()),
        f"{prefix}.period": str(period_seconds),
        f"{prefix}.unit": "seconds",
    }


def codegen(directory: Path) -> dict:
    """Classes compiled by Spark's code generator and their compile time (ms), from the last row
    of the CSV sink's ``CodeGenerator`` histograms; empty when the sink wrote nothing."""
    out: dict = {}
    for name, key in (("compilationTime", "compile_ms"), ("sourceCodeSize", "source_bytes")):
        files = sorted(directory.glob(f"*CodeGenerator.{name}.csv")) if directory.is_dir() else []
        if not files:
            continue
        rows = files[-1].read_text(encoding="utf-8").splitlines()
        if len(rows) < 2:
            continue
        header, last = rows[0].split(","), rows[-1].split(",")
        values = dict(zip(header, last, strict=False))
        out["classes"] = int(float(values["count"]))
        out[f"{key}_mean"] = float(values["mean"])
        out[f"{key}_max"] = float(values["max"])
    if "compile_ms_mean" in out:
        out["compile_s_estimate"] = out["classes"] * out["compile_ms_mean"] / 1000
    return out


def _events(directory: Path) -> Iterator[dict]:
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if (
                    '"Event":"SparkListenerTaskEnd"' in line
                    or PROGRESS in line
                    or SQL_START in line
                    or SQL_END in line
                ):
                    yield json.loads(line)


def _root(plan: str) -> str:
    """``"* Project (2)"`` -> ``"Project"``: the root operator of a physical plan's text."""
    lines = plan.splitlines()
    text = lines[1] if len(lines) > 1 else ""
    return text.lstrip("*+- ").split(" (")[0].strip() or "?"


def batch_breakdown(executions: list[dict]) -> dict:
    """Split the time of the streaming batches (SQL executions started by the query, whose
    description holds its ``runId``) into the SQL executions ``foreachBatch`` ran inside them,
    by root operator, and the rest: driver time between them (analysis, optimisation, code
    generation of the next plan, Python)."""
    batches = [
        e
        for e in executions
        if "runId = " in e["description"]
        and e["end"] is not None
        and not any(
            o is not e
            and "runId = " in o["description"]
            and o["end"] is not None
            and o["start"] <= e["start"]
            and e["end"] <= o["end"]
            for o in executions
        )
    ]
    out: dict[str, dict] = {}
    total = inside = 0.0
    for b in batches:
        total += b["end"] - b["start"]
        for e in executions:
            if e is b or e["end"] is None or not b["start"] <= e["start"] <= b["end"]:
                continue
            entry = out.setdefault(
                e["root"], {"what": ROOTS.get(e["root"], ""), "count": 0, "seconds": 0.0}
            )
            entry["count"] += 1
            entry["seconds"] += e["end"] - e["start"]
            inside += e["end"] - e["start"]
    return {
        "batches": len(batches),
        "batch_seconds": total,
        "driver_between_executions_s": total - inside,
        "executions": dict(sorted(out.items(), key=lambda kv: -kv[1]["seconds"])),
    }


def profile(directory: Path) -> dict:
    """Task time and, for streaming queries, the split of batch time by phase.

    ``batch_ms`` sums each ``durationMs`` phase over all batches, per query (the job has one);
    ``batches_with_rows`` keeps each batch that read rows with its own ``durationMs``.
    ``task_*_s`` sum over all tasks. ``sql_in_batches`` splits the batches' wall time into the
    SQL executions ``foreachBatch`` ran and the driver's time between them.
    """
    tasks = run_ms = cpu_ns = gc_ms = 0
    per_batch: list[dict] = []
    executions: dict[int, dict] = {}
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
        if event["Event"] == SQL_START:
            executions[event["executionId"]] = {
                "start": event["time"] / 1000,
                "end": None,
                "description": event.get("description") or "",
                "root": _root(event.get("physicalPlanDescription") or ""),
            }
            continue
        if event["Event"] == SQL_END:
            if event["executionId"] in executions:
                executions[event["executionId"]]["end"] = event["time"] / 1000
            continue
        progress = event["progress"]
        area = (progress.get("name") or "").partition(":")[2] or "query"
        split = batches.setdefault(area, dict.fromkeys(PHASES, 0))
        for phase in PHASES:
            split[phase] += int(progress.get("durationMs", {}).get(phase, 0))
        read = sum(int(src.get("numInputRows", 0)) for src in progress.get("sources", []))
        rows[area] = rows.get(area, 0) + read
        counts[area] = counts.get(area, 0) + 1
        if read:
            per_batch.append(
                {
                    "batch": progress.get("batchId"),
                    "rows": read,
                    "duration_ms": progress.get("durationMs", {}),
                }
            )
    return {
        "tasks": tasks,
        "task_run_s": run_ms / 1000,
        "task_cpu_s": cpu_ns / 1e9,
        "task_gc_s": gc_ms / 1000,
        "batches": counts,
        "rows_read": rows,
        "batch_ms": batches,
        "batches_with_rows": per_batch,
        "sql_in_batches": batch_breakdown(list(executions.values())),
    }
