"""`make bench` keeps working: its quick size runs end to end and writes the JSON, the Markdown
table and the PNG chart. Timings are never asserted: the machine is shared and noisy, and the
benchmark reports ratios against same-run baselines instead."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from emr_jobs.core.paths import REPO_ROOT

# The quick benchmark (every section, about 12 minutes alone on 2 cores) runs once, in the first
# test's fixture: it gets more than the suite's 900 s per test, since a loaded machine slows it.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1800)]

FIGURE_KEYS = {"median", "min", "max", "n", "unit", "runs"}
SIZES = {"10", "1000", "10000"}


def _is_figure(value: object) -> bool:
    return isinstance(value, dict) and value.keys() >= FIGURE_KEYS and value["n"] >= 1


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-results")
    result = subprocess.run(
        [sys.executable, "-m", "scripts.bench", "--quick", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=1700,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return out, result.stdout


def test_the_quick_benchmark_writes_every_figure_to_the_json_file(quick_run):
    out, _ = quick_run
    results = json.loads((out / "results.json").read_text())
    assert results["errors"] == {}
    assert results["meta"]["mode"] == "quick"

    producer = results["producer"]
    for key in (
        "simulator_only",
        "simulator_only_mb_s",
        "producer",
        "producer_mb_s",
        "producer_vs_ceiling",
    ):
        assert set(producer[key]) == SIZES, key
        assert all(_is_figure(f) for f in producer[key].values()), key
    for key in ("tutorial", "producer_vs_tutorial", "ceiling_vs_tutorial", "producer_scaling"):
        assert _is_figure(producer[key]), key

    job = results["job"]
    for key in (
        "streaming_rows_per_s",
        "batch_ceiling_rows_per_s",
        "batch_ceiling_cold_rows_per_s",
        "job_vs_ceiling",
        "fleet_events_per_s",
        "job_vs_fleet",
        "startup_seconds",
        "drain_seconds",
        "task_cpu_us_per_event",
        "cpu_per_row_vs_ceiling",
    ):
        assert _is_figure(job[key]), key
        assert job[key]["median"] > 0, key
    assert job["summary"]["vehicle"]["written"] > 0, "the job's own JOB_SUMMARY"
    assert job["fleet"]["vehicles"] == 10_000
    # The fleet's rate is counted from the simulator: 2 events per 5 s tick per vehicle, plus
    # weather, cameras and incidents.
    assert job["fleet"]["events_per_second"] >= job["fleet"]["by_stream"]["vehicle"] * 2
    assert set(job["driver_peak_rss_mb"]) == {"jvm", "python", "total"}
    assert job["batch_points"], "the job's batches feed the scaling chart"
    assert job["profile"]["tasks"] > 0 and job["profile"]["batch_ms"], "Spark's own metrics"
    assert job["profile"]["batches_with_rows"], "per-batch durationMs from progress events"
    assert job["profile"]["jvm_threads_cpu_s"], "the JVM's CPU by thread"
    # Every table append is a snapshot tagged with its batch: the vehicle table's commit is a
    # step of the batch's time.
    assert {c["table"] for c in job["first_run_commits"]} >= {"vehicle", "gps"}
    assert job["commit_steps"]["vehicle"]["seconds"] > 0
    assert job["ceiling_steps"]["vehicle"] > 0

    latency = results["latency"]
    assert latency["trigger_seconds"] == 10
    assert set(latency["phases"]) == {"1000", "5000"}
    for phase in latency["phases"].values():
        assert {"p50", "p95", "p99", "rows", "not_committed", "achieved_rate"} <= phase.keys()
        assert phase["rows"] > 0
        assert phase["p50"] is not None and phase["p50"] > 0, "rows were committed and timed"

    assert _is_figure(results["memory"]["producer_peak_rss_mb"])


def test_the_table_gives_each_target_with_its_status(quick_run):
    out, stdout = quick_run
    table = (out / "results.md").read_text()
    assert table in stdout, "the table is printed as well"
    assert "| figure | median | min | max | runs |" in table
    rows = json.loads((out / "results.json").read_text())["table"]
    targets = [r for r in rows if r["target"]]
    named = " ".join(r["figure"] for r in targets)
    for what in (
        "Producer / simulator-only ceiling",
        "Producer / tutorial pattern",
        "Job / batch ceiling",
        "Job drain / 10,000-vehicle fleet's real-time rate",
        "latency p99, 5,000 ev/s",
        "Producer peak RSS",
        "Producer throughput, 10,000 / 10 vehicles",
    ):
        assert what in named, what
    assert {r["status"] for r in targets} <= {"met", "missed", "not measured"}
    for row in targets:
        assert row["figure"] in table
    assert "Before (previous main" in table, "the job's figures against the previous main"
    assert "Where batch time goes, by table" in table


def test_the_chart_is_a_png(quick_run):
    out, _ = quick_run
    png = (out / "results.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 10_000
