"""The EMR bootstrap action that gives the job's Python 3.11 its packages (pandas, numpy, pyarrow).

Terraform and the code are held to each other: the cluster installs the wheel set that
``python -m scripts.artifacts upload`` stages (same requirements file, same prefix), with the
Python the step runs, from a script Terraform uploads, and the instances may read both with the
grants they already had. The script itself runs here against a fake S3, ``sudo`` and ``dnf``:
it installs exactly the pins, offline, with pip run from its own wheel.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from fnmatch import fnmatch
from pathlib import Path

import pytest

from scripts import artifacts
from scripts.emr_steps import EMR_PYTHON

SCRIPT = Path(__file__).resolve().parents[2] / "infra" / "scripts" / "emr_python_packages.sh"


def _sha12(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


@pytest.fixture(scope="module")
def cluster(modules):
    return modules["emr"].one("aws_emr_cluster", "this")


@pytest.fixture(scope="module")
def bootstrap(cluster):
    (action,) = cluster.blocks("bootstrap_action")
    return action


# --- Terraform and the code ----------------------------------------------------------------------


def _source(tf, module: str, kind: str) -> dict:
    """The ``resource``/``locals``/``variable`` blocks of a module's main.tf or variables.tf."""
    doc = tf.load(tf.MODULES_DIR / module / ("variables.tf" if kind == "variable" else "main.tf"))
    return {k: v for entry in doc.get(kind, []) for k, v in entry.items()}


def test_the_cluster_runs_one_bootstrap_action_the_script_terraform_uploads(
    modules, bootstrap, fake, tf
):
    script = modules["emr"].one("aws_s3_object", "this")
    (source,) = _source(tf, "emr", "resource")["aws_emr_cluster"]["this"]["bootstrap_action"]
    assert source["path"] == "s3://${aws_s3_object.this.bucket}/${aws_s3_object.this.key}", (
        "the path names the uploaded object, so the cluster waits for it"
    )
    assert bootstrap["path"] == f"s3://{script['bucket']}/{script['key']}"
    assert script["bucket"] == fake.bucket_names["artifacts"]
    # tfparse gives the path relative to the configuration's root.
    assert (tf.INFRA / script["source"]).resolve() == tf.INFRA / SCRIPT.relative_to(
        SCRIPT.parents[1]
    )
    # Named after its content: every node of a cluster, added later or not, runs the same script.
    assert script["key"] == f"emr/bootstrap/{_sha12(SCRIPT)}/{SCRIPT.name}"
    assert script["kms_key_id"] == modules["emr"].var("kms_key_arn")


def test_the_bootstrap_installs_the_wheel_set_artifacts_uploads_into_the_python_the_step_runs(
    modules, bootstrap, fake
):
    region, wheels, python = bootstrap["args"]
    assert region == fake.region, "the regional S3 endpoint: the subnets reach no other"
    prefix = artifacts.python_packages_prefix()
    assert wheels == f"s3://{fake.bucket_names['artifacts']}/{prefix}"
    assert wheels == modules["emr"].output("python_packages_s3_uri")
    assert prefix == f"python/cp311-x86_64-{_sha12(artifacts.PYTHON_REQUIREMENTS)}/"
    assert python == EMR_PYTHON == f"/usr/bin/python{artifacts.EMR_PYTHON_VERSION}"


def test_the_wheel_set_is_named_after_the_requirements_file_terraform_reads(modules, tf):
    emr = modules["emr"]
    source = _source(tf, "emr", "locals")["python_requirements_hash"]
    assert "emr_python_requirements.txt" in source
    assert (
        emr.local("python_requirements_hash")
        == hashlib.sha256(artifacts.PYTHON_REQUIREMENTS.read_bytes()).hexdigest()
    )


def test_plan_warns_while_the_wheel_set_is_not_uploaded(tf):
    (check,) = tf.load(tf.MODULES_DIR / "emr" / "main.tf")["check"]
    body = check["python_packages_uploaded"]
    (data,) = body["data"]
    manifest = data["aws_s3_object"]["python_packages_manifest"]
    assert manifest["bucket"] == "${var.artifacts_bucket_name}"
    assert manifest["key"] == "${local.python_packages_prefix}manifest.json"
    assert artifacts.MANIFEST == "manifest.json", "written last: its presence means complete"
    (assertion,) = body["assert"]
    assert "python -m scripts.artifacts upload" in assertion["error_message"]


def test_the_instances_read_the_script_and_the_wheels_with_the_grants_they_had(modules, fake):
    """No new IAM: the artifacts bucket was already readable (jars, job) and its key usable."""
    statements = modules["iam"].policy_statements("emr_ec2")
    bucket = fake.bucket_arns["artifacts"]
    keys = [
        modules["emr"].one("aws_s3_object", "this")["key"],
        artifacts.python_packages_prefix() + "pandas-2.2.3-cp311-cp311-manylinux2014_x86_64.whl",
    ]

    def granted(action: str, arn: str) -> bool:
        return any(
            action in st["actions"]
            and not st["conditions"]
            and any(fnmatch(str(arn), str(r)) for r in st["resources"])
            for st in statements
        )

    for key in keys:
        assert granted("s3:GetObject", f"{bucket}/{key}"), key
    assert granted("s3:ListBucket", bucket), "aws s3 cp --recursive lists the prefix"
    assert granted("kms:Decrypt", modules["emr"].var("kms_key_arn")), "SSE-KMS objects"
    readable = {
        str(r)
        for st in statements
        if "s3:GetObject" in st["actions"]
        for r in st["resources"]
        if str(r).startswith(bucket)
    }
    assert readable == {f"{bucket}/*"}
    assert not any(
        a in st["actions"]
        for st in statements
        for a in ("s3:PutObject", "s3:DeleteObject")
        if any(str(r).startswith(bucket) for r in st["resources"])
    ), "the instances never write the artifacts bucket"


GRAVITON = (
    "m6g.xlarge",
    "m7gd.2xlarge",
    "c6gn.large",
    "r8g.xlarge",
    "is4gen.xlarge",
    "a1.large",
    "t4g.medium",
    "g5g.xlarge",
)
X86 = (
    "m5.xlarge",
    "m6i.2xlarge",
    "r5d.4xlarge",
    "c5n.xlarge",
    "g4dn.xlarge",
    "m7i-flex.large",
    "m7a.xlarge",
    "x2iedn.xlarge",
)


def test_the_instances_are_x86_64_like_the_wheels(modules, tf):
    emr, variables = modules["emr"], _source(tf, "emr", "variable")
    assert artifacts.EMR_ARCH == "x86_64"
    (pattern,) = {  # one rule for both; an HCL string's "\\\\" is one backslash
        re.search(rf'regex\("(.+?)", var\.{name}\)', v["condition"]).group(1).replace("\\\\", "\\")
        for name in ("master_instance_type", "core_instance_type")
        for v in variables[name]["validation"]
    }

    def accepted(instance_type: str) -> bool:  # what the validation lets through
        return not re.search(pattern, instance_type)

    assert [t for t in GRAVITON if accepted(t)] == []
    assert [t for t in X86 if not accepted(t)] == []
    for name in ("master_instance_type", "core_instance_type"):
        assert accepted(emr.var(name)), name


# --- the script ----------------------------------------------------------------------------------


def _wheel(folder: Path, filename: str, files: dict[str, str]) -> Path:
    """A minimal wheel pip installs: the files, METADATA, WHEEL and RECORD."""
    dist, version = filename.split("-")[:2]
    info = f"{dist}-{version}.dist-info"
    files = {
        **files,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in files) + f"{info}/RECORD,,\n"
    path = folder / filename
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


def _pip_wheel(folder: Path, version: str) -> Path:
    """The pip this test runs on, packed as a wheel: the bootstrap runs pip from its wheel."""
    source = Path(sysconfig.get_paths()["purelib"]) / "pip"
    path = folder / f"pip-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(source.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts:
                zf.write(file, file.relative_to(source.parent).as_posix())
    return path


NATIVE = {"pandas", "numpy", "pyarrow"}


@pytest.fixture(scope="module")
def wheel_set(tmp_path_factory) -> artifacts.Bundle:
    """The pinned set as scripts.artifacts stages it, with small stand-ins for the wheels."""
    folder = tmp_path_factory.mktemp("wheels")
    for name, version in artifacts.read_pins().items():
        if name == artifacts.INSTALLER:
            _pip_wheel(folder, version)
            continue
        module = artifacts.canonical_name(name).replace("-", "_")
        tags = (
            "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"
            if name in NATIVE
            else "py3-none-any"
        )
        _wheel(
            folder,
            f"{module}-{version}-{tags}.whl",
            {f"{module}/__init__.py": f"__version__ = {version!r}\n"},
        )
    return artifacts.build_python_packages(artifacts.find_wheels(folder))


@pytest.fixture
def node(tmp_path, wheel_set):
    """A fake node: `aws` copies from a folder, `sudo` runs the command, `dnf` installs Python,
    and Python 3.11 is this interpreter with pip's target as its only site (no .venv packages).
    """
    bin_dir, s3, site, log = tmp_path / "bin", tmp_path / "s3", tmp_path / "site", tmp_path / "log"
    for folder in (bin_dir, s3, site):
        folder.mkdir()
    python = tmp_path / "usr" / "bin" / "python3.11"
    python.parent.mkdir(parents=True)
    wrapper = f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n'
    scripts = {
        "aws": '#!/bin/sh\necho "aws $*" >> "$FAKE_LOG"\nfor last; do :; done\n'
        'for a; do case "$a" in s3://*) src="${a#s3://}";; esac; done\n'
        '[ -d "$FAKE_S3/$src" ] && cp -R "$FAKE_S3/$src/." "$last"\nexit 0\n',
        "sudo": '#!/bin/sh\necho "sudo $*" >> "$FAKE_LOG"\nexec "$@"\n',
        "dnf": '#!/bin/sh\necho "dnf $*" >> "$FAKE_LOG"\n'
        f"printf '%s' '{wrapper}' > \"$FAKE_PYTHON\"\nchmod +x \"$FAKE_PYTHON\"\n",
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text, encoding="utf-8")
        (bin_dir / name).chmod(0o755)

    def stage(bundle: artifacts.Bundle, bucket: str = "artifacts") -> str:
        base = s3 / bucket / artifacts.python_packages_prefix()
        base.mkdir(parents=True)
        for key in bundle.files:
            (base / key).write_bytes(bundle.data(key))
        (base / artifacts.MANIFEST).write_text(json.dumps(bundle.manifest), encoding="utf-8")
        return f"s3://{bucket}/{artifacts.python_packages_prefix()}"

    def run(uri: str, *, python_present: bool = True) -> subprocess.CompletedProcess:
        if python_present:
            python.write_text(wrapper, encoding="utf-8")
            python.chmod(0o755)
        env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_LOG": str(log),
            "FAKE_S3": str(s3),
            "FAKE_PYTHON": str(python),
            # pip installs into `site` (not the system's site-packages) and Python sees it.
            "PIP_TARGET": str(site),
            "PYTHONPATH": str(site),
        }
        return subprocess.run(
            ["bash", str(SCRIPT), "eu-west-2", uri, str(python)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )

    from types import SimpleNamespace

    return SimpleNamespace(
        stage=stage,
        run=run,
        site=site,
        python=python,
        log=lambda: log.read_text(encoding="utf-8").splitlines(),
    )


def _installed(site: Path) -> dict[str, str]:
    found = {}
    for info in site.glob("*.dist-info"):
        name, version = info.name.removesuffix(".dist-info").split("-")
        found[artifacts.canonical_name(name)] = version
    return found


def test_the_script_installs_exactly_the_pins_offline_with_pip_from_its_wheel(node, wheel_set):
    result = node.run(node.stage(wheel_set))
    assert result.returncode == 0, result.stderr
    pins = {artifacts.canonical_name(n): v for n, v in artifacts.read_pins().items()}
    installer = pins.pop(artifacts.INSTALLER)
    assert _installed(node.site) == pins, "every pin but the installer, at its version"
    assert "emr_python_packages: numpy 1.26.4 pandas 2.2.3 pyarrow 19.0.1" in result.stdout

    copy, install = node.log()
    assert copy.startswith(
        "aws s3 cp --recursive --only-show-errors --region eu-west-2 "
        f"s3://artifacts/{artifacts.python_packages_prefix()} "
    )
    assert install.startswith(f"sudo {node.python} ")
    assert f"/pip-{installer}-py3-none-any.whl/pip install --no-index --find-links " in install
    assert "--only-binary=:all:" in install and install.endswith("/requirements.txt")


def test_a_missing_wheel_set_fails_the_bootstrap_with_what_to_run(node):
    result = node.run(f"s3://artifacts/{artifacts.python_packages_prefix()}")
    assert result.returncode == 1
    assert "run 'python -m scripts.artifacts upload' before creating the cluster" in result.stderr
    assert not any(line.startswith("sudo") for line in node.log()), "nothing was installed"


def test_a_node_without_python_3_11_gets_it_from_the_amazon_linux_repository(node, wheel_set):
    result = node.run(node.stage(wheel_set), python_present=False)
    assert result.returncode == 0, result.stderr
    assert node.log()[:2] == ["sudo dnf install -y python3.11", "dnf install -y python3.11"]
    assert "numpy" in _installed(node.site)


def test_the_script_checks_the_packages_the_job_imports():
    """The import check covers the lock's native packages; the job imports pandas itself."""
    text = SCRIPT.read_text(encoding="utf-8")
    (imports,) = re.findall(r"-c 'import ([a-z, ]+)\n", text)
    assert set(imports.split(", ")) == NATIVE
    assert {artifacts.canonical_name(n) for n in artifacts.read_pins()} >= NATIVE
