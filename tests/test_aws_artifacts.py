"""Job artifacts for EMR: the zip, the versioned S3 layout and its manifest (moto S3), and the
wheel set of the job's Python packages that the EMR bootstrap action installs on every node."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from emr_jobs.core.contracts import CONTRACTS
from emr_jobs.core.paths import REPO_ROOT
from scripts import artifacts
from scripts.artifacts import (
    ArtifactsError,
    build,
    build_python_packages,
    find_jars,
    find_wheels,
    job_zip,
    read_manifest,
    read_pins,
    upload,
    upload_python_packages,
)
from scripts.terraform_outputs import OutputsError, terraform_output

BUCKET = "smartcity-dev-artifacts-123456789012"
REGION = "eu-west-2"
FAKE_JARS = (
    "spark-sql-kafka-0-10_2.12-3.5.7.jar",
    "spark-token-provider-kafka-0-10_2.12-3.5.7.jar",
    "kafka-clients-3.4.1.jar",
    "commons-pool2-2.11.1.jar",
    "aws-msk-iam-auth-2.3.2.jar",
)


@pytest.fixture
def fake_jars(tmp_path) -> list[Path]:
    folder = tmp_path / "jars"
    folder.mkdir()
    for name in FAKE_JARS:
        (folder / name).write_bytes(b"PK\x03\x04 fake " + name.encode())
    return find_jars(folder)


#: The wheel files of the pinned set for CPython 3.11 on manylinux x86_64, as PyPI names them.
NATIVE_TAGS = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"


def wheel_file(name: str, version: str) -> str:
    module = artifacts.canonical_name(name).replace("-", "_")
    if name in ("pandas", "numpy", "pyarrow"):
        return f"{module}-{version}-{NATIVE_TAGS}.whl"
    return f"{module}-{version}-py3-none-any.whl"


def make_wheels(folder: Path, pins: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, version in pins.items():
        (folder / wheel_file(name, version)).write_bytes(b"PK\x03\x04 fake " + name.encode())
    return folder


@pytest.fixture
def fake_wheels(tmp_path) -> list[Path]:
    """Stand-ins for the wheel set of infra/scripts/emr_python_requirements.txt."""
    return find_wheels(make_wheels(tmp_path / "wheels", read_pins()))


@pytest.fixture
def s3(fake_aws_credentials):
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield client


def fake_terraform(tmp_path: Path, monkeypatch, outputs: dict[str, str]) -> None:
    """A ``terraform`` on PATH that answers ``output -raw <name>`` from ``outputs``."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir(exist_ok=True)
    cases = "".join(f"  {k}) printf '%s' '{v}';;\n" for k, v in outputs.items())
    script = bin_dir / "terraform"
    script.write_text(
        '#!/bin/sh\nfor last; do :; done\ncase "$last" in\n'
        + cases
        + '  *) echo "Error: Output \\"$last\\" not found" >&2; exit 1;;\nesac\n',
        encoding="utf-8",
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


# --- the package ---


def test_the_zip_holds_the_job_and_its_contracts_and_nothing_else():
    names = zipfile.ZipFile(io.BytesIO(job_zip())).namelist()
    expected = sorted(
        p.relative_to(REPO_ROOT).as_posix()
        for p in (REPO_ROOT / "emr_jobs").rglob("*")
        if p.suffix in (".py", ".json") and "__pycache__" not in p.parts
    )
    assert names == expected
    assert "emr_jobs/job.py" in names and "emr_jobs/core/contracts/_lake.json" in names
    assert {n.split("/")[0] for n in names} == {"emr_jobs"}  # no producer, no scripts


def test_the_zip_is_reproducible():
    assert job_zip() == job_zip()


def test_the_job_imports_from_the_zip_alone(tmp_path):
    """What ``--py-files`` gives the driver and executors: the package and its contract JSON
    come out of the zip (not the checkout), and the entry script's imports resolve."""
    bundle = tmp_path / "emr_jobs.zip"
    bundle.write_bytes(job_zip())
    code = (
        "import emr_jobs, emr_jobs.job, emr_jobs.core.contracts as c;"
        "print(emr_jobs.__file__); print(sorted(c.CONTRACTS)); print(c.LAKE.consumer_group_prefix)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(bundle)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    where, streams, prefix = result.stdout.splitlines()
    assert where.startswith(str(bundle) + os.sep)
    assert streams == str(sorted(CONTRACTS))
    assert "'alerts'" in streams and "'road_conditions'" in streams
    assert prefix == "smartcity-job"


def test_the_version_is_the_project_version_plus_a_hash_of_the_content(fake_jars, tmp_path):
    first, again = build(jars=fake_jars), build(jars=fake_jars)
    assert first.version == again.version
    assert first.version.startswith(artifacts.project_version() + "-")
    assert len(first.version.rsplit("-", 1)[1]) == 12

    package = tmp_path / "emr_jobs"
    shutil.copytree(REPO_ROOT / "emr_jobs", package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "settings.py").write_text(
        (package / "settings.py").read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8"
    )
    changed = build(package=package, entry=package / "job.py", jars=fake_jars)
    assert changed.version != first.version
    fewer_jars = build(jars=fake_jars[1:])
    assert fewer_jars.version != first.version


def test_the_manifest_describes_every_file(fake_jars):
    bundle = build(jars=fake_jars)
    manifest = bundle.manifest
    assert manifest["entry_point"] == "job.py"
    assert manifest["py_files"] == ["emr_jobs.zip"]
    assert manifest["jars"] == [f"jars/{j.name}" for j in fake_jars]
    assert sorted(manifest["files"]) == sorted(["job.py", "emr_jobs.zip", *manifest["jars"]])
    for key, described in manifest["files"].items():
        data = bundle.data(key)
        assert described == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert bundle.data("job.py") == (REPO_ROOT / "emr_jobs" / "job.py").read_bytes()


def test_missing_jars_are_reported_with_the_command_that_resolves_them(tmp_path):
    (tmp_path / "kafka-clients-3.4.1.jar").write_bytes(b"x")
    with pytest.raises(ArtifactsError, match=r"aws-msk-iam-auth-\*\.jar.*make setup"):
        find_jars(tmp_path)


def test_the_maven_resolved_jar_set_is_the_kafka_source_and_msk_iam_without_spark_itself():
    jars_dir = REPO_ROOT / ".cache" / "jars" / "spark"
    if not any(jars_dir.glob("*.jar")):
        pytest.fail("jars not resolved in .cache/jars/spark; run `make setup`")
    names = [j.name for j in find_jars(jars_dir)]
    assert "spark-sql-kafka-0-10_2.12-3.5.7.jar" in names
    assert "aws-msk-iam-auth-2.3.2.jar" in names
    # Spark and the EMR image already ship these; a second copy breaks the classpath.
    for provided in ("spark-core", "spark-sql_", "hadoop-", "scala-library", "jackson-databind"):
        assert not any(n.startswith(provided) for n in names), provided


def test_no_iceberg_or_sqlite_jar_is_staged_for_emr(tmp_path):
    """EMR runs its own Iceberg (iceberg-defaults) with the Glue catalog: the local Iceberg
    runtime and the JDBC catalog's SQLite driver never reach the cluster, even from the wrong
    folder."""
    folder = tmp_path / "jars"
    folder.mkdir()
    local_only = ("iceberg-spark-runtime-3.5_2.12-1.10.0.jar", "sqlite-jdbc-3.47.2.0.jar")
    for name in (*FAKE_JARS, *local_only):
        (folder / name).write_bytes(b"PK\x03\x04 fake " + name.encode())
    staged = build(jars=find_jars(folder)).manifest["jars"]
    assert sorted(staged) == sorted(f"jars/{n}" for n in FAKE_JARS)
    assert not any("iceberg" in j or "sqlite" in j for j in staged)


def test_the_resolved_emr_jar_set_holds_no_iceberg_or_sqlite_jar():
    """What ``make setup`` resolved for EMR (.cache/jars/spark), not the local-only Iceberg set."""
    jars_dir = REPO_ROOT / ".cache" / "jars" / "spark"
    if not any(jars_dir.glob("*.jar")):
        pytest.fail("jars not resolved in .cache/jars/spark; run `make setup`")
    staged = [j.name for j in find_jars(jars_dir)]
    assert staged and not any(n.startswith(artifacts.LOCAL_ONLY_JARS) for n in staged)
    assert jars_dir == artifacts.SPARK_JARS_DIR
    assert "iceberg" not in str(artifacts.SPARK_JARS_DIR)


# --- the upload ---


def test_upload_puts_every_file_under_the_versioned_prefix_then_the_manifest(s3, fake_jars):
    bundle = build(jars=fake_jars)
    result = upload(s3, bundle, BUCKET)
    base = f"artifacts/{bundle.version}/"
    assert result["uri"] == f"s3://{BUCKET}/{base}"
    assert result["skipped"] is False
    expected = {
        base + "job.py",
        base + "emr_jobs.zip",
        base + "manifest.json",
        *(base + f"jars/{j.name}" for j in fake_jars),
    }
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == expected | {"artifacts/latest.json"}
    assert result["uploaded"][-1] == base + "manifest.json"  # written last: marks completion

    def body(key: str) -> bytes:
        return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    assert body(base + "job.py") == (REPO_ROOT / "emr_jobs" / "job.py").read_bytes()
    assert body(base + "emr_jobs.zip") == job_zip()
    for jar in fake_jars:
        assert body(base + f"jars/{jar.name}") == jar.read_bytes()
    manifest = json.loads(body(base + "manifest.json"))
    assert manifest["version"] == bundle.version
    assert manifest["s3_prefix"] == f"s3://{BUCKET}/{base}"
    for key, described in manifest["files"].items():
        assert hashlib.sha256(body(base + key)).hexdigest() == described["sha256"]
    assert json.loads(body("artifacts/latest.json")) == manifest
    assert read_manifest(s3, BUCKET) == manifest
    assert read_manifest(s3, BUCKET, bundle.version) == manifest


def test_uploading_the_same_build_again_changes_nothing_unless_forced(s3, fake_jars):
    bundle = build(jars=fake_jars)
    upload(s3, bundle, BUCKET)
    again = upload(s3, bundle, BUCKET)
    assert again["skipped"] is True and again["uploaded"] == []
    forced = upload(s3, bundle, BUCKET, force=True)
    assert forced["skipped"] is False and len(forced["uploaded"]) == len(bundle.files) + 1


def test_a_missing_upload_is_reported_with_the_command_that_makes_it(s3):
    with pytest.raises(ArtifactsError, match="python -m scripts.artifacts upload"):
        read_manifest(s3, BUCKET)
    with pytest.raises(ArtifactsError, match=r"artifacts/0\.0\.0-nothing/manifest\.json"):
        read_manifest(s3, BUCKET, "0.0.0-nothing")


def test_the_upload_command_takes_the_bucket_from_the_terraform_outputs(
    s3, fake_jars, fake_wheels, tmp_path, monkeypatch, capsys
):
    fake_terraform(tmp_path, monkeypatch, {"artifacts_bucket_name": BUCKET})
    dirs = ["--jars-dir", str(fake_jars[0].parent), "--wheels-dir", str(fake_wheels[0].parent)]
    assert artifacts.main(["upload", *dirs]) == 0
    manifest = read_manifest(s3, BUCKET)
    assert manifest["jars"] == [f"jars/{j.name}" for j in fake_jars]
    out = capsys.readouterr().out
    assert f"s3://{BUCKET}/artifacts/{manifest['version']}/" in out
    # The wheel set the cluster's bootstrap action installs, at the prefix Terraform points it at.
    wheels_uri = f"s3://{BUCKET}/{artifacts.python_packages_prefix()}"
    assert wheels_uri in out
    assert s3.head_object(Bucket=BUCKET, Key=artifacts.python_packages_prefix() + "manifest.json")
    assert artifacts.main(["upload", *dirs]) == 0
    out = capsys.readouterr().out
    assert f"version {manifest['version']} is already at" in out
    assert f"python packages {artifacts.python_packages_id()} is already at {wheels_uri}" in out


def test_the_upload_command_explains_a_missing_output(
    s3, fake_jars, fake_wheels, tmp_path, monkeypatch, capsys
):
    fake_terraform(tmp_path, monkeypatch, {})
    assert (
        artifacts.main(
            [
                "upload",
                "--jars-dir",
                str(fake_jars[0].parent),
                "--wheels-dir",
                str(fake_wheels[0].parent),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "artifacts_bucket_name" in err and "--bucket" in err


def test_the_upload_command_refuses_a_wheels_folder_that_is_not_the_pinned_set(
    s3, fake_jars, tmp_path, monkeypatch, capsys
):
    fake_terraform(tmp_path, monkeypatch, {"artifacts_bucket_name": BUCKET})
    pins = {**read_pins(), "pandas": "2.3.3"}
    wheels = make_wheels(tmp_path / "other", pins)
    assert (
        artifacts.main(
            ["upload", "--jars-dir", str(fake_jars[0].parent), "--wheels-dir", str(wheels)]
        )
        == 2
    )
    assert "is not the pinned 2.2.3" in capsys.readouterr().err
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET), "nothing was uploaded"


def test_without_terraform_the_output_error_names_the_flag(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(OutputsError, match="`terraform` is not on PATH; or pass --bucket"):
        terraform_output("artifacts_bucket_name", flag="--bucket")


def test_build_writes_the_zip_entry_and_manifest_locally(fake_jars, fake_wheels, tmp_path):
    assert (
        artifacts.main(
            [
                "build",
                "--jars-dir",
                str(fake_jars[0].parent),
                "--out",
                str(tmp_path / "out"),
                "--wheels-dir",
                str(fake_wheels[0].parent),
            ]
        )
        == 0
    )
    (target,) = (tmp_path / "out").iterdir()
    assert sorted(p.name for p in target.iterdir()) == ["emr_jobs.zip", "job.py", "manifest.json"]
    assert json.loads((target / "manifest.json").read_text())["version"] == target.name


# --- the job's Python packages for EMR ---


def _pyproject_requirements() -> list:
    """Every requirement of pyproject.toml (runtime and extras) as packaging Requirements."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = project["dependencies"] + [
        d for group in project["optional-dependencies"].values() for d in group
    ]
    return [Requirement(line) for line in lines]


def test_the_pins_are_the_packages_the_job_runs_with_at_the_versions_it_is_tested_with():
    """pandas, numpy and pyarrow at the versions in .venv, where the job's tests run, within
    what pyproject.toml allows for pyspark 3.5 (pandas < 2.3, numpy < 2, pyarrow < 20)."""
    from importlib.metadata import version

    pins = {artifacts.canonical_name(n): v for n, v in read_pins().items()}
    for name in ("pandas", "numpy", "pyarrow"):
        assert pins[name] == version(name), (
            f"{name}: infra/scripts/emr_python_requirements.txt pins {pins[name]}, the tests run "
            f"{version(name)}; pin what is tested"
        )
    for requirement in _pyproject_requirements():
        name = artifacts.canonical_name(requirement.name)
        if name in pins:
            assert requirement.specifier.contains(pins[name]), (requirement, pins[name])
    # pyspark 3.5.6's own minimums for applyInPandasWithState (pandas >= 1.0.5, pyarrow >= 4).
    assert tuple(map(int, pins["pyarrow"].split(".")[:1])) >= (4,)
    assert tuple(map(int, pins["numpy"].split(".")[:1])) < (2,)


def test_every_dependency_of_the_pinned_packages_is_pinned_too():
    """pip resolves the set from the pins alone, for Python 3.11 on Linux x86_64: a dependency
    left out would make pip fetch whatever is newest, and the set would change under its name."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    pins = {artifacts.canonical_name(n) for n in read_pins()}
    node = {
        "python_version": "3.11",
        "python_full_version": "3.11.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
        "platform_python_implementation": "CPython",
        "implementation_name": "cpython",
        "extra": "",
    }
    missing = set()
    for name in pins - {artifacts.INSTALLER}:
        for line in requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(node):
                missing.add(artifacts.canonical_name(requirement.name))
    assert missing - pins == set()


def test_requirements_must_pin_one_exact_version_per_line(tmp_path):
    lock = tmp_path / "requirements.txt"
    for bad, message in (
        ("pandas>=2.2\npip==26.3\n", "name==version"),
        ("pandas==2.2.3\nPandas==2.2.3\npip==26.3\n", "pinned twice"),
        ("pandas==2.2.3\n", "pin pip"),
    ):
        lock.write_text(bad, encoding="utf-8")
        with pytest.raises(ArtifactsError, match=message):
            read_pins(lock)
    lock.write_text("# note\nPython_Dateutil==2.9.0.post0  # why\n\npip==26.3\n", encoding="utf-8")
    assert read_pins(lock) == {"Python_Dateutil": "2.9.0.post0", "pip": "26.3"}


def test_the_wheel_set_is_named_after_the_requirements_file(tmp_path):
    lock = artifacts.PYTHON_REQUIREMENTS
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:12]
    assert artifacts.python_packages_id() == f"cp311-x86_64-{digest}"
    assert artifacts.python_packages_prefix() == f"python/cp311-x86_64-{digest}/"
    changed = tmp_path / lock.name
    changed.write_bytes(lock.read_bytes() + b"# changed\n")
    assert artifacts.python_packages_id(changed) != artifacts.python_packages_id()


def test_pip_downloads_the_wheels_the_emr_nodes_install_whatever_machine_runs_it(tmp_path):
    """CPython 3.11 (scripts.emr_steps.EMR_PYTHON), manylinux x86_64, binary wheels only."""
    from scripts.emr_steps import EMR_PYTHON

    command = artifacts.pip_download_command(artifacts.PYTHON_REQUIREMENTS, tmp_path)
    assert command == [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        "3.11",
        "--abi",
        "cp311",
        "--platform",
        "manylinux2014_x86_64",
        "--platform",
        "manylinux_2_28_x86_64",
        "--dest",
        str(tmp_path),
        "--requirement",
        str(artifacts.PYTHON_REQUIREMENTS),
    ]
    assert EMR_PYTHON.endswith("python" + artifacts.EMR_PYTHON_VERSION)


@pytest.mark.parametrize(
    ("filename", "fits"),
    [
        (f"pandas-2.2.3-{NATIVE_TAGS}.whl", True),
        ("pyarrow-19.0.1-cp311-cp311-manylinux_2_28_x86_64.whl", True),
        ("numpy-1.26.4-cp311-cp311-manylinux1_x86_64.whl", True),
        ("six-1.17.0-py2.py3-none-any.whl", True),
        ("cryptography-44.0.0-cp39-abi3-manylinux_2_28_x86_64.whl", True),  # the stable ABI
        ("cryptography-44.0.0-cp312-abi3-manylinux_2_28_x86_64.whl", False),
        ("pandas-2.2.3-cp311-cp311d-manylinux_2_17_x86_64.whl", False),
        ("pandas-2.2.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", False),
        ("pandas-2.2.3-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", False),
        ("pandas-2.2.3-cp311-cp311-macosx_11_0_arm64.whl", False),
        ("pandas-2.2.3-cp311-cp311-musllinux_1_2_x86_64.whl", False),
        ("pyarrow-19.0.1-cp311-cp311-manylinux_2_34_x86_64.whl", False),  # newer than asked for
        ("pandas-2.2.3.tar.gz", False),
    ],
)
def test_only_wheels_for_cpython_3_11_on_manylinux_x86_64_fit_the_nodes(filename, fits):
    assert artifacts.wheel_fits_emr(filename) is fits


def test_a_wheels_folder_must_hold_exactly_the_pinned_set(tmp_path):
    pins = read_pins()
    folder = make_wheels(tmp_path / "wheels", pins)
    assert sorted(w.name for w in find_wheels(folder)) == sorted(
        wheel_file(n, v) for n, v in pins.items()
    )
    (folder / wheel_file("pytz", pins["pytz"])).unlink()
    (folder / "urllib3-2.0.0-py3-none-any.whl").write_bytes(b"x")
    (folder / "numpy-1.26.4-cp311-cp311-macosx_11_0_arm64.whl").write_bytes(b"x")
    with pytest.raises(ArtifactsError) as err:
        find_wheels(folder)
    message = str(err.value)
    assert f"no wheel of pytz=={pins['pytz']}" in message
    assert "urllib3-2.0.0-py3-none-any.whl is not pinned" in message
    assert "numpy-1.26.4-cp311-cp311-macosx_11_0_arm64.whl is not for CPython 3.11" in message
    assert "two wheels of numpy" in message


def test_the_wheels_are_downloaded_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(artifacts, "WHEELS_DIR", tmp_path / "cache")
    commands = []

    def fake_pip(command: list[str]) -> int:
        commands.append(command)
        make_wheels(Path(command[command.index("--dest") + 1]), read_pins())
        return 0

    wheels = artifacts.ensure_wheels(run=fake_pip)
    target = tmp_path / "cache" / artifacts.python_packages_id()
    assert {w.parent for w in wheels} == {target}
    assert len(commands) == 1 and "download" in commands[0]
    assert artifacts.ensure_wheels(run=fake_pip) == wheels
    assert len(commands) == 1, "a complete set is not downloaded again"
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [target.name]


def test_a_failed_download_leaves_no_wheel_set_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(artifacts, "WHEELS_DIR", tmp_path / "cache")
    with pytest.raises(ArtifactsError, match="pip download failed"):
        artifacts.ensure_wheels(run=lambda command: 1)
    assert not (tmp_path / "cache" / artifacts.python_packages_id()).exists()
    with pytest.raises(ArtifactsError, match="not the set of"):  # a folder given is only checked
        artifacts.ensure_wheels(tmp_path / "empty", run=lambda command: 0)


def test_the_wheel_set_uploads_under_its_name_with_what_to_install_and_the_manifest_last(
    s3, fake_wheels
):
    packages = build_python_packages(fake_wheels)
    result = upload_python_packages(s3, packages, BUCKET)
    base = artifacts.python_packages_prefix()
    assert result["uri"] == f"s3://{BUCKET}/{base}"
    assert result["uploaded"][-1] == base + "manifest.json"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {base + w.name for w in fake_wheels} | {
        base + "requirements.txt",
        base + "manifest.json",
    }

    def body(key: str) -> bytes:
        return s3.get_object(Bucket=BUCKET, Key=base + key)["Body"].read()

    # What the bootstrap installs: every pin but pip, which it runs from its wheel instead.
    pins = read_pins()
    installs = [
        line
        for line in body("requirements.txt").decode().splitlines()
        if line and not line.startswith("#")
    ]
    assert installs == [f"{n}=={v}" for n, v in pins.items() if n != "pip"]
    manifest = json.loads(body("manifest.json"))
    assert manifest["installer"] == f"pip-{pins['pip']}-py3-none-any.whl"
    assert manifest["python_packages"] == artifacts.python_packages_id()
    assert (
        manifest["requirements_sha256"]
        == hashlib.sha256(artifacts.PYTHON_REQUIREMENTS.read_bytes()).hexdigest()
    )
    for key, described in manifest["files"].items():
        assert hashlib.sha256(body(key)).hexdigest() == described["sha256"]
    again = upload_python_packages(s3, packages, BUCKET)
    assert again["skipped"] is True and again["uploaded"] == []


def test_other_wheels_never_replace_a_set_clusters_install_from(s3, fake_wheels, tmp_path):
    upload_python_packages(s3, build_python_packages(fake_wheels), BUCKET)
    other = tmp_path / "other"
    shutil.copytree(fake_wheels[0].parent, other)
    (other / wheel_file("pandas", "2.2.3")).write_bytes(b"PK\x03\x04 rebuilt pandas")
    rebuilt = build_python_packages(find_wheels(other))
    with pytest.raises(ArtifactsError, match="already holds other wheels"):
        upload_python_packages(s3, rebuilt, BUCKET)
    assert upload_python_packages(s3, rebuilt, BUCKET, force=True)["skipped"] is False


@pytest.mark.integration
def test_the_real_wheel_set_is_cpython_3_11_manylinux_x86_64_at_the_pinned_versions():
    """pip download for real (about 75 MB once; later runs find it in .cache/wheels)."""
    wheels = artifacts.ensure_wheels()
    pins = read_pins()
    names = {w.name for w in wheels}
    for name in ("pandas", "numpy", "pyarrow"):
        (found,) = [n for n in names if n.startswith(f"{name}-{pins[name]}-cp311-cp311-")]
        assert "manylinux" in found and found.endswith("x86_64.whl"), found
    assert f"pip-{pins['pip']}-py3-none-any.whl" in names
    assert all(artifacts.wheel_fits_emr(n) for n in names)
