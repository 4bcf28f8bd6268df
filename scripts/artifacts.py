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

``s3://<bucket>/python/<wheel set>/``
    the job's Python packages for the cluster's Python 3.11 (pandas, numpy, pyarrow and their
    dependencies, exactly the pins of ``infra/scripts/emr_python_requirements.txt``), which
    the EMR bootstrap action ``infra/scripts/emr_python_packages.sh`` installs on every node:
    ``*.whl`` (CPython 3.11, manylinux x86_64, downloaded once with ``pip download`` into
    ``.cache/wheels/<wheel set>/``), ``requirements.txt`` (the pins to install: all but pip,
    the installer, which the bootstrap runs from its wheel) and ``manifest.json``, written last

``<version>`` is the project version plus a hash of the content (``0.1.0-3f2a9c1b7d4e``): the same
code and jars always get the same prefix, so uploading twice is a no-op, and a new build never
overwrites the one a running step uses. The git commit is recorded in the manifest.

``<wheel set>`` is ``cp311-x86_64-`` plus the first 12 hex digits of the requirements file's
SHA-256. Terraform (infra/modules/emr) computes the same name from the same file for the
bootstrap action, so the wheels must be uploaded before the cluster is created, and a changed
file is a new set (and a new cluster), never new wheels under an old name.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

from emr_jobs.core.paths import REPO_ROOT

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
REQUIRED_JARS = (
    "spark-sql-kafka-0-10_",
    "spark-token-provider-kafka-0-10_",
    "kafka-clients-",
    "aws-msk-iam-auth-",
)
#: Local-only jars (the Iceberg runtime and the JDBC catalog's SQLite driver) that EMR must not
#: get even if they land in the jars folder: a second Iceberg beside EMR's own breaks the catalog.
LOCAL_ONLY_JARS = ("iceberg-spark-runtime-", "sqlite-jdbc-", "iceberg-aws-bundle-")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same sources give the same zip bytes

#: The job's Python packages, every distribution pinned with ``==`` (one line each).
PYTHON_REQUIREMENTS = REPO_ROOT / "infra" / "scripts" / "emr_python_requirements.txt"
WHEELS_DIR = REPO_ROOT / ".cache" / "wheels"
PYTHON_PREFIX = "python"
REQUIREMENTS_NAME = "requirements.txt"
#: The one pin the bootstrap action runs rather than installs.
INSTALLER = "pip"
#: What the EMR nodes run: CPython 3.11 (scripts.emr_steps.EMR_PYTHON) on x86_64 (m5 instances)
#: Amazon Linux 2023, whose glibc 2.34 runs manylinux wheels up to manylinux_2_28 and older.
EMR_PYTHON_VERSION = "3.11"
EMR_ARCH = "x86_64"
EMR_WHEEL_PLATFORMS = (f"manylinux2014_{EMR_ARCH}", f"manylinux_2_28_{EMR_ARCH}")
_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


class ArtifactsError(RuntimeError):
    """The job cannot be packaged or uploaded; the message says why and what to do."""


class UploadResult(TypedDict):
    """What ``upload`` and ``upload_python_packages`` did."""

    uri: str
    version: str
    uploaded: list[str]  # the keys written
    skipped: bool  # the same content was already there


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
        p
        for p in package.rglob("*")
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


def _describe(files: dict[str, bytes | Path]) -> tuple[dict[str, dict[str, object]], str]:
    """Size and SHA-256 of every file, and one SHA-256 over all of them (the content hash)."""
    described: dict[str, dict[str, object]] = {}
    for key in sorted(files):
        value = files[key]
        data = value if isinstance(value, bytes) else Path(value).read_bytes()
        described[key] = {"bytes": len(data), "sha256": _sha256(data)}
    content = "".join(f"{k}\0{v['sha256']}\n" for k, v in described.items())
    return described, _sha256(content.encode())


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
    described, content_hash = _describe(files)
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
) -> UploadResult:
    """Upload the bundle to ``s3://<bucket>/<prefix>/<version>/``; manifest last, then latest.json.

    Returns ``{"uri", "version", "uploaded": [keys], "skipped": bool}``. An upload whose
    manifest is already there with the same content hash is skipped (unless ``force``).
    """
    base = version_prefix(bundle.version, prefix)
    manifest_body, uploaded, skipped = _put_bundle(s3, bundle, bucket, base, force=force)
    s3.put_object(
        Bucket=bucket,
        Key=f"{prefix.strip('/')}/{LATEST}",
        Body=manifest_body,
        ContentType="application/json",
    )
    return {
        "uri": f"s3://{bucket}/{base}",
        "version": bundle.version,
        "uploaded": uploaded,
        "skipped": skipped,
    }


def _existing_manifest(s3, bucket: str, key: str) -> dict | None:
    from botocore.exceptions import ClientError

    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
            raise ArtifactsError(f"cannot read s3://{bucket}/{key}: {err}") from None
    return None


def _put_bundle(
    s3, bundle: Bundle, bucket: str, base: str, *, force: bool
) -> tuple[bytes, list[str], bool]:
    """Every file under ``base``, then the manifest; skipped when the same content is there.

    Returns the manifest as uploaded, the keys written, and whether the upload was skipped.
    """
    manifest = {**bundle.manifest, "s3_prefix": f"s3://{bucket}/{base}"}
    manifest_body = (json.dumps(manifest, indent=2) + "\n").encode()
    existing = _existing_manifest(s3, bucket, base + MANIFEST)
    if (
        not force
        and existing is not None
        and existing.get("content_sha256") == bundle.manifest["content_sha256"]
    ):
        return manifest_body, [], True
    uploaded: list[str] = []
    for key in sorted(bundle.files):
        s3.put_object(Bucket=bucket, Key=base + key, Body=bundle.data(key))
        uploaded.append(base + key)
    s3.put_object(
        Bucket=bucket, Key=base + MANIFEST, Body=manifest_body, ContentType="application/json"
    )
    uploaded.append(base + MANIFEST)
    return manifest_body, uploaded, False


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


# --- the job's Python packages (the EMR bootstrap action installs them on every node) ------------


def canonical_name(name: str) -> str:
    """A distribution name as pip compares them: ``Python_Dateutil`` is ``python-dateutil``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(requirements: Path = PYTHON_REQUIREMENTS) -> dict[str, str]:
    """``{name: version}`` of a requirements file whose every line is ``name==version``."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(Path(requirements).read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9.+!_-]+)", line)
        if not match:
            raise ArtifactsError(
                f"{requirements}:{number}: pin one exact version, name==version; "
                f"got {raw.strip()!r}"
            )
        name, version = match.groups()
        if canonical_name(name) in {canonical_name(n) for n in pins}:
            raise ArtifactsError(f"{requirements}:{number}: {name} is pinned twice")
        pins[name] = version
    if canonical_name(INSTALLER) not in {canonical_name(n) for n in pins}:
        raise ArtifactsError(f"{requirements}: pin {INSTALLER}, the installer the bootstrap runs")
    return pins


def python_packages_id(requirements: Path = PYTHON_REQUIREMENTS) -> str:
    """``cp311-x86_64-<12 hex digits>``: the wheel set's name, from the requirements file's bytes.

    infra/modules/emr computes the same name with ``filesha256()`` (a test holds them equal).
    """
    digest = _sha256(Path(requirements).read_bytes())[:12]
    return f"cp{EMR_PYTHON_VERSION.replace('.', '')}-{EMR_ARCH}-{digest}"


def python_packages_prefix(
    requirements: Path = PYTHON_REQUIREMENTS, prefix: str = PYTHON_PREFIX
) -> str:
    return f"{prefix.strip('/')}/{python_packages_id(requirements)}/"


def pip_download_command(requirements: Path, dest: Path) -> list[str]:
    """``pip download`` of the pinned wheels for the EMR nodes, whatever machine runs it."""
    cp = "cp" + EMR_PYTHON_VERSION.replace(".", "")
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        EMR_PYTHON_VERSION,
        "--abi",
        cp,
    ]
    for platform in EMR_WHEEL_PLATFORMS:
        command += ["--platform", platform]
    return command + ["--dest", str(dest), "--requirement", str(requirements)]


def _glibc(platform: str) -> tuple[int, int] | None:
    """The glibc a manylinux platform tag of :data:`EMR_ARCH` needs, or None for another tag."""
    match = re.fullmatch(rf"manylinux_(\d+)_(\d+)_{EMR_ARCH}", platform)
    if match:
        return int(match.group(1)), int(match.group(2))
    legacy, _, arch = platform.partition("_")
    return _LEGACY_MANYLINUX.get(legacy) if arch == EMR_ARCH else None


def wheel_fits_emr(filename: str) -> bool:
    """Whether pip on an EMR node (CPython 3.11, x86_64, glibc 2.34) installs this wheel file."""
    parts = filename.removesuffix(".whl").split("-")
    if not filename.endswith(".whl") or len(parts) not in (5, 6):
        return False
    pythons, abis, platforms = (set(tag.split(".")) for tag in parts[-3:])
    cp = "cp" + EMR_PYTHON_VERSION.replace(".", "")
    minor = int(EMR_PYTHON_VERSION.split(".")[1])
    stable_abi = "abi3" in abis and any(  # cp39-abi3 runs on 3.11, cp312-abi3 does not
        (m := re.fullmatch(r"cp3(\d+)", tag)) and int(m.group(1)) <= minor for tag in pythons
    )
    newest = max(g for g in map(_glibc, EMR_WHEEL_PLATFORMS) if g)
    return (
        bool(pythons & {"py3", "py" + cp[2:], cp}) and bool(abis & {"none", cp}) or stable_abi
    ) and ("any" in platforms or any((g := _glibc(p)) and g <= newest for p in platforms))


def find_wheels(folder: Path, requirements: Path = PYTHON_REQUIREMENTS) -> list[Path]:
    """The wheel set in ``folder``: one wheel per pin at its version, fit for EMR, nothing else."""
    pins = {canonical_name(n): v for n, v in read_pins(requirements).items()}
    found: dict[str, list[Path]] = {}
    problems = []
    for wheel in sorted(Path(folder).glob("*.whl")):
        name, version = wheel.name.split("-")[:2]
        found.setdefault(canonical_name(name), []).append(wheel)
        if canonical_name(name) not in pins:
            problems.append(f"{wheel.name} is not pinned in {requirements.name}")
        elif version != pins[canonical_name(name)]:
            problems.append(f"{wheel.name} is not the pinned {pins[canonical_name(name)]}")
        elif not wheel_fits_emr(wheel.name):
            problems.append(
                f"{wheel.name} is not for CPython {EMR_PYTHON_VERSION} on manylinux {EMR_ARCH}"
            )
    problems += [f"two wheels of {name}" for name, wheels in found.items() if len(wheels) > 1]
    problems += [
        f"no wheel of {name}=={version}" for name, version in pins.items() if name not in found
    ]
    if problems:
        raise ArtifactsError(
            f"the wheels in {folder} are not the set of {requirements}: {'; '.join(problems)}. "
            "Download them again: remove the folder and run `python -m scripts.artifacts build`"
        )
    return [wheels[0] for _, wheels in sorted(found.items())]


def ensure_wheels(
    folder: Path | None = None,
    requirements: Path = PYTHON_REQUIREMENTS,
    *,
    run: Callable[[list[str]], int] = subprocess.call,
) -> list[Path]:
    """The wheel set; ``pip download`` fills ``.cache/wheels/<set>/`` once when it is missing.

    A folder given explicitly is only checked, never downloaded into.
    """
    if folder is not None:
        return find_wheels(folder, requirements)
    target = WHEELS_DIR / python_packages_id(requirements)
    try:
        return find_wheels(target, requirements)
    except ArtifactsError:
        pass
    partial = WHEELS_DIR / f".{target.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    print(f"artifacts: downloading the EMR nodes' Python packages into {target}", file=sys.stderr)
    if run(pip_download_command(requirements, partial)) != 0:
        raise ArtifactsError("pip download failed; see its output above")
    find_wheels(partial, requirements)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return find_wheels(target, requirements)


def build_python_packages(
    wheels: Sequence[Path], requirements: Path = PYTHON_REQUIREMENTS
) -> Bundle:
    """The wheel set as uploaded: the wheels, what the bootstrap installs, and a manifest."""
    pins = read_pins(requirements)
    install = [f"{n}=={v}" for n, v in pins.items() if canonical_name(n) != INSTALLER]
    (installer,) = [w.name for w in wheels if canonical_name(w.name.split("-")[0]) == INSTALLER]
    files: dict[str, bytes | Path] = {w.name: w for w in wheels}
    files[REQUIREMENTS_NAME] = (
        f"# What infra/scripts/emr_python_packages.sh installs: the pins of\n"
        f"# infra/scripts/{Path(requirements).name} but {INSTALLER}, which it runs from "
        f"{installer}.\n" + "".join(line + "\n" for line in install)
    ).encode()
    described, content_hash = _describe(files)
    set_id = python_packages_id(requirements)
    manifest = {
        "project": "smartcity-streaming",
        "python_packages": set_id,
        "requirements_sha256": _sha256(Path(requirements).read_bytes()),
        "python": f"cp{EMR_PYTHON_VERSION.replace('.', '')}",
        "platforms": list(EMR_WHEEL_PLATFORMS),
        "installer": installer,
        "install": install,
        "wheels": sorted(w.name for w in wheels),
        "content_sha256": content_hash,
        "built_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": described,
    }
    return Bundle(version=set_id, files=files, manifest=manifest)


def upload_python_packages(
    s3, packages: Bundle, bucket: str, *, prefix: str = PYTHON_PREFIX, force: bool = False
) -> UploadResult:
    """Upload the wheel set to ``s3://<bucket>/python/<set>/``, the manifest last.

    A set already there is skipped. Other wheels under the same name are refused (unless
    ``force``): a running cluster's new nodes install from that prefix.
    """
    base = f"{prefix.strip('/')}/{packages.version}/"
    existing = _existing_manifest(s3, bucket, base + MANIFEST)
    if (
        existing is not None
        and not force
        and existing.get("content_sha256") != packages.manifest["content_sha256"]
    ):
        raise ArtifactsError(
            f"s3://{bucket}/{base} already holds other wheels for the same requirements; "
            "clusters install from it, so it is not replaced (--force replaces it)"
        )
    _, uploaded, skipped = _put_bundle(s3, packages, bucket, base, force=force)
    return {
        "uri": f"s3://{bucket}/{base}",
        "version": packages.version,
        "uploaded": uploaded,
        "skipped": skipped,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.artifacts", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser(
        "build",
        help="package the job into .cache/artifacts/<version>/ and fetch the EMR nodes' wheels",
    )
    p_build.add_argument("--out", type=Path, default=BUILD_DIR, help="output folder")
    p_upload = sub.add_parser(
        "upload", help="build, then upload the job and the wheels to the artifacts bucket"
    )
    p_upload.add_argument("--bucket", help="[terraform output artifacts_bucket_name]")
    p_upload.add_argument("--prefix", default=DEFAULT_PREFIX, help="key prefix (default artifacts)")
    p_upload.add_argument("--region", help="[AWS_REGION, else terraform output aws_region]")
    p_upload.add_argument("--force", action="store_true", help="upload even if already there")
    for p in (p_build, p_upload):
        p.add_argument(
            "--jars-dir",
            type=Path,
            default=SPARK_JARS_DIR,
            help="Maven-resolved jars (default .cache/jars/spark)",
        )
        p.add_argument(
            "--wheels-dir",
            type=Path,
            help="the wheel set of infra/scripts/emr_python_requirements.txt "
            "(default .cache/wheels/<set>, downloaded with pip when missing)",
        )
    args = parser.parse_args(argv)

    from scripts.terraform_outputs import OutputsError, aws_region, terraform_output

    try:
        bundle = build(jars=ensure_jars(args.jars_dir))
        wheels = ensure_wheels(args.wheels_dir)
        packages = build_python_packages(wheels)
        if args.command == "build":
            target = write_local(bundle, args.out)
            print(
                f"version {bundle.version}: {target} "
                f"(+ {len(bundle.manifest['jars'])} jars from {args.jars_dir})"
            )
            print(f"python packages {packages.version}: {len(wheels)} wheels in {wheels[0].parent}")
            return 0
        import boto3

        bucket = args.bucket or str(terraform_output("artifacts_bucket_name", flag="--bucket"))
        s3 = boto3.client("s3", region_name=aws_region(args.region))
        python_result = upload_python_packages(s3, packages, bucket, force=args.force)
        result = upload(s3, bundle, bucket, prefix=args.prefix, force=args.force)
    except (ArtifactsError, OutputsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for what, done in (("python packages", python_result), ("version", result)):
        if done["skipped"]:
            print(f"{what} {done['version']} is already at {done['uri']} (--force re-uploads)")
        else:
            print(
                f"uploaded {what} {done['version']}: {len(done['uploaded'])} objects to "
                f"{done['uri']}"
            )
    print(
        f"{args.prefix.strip('/')}/{LATEST} -> {result['version']}; "
        "next: python -m scripts.emr_steps submit (the EMR cluster's bootstrap action installs "
        f"{python_result['uri']})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
