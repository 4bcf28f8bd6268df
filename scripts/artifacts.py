"""Package the Spark job for EMR and upload it to the artifacts bucket under a versioned prefix.

    python -m scripts.artifacts build                   # .cache/artifacts/<version>/, no AWS
    python -m scripts.artifacts upload [--bucket NAME]  # default: output artifacts_bucket_name

What EMR gets (and nothing else: the cluster's private subnets have no internet):

``s3://<bucket>/artifacts/<version>/``
    ``job.py``         the entry script (``emr_jobs/job.py``), the ``spark-submit`` main file
    ``emr_jobs.zip``   the job package with its contracts (``*.json``), for ``--py-files``
    ``jars/*.jar``     the jars Maven resolved from ``local/maven/spark/pom.xml`` into
                       ``.cache/jars/spark``: the Kafka source with its runtime dependencies
                       and ``aws-msk-iam-auth``. Never Iceberg or the SQLite driver: those
                       (``local/maven/iceberg``, ``.cache/jars/iceberg``) serve local runs;
                       EMR uses its own Iceberg with the Glue catalog
    ``manifest.json``  what is there, with sizes and SHA-256s; written last, so its presence
                       means the upload is complete
``s3://<bucket>/artifacts/latest.json``
    the manifest of the most recent upload; ``scripts.emr_steps submit`` uses it by default

``<version>`` is the project version plus a hash of the content (``0.1.0-3f2a9c1b7d4e``): the same
code and jars always get the same prefix, so uploading twice is a no-op, and a new build never
overwrites the one a running step uses. The git commit is recorded in the manifest.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from emr_jobs.settings import REPO_ROOT

JOB_PACKAGE = REPO_ROOT / "emr_jobs"
ENTRY_SCRIPT = JOB_PACKAGE / "job.py"
SPARK_JARS_DIR = REPO_ROOT / ".cache" / "jars" / "spark"
BUILD_DIR = REPO_ROOT / ".cache" / "artifacts"
DEFAULT_PREFIX = "artifacts"
MANIFEST = "manifest.json"
LATEST = "latest.json"
ZIP_NAME = "emr_jobs.zip"
ENTRY_NAME = "job.py"
#: Jars the job cannot run without on MSK; the build refuses to ship a set that lacks one.
REQUIRED_JARS = ("spark-sql-kafka-0-10_", "spark-token-provider-kafka-0-10_", "kafka-clients-",
                 "aws-msk-iam-auth-")
#: Local-only jars (the Iceberg runtime and the JDBC catalog's SQLite driver) that EMR must not
#: get even if they land in the jars folder: a second Iceberg beside EMR's own breaks the catalog.
LOCAL_ONLY_JARS = ("iceberg-spark-runtime-", "sqlite-jdbc-", "iceberg-aws-bundle-")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same sources give the same zip bytes


class ArtifactsError(RuntimeError):
    """The job cannot be packaged or uploaded; the message says why and what to do."""


@dataclass(frozen=True)
class Bundle:
    """A built job: S3 key (relative to the version prefix) -> bytes or a local file."""

    version: str
    files: dict[str, bytes | Path] = field(repr=False)
    manifest: dict

    def data(self, key: str) -> bytes:
        value = self.files[key]
        return value if isinstance(value, bytes) else value.read_bytes()


def project_version(pyproject: Path = REPO_ROOT / "pyproject.toml") -> str:
    with open(pyproject, "rb") as fh:
        return tomllib.load(fh)["project"]["version"]


def job_zip(package: Path = JOB_PACKAGE) -> bytes:
    """The ``emr_jobs`` package (Python modules and contract JSON) as a reproducible zip."""
    sources = sorted(
        p for p in package.rglob("*")
        if p.is_file() and p.suffix in (".py", ".json") and "__pycache__" not in p.parts
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sources:
            info = zipfile.ZipInfo(path.relative_to(package.parent).as_posix(), _ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    return buffer.getvalue()


def find_jars(jars_dir: Path = SPARK_JARS_DIR) -> list[Path]:
    """The jars to stage for EMR: every jar of ``jars_dir`` except :data:`LOCAL_ONLY_JARS`."""
    jars = sorted(j for j in Path(jars_dir).glob("*.jar") if not j.name.startswith(LOCAL_ONLY_JARS))
    missing = [p for p in REQUIRED_JARS if not any(j.name.startswith(p) for j in jars)]
    if missing:
        raise ArtifactsError(
            f"jars missing in {jars_dir}: {', '.join(p + '*.jar' for p in missing)}; "
            "resolve them with Maven: `make setup` (bash scripts/setup.sh)"
        )
    return jars


def ensure_jars(jars_dir: Path = SPARK_JARS_DIR) -> list[Path]:
    """The resolved jars; runs the idempotent set-up once if the default set is missing."""
    try:
        return find_jars(jars_dir)
    except ArtifactsError:
        if Path(jars_dir) != SPARK_JARS_DIR:
            raise
    print("artifacts: resolving the Spark jars with Maven (bash scripts/setup.sh)", file=sys.stderr)
    if subprocess.call(["bash", str(REPO_ROOT / "scripts" / "setup.sh")], cwd=REPO_ROOT) != 0:
        raise ArtifactsError("bash scripts/setup.sh failed; see its output above")
    return find_jars(jars_dir)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _git_commit() -> dict[str, object]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        return {
            "git_commit": git("rev-parse", "--short=12", "HEAD"),
            "git_dirty": bool(git("status", "--porcelain", "--", "emr_jobs")),
        }
    except (OSError, subprocess.CalledProcessError):
        return {"git_commit": None, "git_dirty": None}


def build(
    *, package: Path = JOB_PACKAGE, entry: Path = ENTRY_SCRIPT, jars: Sequence[Path] | None = None
) -> Bundle:
    """Package the job; nothing touches AWS. The version hashes every shipped byte."""
    jar_paths = list(find_jars() if jars is None else jars)
    files: dict[str, bytes | Path] = {ENTRY_NAME: entry.read_bytes(), ZIP_NAME: job_zip(package)}
    files.update({f"jars/{j.name}": j for j in jar_paths})
    described = {}
    for key in sorted(files):
        data = files[key] if isinstance(files[key], bytes) else Path(files[key]).read_bytes()
        described[key] = {"bytes": len(data), "sha256": _sha256(data)}
    content_hash = _sha256(
        "".join(f"{k}\0{v['sha256']}\n" for k, v in described.items()).encode()
    )
    version = f"{project_version()}-{content_hash[:12]}"
    manifest = {
        "project": "smartcity-streaming",
        "version": version,
        "project_version": project_version(),
        "content_sha256": content_hash,
        **_git_commit(),
        "built_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "entry_point": ENTRY_NAME,
        "py_files": [ZIP_NAME],
        "jars": [f"jars/{j.name}" for j in jar_paths],
        "files": described,
    }
    return Bundle(version=version, files=files, manifest=manifest)


def write_local(bundle: Bundle, out_dir: Path = BUILD_DIR) -> Path:
    """``<out_dir>/<version>/`` with the zip, the entry script and the manifest (jars stay put)."""
    target = Path(out_dir) / bundle.version
    target.mkdir(parents=True, exist_ok=True)
    for key in (ENTRY_NAME, ZIP_NAME):
        (target / key).write_bytes(bundle.data(key))
    (target / MANIFEST).write_text(json.dumps(bundle.manifest, indent=2) + "\n", encoding="utf-8")
    return target


def version_prefix(version: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix.strip('/')}/{version}/"


def upload(
    s3, bundle: Bundle, bucket: str, *, prefix: str = DEFAULT_PREFIX, force: bool = False
) -> dict[str, object]:
    """Upload the bundle to ``s3://<bucket>/<prefix>/<version>/``; manifest last, then latest.json.

    Returns ``{"uri", "version", "uploaded": [keys], "skipped": bool}``. An upload whose
    manifest is already there with the same content hash is skipped (unless ``force``).
    """
    from botocore.exceptions import ClientError

    base = version_prefix(bundle.version, prefix)
    manifest = {**bundle.manifest, "s3_prefix": f"s3://{bucket}/{base}"}
    manifest_body = (json.dumps(manifest, indent=2) + "\n").encode()
    uploaded: list[str] = []
    skipped = False
    try:
        existing = json.loads(s3.get_object(Bucket=bucket, Key=base + MANIFEST)["Body"].read())
        skipped = not force and existing.get("content_sha256") == bundle.manifest["content_sha256"]
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
            raise ArtifactsError(f"cannot read s3://{bucket}/{base}{MANIFEST}: {err}") from None
    if not skipped:
        for key in sorted(bundle.files):
            s3.put_object(Bucket=bucket, Key=base + key, Body=bundle.data(key))
            uploaded.append(base + key)
        s3.put_object(Bucket=bucket, Key=base + MANIFEST, Body=manifest_body,
                      ContentType="application/json")
        uploaded.append(base + MANIFEST)
    s3.put_object(Bucket=bucket, Key=f"{prefix.strip('/')}/{LATEST}", Body=manifest_body,
                  ContentType="application/json")
    return {"uri": f"s3://{bucket}/{base}", "version": bundle.version, "uploaded": uploaded,
            "skipped": skipped}


def read_manifest(s3, bucket: str, version: str = "", *, prefix: str = DEFAULT_PREFIX) -> dict:
    """The manifest of ``version``, or of the latest upload when ``version`` is empty."""
    from botocore.exceptions import ClientError

    key = version_prefix(version, prefix) + MANIFEST if version else f"{prefix.strip('/')}/{LATEST}"
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as err:
        raise ArtifactsError(
            f"no job artifacts at s3://{bucket}/{key} ({err.response['Error'].get('Code')}); "
            "upload them with `python -m scripts.artifacts upload`"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.artifacts",
                                     description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="package the job into .cache/artifacts/<version>/")
    p_build.add_argument("--out", type=Path, default=BUILD_DIR, help="output folder")
    p_upload = sub.add_parser("upload", help="build, then upload to the artifacts bucket")
    p_upload.add_argument("--bucket", help="[terraform output artifacts_bucket_name]")
    p_upload.add_argument("--prefix", default=DEFAULT_PREFIX, help="key prefix (default artifacts)")
    p_upload.add_argument("--region", help="[AWS_REGION, else terraform output aws_region]")
    p_upload.add_argument("--force", action="store_true", help="upload even if already there")
    for p in (p_build, p_upload):
        p.add_argument("--jars-dir", type=Path, default=SPARK_JARS_DIR,
                       help="Maven-resolved jars (default .cache/jars/spark)")
    args = parser.parse_args(argv)

    from scripts.terraform_outputs import OutputsError, aws_region, terraform_output

    try:
        bundle = build(jars=ensure_jars(args.jars_dir))
        if args.command == "build":
            target = write_local(bundle, args.out)
            print(f"version {bundle.version}: {target} "
                  f"(+ {len(bundle.manifest['jars'])} jars from {args.jars_dir})")
            return 0
        import boto3

        bucket = args.bucket or str(terraform_output("artifacts_bucket_name", flag="--bucket"))
        result = upload(boto3.client("s3", region_name=aws_region(args.region)), bundle, bucket,
                        prefix=args.prefix, force=args.force)
    except (ArtifactsError, OutputsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if result["skipped"]:
        print(f"version {result['version']} is already at {result['uri']} (--force re-uploads)")
    else:
        print(f"uploaded {len(result['uploaded'])} objects to {result['uri']}")
    print(f"{args.prefix.strip('/')}/{LATEST} -> {result['version']}; "
          "next: python -m scripts.emr_steps submit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
