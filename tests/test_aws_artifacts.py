"""Job artifacts for EMR: the zip, the versioned S3 layout and its manifest (moto S3)."""

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

from emr_jobs.settings import REPO_ROOT
from scripts import artifacts
from scripts.artifacts import ArtifactsError, build, find_jars, job_zip, read_manifest, upload
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
    assert "emr_jobs/job.py" in names and "emr_jobs/contracts/_lake.json" in names
    assert {n.split("/")[0] for n in names} == {"emr_jobs"}  # no producer, no scripts


def test_the_zip_is_reproducible():
    assert job_zip() == job_zip()


def test_the_job_imports_from_the_zip_alone(tmp_path):
    """What ``--py-files`` gives the driver and executors: the package and its contract JSON
    come out of the zip (not the checkout), and the entry script's imports resolve."""
    bundle = tmp_path / "emr_jobs.zip"
    bundle.write_bytes(job_zip())
    code = (
        "import emr_jobs, emr_jobs.job, emr_jobs.contracts as c;"
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
    assert streams == "['emergency', 'gps', 'traffic_camera', 'vehicle', 'weather']"
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
    s3, fake_jars, tmp_path, monkeypatch, capsys
):
    fake_terraform(tmp_path, monkeypatch, {"artifacts_bucket_name": BUCKET})
    jars_dir = fake_jars[0].parent
    assert artifacts.main(["upload", "--jars-dir", str(jars_dir)]) == 0
    manifest = read_manifest(s3, BUCKET)
    assert manifest["jars"] == [f"jars/{j.name}" for j in fake_jars]
    assert f"s3://{BUCKET}/artifacts/{manifest['version']}/" in capsys.readouterr().out
    assert artifacts.main(["upload", "--jars-dir", str(jars_dir)]) == 0
    assert "already at" in capsys.readouterr().out


def test_the_upload_command_explains_a_missing_output(s3, fake_jars, tmp_path, monkeypatch, capsys):
    fake_terraform(tmp_path, monkeypatch, {})
    assert artifacts.main(["upload", "--jars-dir", str(fake_jars[0].parent)]) == 2
    err = capsys.readouterr().err
    assert "artifacts_bucket_name" in err and "--bucket" in err


def test_without_terraform_the_output_error_names_the_flag(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(OutputsError, match="`terraform` is not on PATH; or pass --bucket"):
        terraform_output("artifacts_bucket_name", flag="--bucket")


def test_build_writes_the_zip_entry_and_manifest_locally(fake_jars, tmp_path):
    assert (
        artifacts.main(
            ["build", "--jars-dir", str(fake_jars[0].parent), "--out", str(tmp_path / "out")]
        )
        == 0
    )
    (target,) = (tmp_path / "out").iterdir()
    assert sorted(p.name for p in target.iterdir()) == ["emr_jobs.zip", "job.py", "manifest.json"]
    assert json.loads((target / "manifest.json").read_text())["version"] == target.name
