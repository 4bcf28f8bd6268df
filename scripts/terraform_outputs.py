"""Read the outputs of the Terraform stack in ``infra/`` (``terraform output``).

The operator commands (``scripts.artifacts``, ``scripts.emr_steps``, ``scripts.push_image``) take
every AWS name as a flag; a flag left out is read from these outputs, so after
``terraform apply`` they need no arguments. Output names are those of ``infra/outputs.tf``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from emr_jobs.core.paths import REPO_ROOT

INFRA_DIR = REPO_ROOT / "infra"


class OutputsError(RuntimeError):
    """A Terraform output could not be read; the message names it and the flag to pass instead."""


def terraform_output(
    name: str, *, flag: str = "", infra_dir: Path | str = INFRA_DIR, as_json: bool = False
) -> object:
    """``terraform -chdir=<infra_dir> output -raw <name>`` (``-json`` for maps and lists)."""
    instead = f"; or pass {flag}" if flag else ""
    terraform = shutil.which("terraform")
    if terraform is None:
        raise OutputsError(
            f"cannot read the Terraform output {name!r}: `terraform` is not on PATH{instead}"
        )
    mode = "-json" if as_json else "-raw"
    result = subprocess.run(
        [terraform, f"-chdir={infra_dir}", "output", "-no-color", mode, name],
        capture_output=True,
        text=True,
        check=False,
    )
    value = result.stdout.strip()
    if result.returncode != 0 or not value:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise OutputsError(
            f"cannot read the Terraform output {name!r} in {infra_dir} "
            f"(has `terraform apply` run there?){instead}" + (f": {detail[-1]}" if detail else "")
        )
    return json.loads(value) if as_json else value


def aws_region(flag_value: str | None = None, *, infra_dir: Path | str = INFRA_DIR) -> str:
    """``--region``, else ``AWS_REGION`` or ``AWS_DEFAULT_REGION``, else output ``aws_region``."""
    return (
        flag_value
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or str(terraform_output("aws_region", flag="--region", infra_dir=infra_dir))
    )
