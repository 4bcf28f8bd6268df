"""infra/README.md's "Run on AWS" walk-through, the operator commands and infra/ agree."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from emr_jobs.core.paths import REPO_ROOT

OPERATOR_SCRIPTS = ("artifacts", "emr_steps", "push_image", "terraform_outputs")


def run_on_aws_section() -> str:
    text = (REPO_ROOT / "infra" / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Run on AWS\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, "infra/README.md has no '## Run on AWS' section"
    return match.group(1)


def terraform_outputs() -> set[str]:
    text = (REPO_ROOT / "infra" / "outputs.tf").read_text(encoding="utf-8")
    return set(re.findall(r'^output "([a-z0-9_]+)"', text, re.M))


def test_every_output_the_commands_read_is_declared_in_infra():
    used = set()
    for name in OPERATOR_SCRIPTS:
        source = (REPO_ROOT / "scripts" / f"{name}.py").read_text(encoding="utf-8")
        used |= set(re.findall(r'(?:terraform_output|_output)\([^)]*?"([a-z0-9_]+)"', source))
    assert {
        "ecr_repository_url",
        "artifacts_bucket_name",
        "emr_cluster_id",
        "lake_uri",
        "msk_cluster_arn",
        "aws_region",
    } <= used
    assert used <= terraform_outputs()


def test_every_output_the_walkthrough_names_is_declared_in_infra():
    section = run_on_aws_section()
    named = set(re.findall(r"output -raw ([a-z0-9_]+)", section))
    named |= {n for n in re.findall(r"`([a-z0-9_]+)`", section) if n in terraform_outputs()}
    assert {
        "ecs_topics_admin_run_task_command",
        "lake_uri",
        "athena_workgroup_name",
        "glue_database_name",
    } <= named
    assert named <= terraform_outputs()


@pytest.mark.parametrize(
    ("module", "subcommand"),
    [
        ("scripts.push_image", None),
        ("scripts.artifacts", "upload"),
        ("scripts.artifacts", "build"),
        ("scripts.emr_steps", "submit"),
        ("scripts.emr_steps", "status"),
        ("scripts.emr_steps", "stop"),
        ("scripts.emr_steps", "logs"),
    ],
)
def test_every_command_of_the_walkthrough_exists(module, subcommand):
    section = run_on_aws_section()
    assert f"python -m {module}" + (f" {subcommand}" if subcommand else "") in section
    args = [sys.executable, "-m", module, *([subcommand] if subcommand else []), "--help"]
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=60, check=False, cwd=REPO_ROOT
    )
    assert result.returncode == 0, result.stderr


def test_the_flags_the_walkthrough_mentions_exist():
    section = run_on_aws_section()
    for module, flag in [
        ("scripts.emr_steps submit", "--available-now"),
        ("scripts.emr_steps submit", "--dry-run"),
        ("scripts.emr_steps stop", "--force"),
        ("scripts.push_image", "--platform"),
        ("scripts.push_image", "--tag"),
    ]:
        assert flag in section
        args = [sys.executable, "-m", *module.split(), "--help"]
        help_text = subprocess.run(
            args, capture_output=True, text=True, timeout=60, check=False, cwd=REPO_ROOT
        ).stdout
        assert flag in help_text, (module, flag)
