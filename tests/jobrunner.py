"""Run the real job as a subprocess from tests (spark-submit, local master, Maven jars)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from emr_jobs.core.paths import REPO_ROOT


def job_env(kafka_settings, **extra: str) -> dict[str, str]:
    """Environment for a job subprocess pointed at ``kafka_settings``.

    The alert and road-condition queries are off unless a test turns them on
    (``ALERTS_ENABLED="true"``): the lake's own tests stay about the lake, and each job run
    costs half as much. tests/test_alerts.py runs the whole job.
    """
    from emr_jobs.settings import AlertSettings
    from scripts.run_job import job_environment

    return {**job_environment(kafka_settings, AlertSettings(enabled=False)), **extra}


def run_job(kafka_settings, lake: Path, *args: str, timeout: float = 420, **env: str):
    """Run the real job (spark-submit, local master) to completion; returns CompletedProcess."""
    from scripts.run_job import spark_submit_command

    result = subprocess.run(
        spark_submit_command(["--lake-uri", lake.as_uri(), *args]),
        env=job_env(kafka_settings, **env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"job failed ({result.returncode}):\n{result.stderr[-4000:]}"
    return result
