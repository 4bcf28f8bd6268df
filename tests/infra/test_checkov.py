"""checkov over infra/ reports no failed check; every skip is inline and gives a reason.

checkov lives in its own virtualenv (.cache/venv-checkov, made by scripts/setup_checkov.sh)
because it pins many dependencies. A missing install fails this test: CI installs it.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest


@pytest.fixture(scope="module")
def checkov_run(tf) -> dict | str:
    """checkov's terraform report, or why there is none (each test then fails with it)."""
    checkov = tf.REPO / ".cache" / "venv-checkov" / "bin" / "checkov"
    if not checkov.exists():
        return f"checkov is not installed at {checkov}: run scripts/setup_checkov.sh"
    result = subprocess.run(
        [
            str(checkov),
            "--directory",
            str(tf.INFRA),
            "--framework",
            "terraform",
            "--compact",
            "--skip-download",  # no Prisma Cloud guidelines: the machine has no such network access
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tf.REPO,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        return (
            f"checkov printed no JSON (exit {result.returncode}):\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
        )
    reports = report if isinstance(report, list) else [report]
    terraform = [r for r in reports if r.get("check_type") == "terraform"]
    return (
        terraform[0] if terraform else f"checkov reported no terraform results: {reports!r:.2000}"
    )


def _report(checkov_run: dict | str) -> dict:
    if isinstance(checkov_run, str):
        pytest.fail(checkov_run, pytrace=False)
    return checkov_run


def test_checkov_scanned_the_configuration(checkov_run):
    checkov_report = _report(checkov_run)
    summary = checkov_report["summary"]
    assert summary["parsing_errors"] == 0, summary
    assert summary["resource_count"] > 50, f"checkov saw too few resources: {summary}"
    assert summary["passed"] > 100, summary


def test_checkov_reports_no_failed_check(checkov_run):
    checkov_report = _report(checkov_run)
    failed = checkov_report["results"].get("failed_checks", [])
    lines = [
        f"{c['check_id']} {c['resource']} "
        f"({c['repo_file_path']}:{c['file_line_range'][0]}): {c['check_name']}"
        for c in failed
    ]
    assert not failed, f"{len(failed)} checkov check(s) failed:\n" + "\n".join(lines)


def test_every_checkov_skip_is_inline_with_a_reason(checkov_run):
    checkov_report = _report(checkov_run)
    skipped = checkov_report["results"].get("skipped_checks", [])
    unexplained = [
        f"{c['check_id']} {c['resource']}"
        for c in skipped
        if len((c["check_result"].get("suppress_comment") or "").strip()) < 20
    ]
    assert not unexplained, "skips need `#checkov:skip=CKV_...:reason`:\n" + "\n".join(unexplained)
