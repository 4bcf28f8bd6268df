"""Run the streaming job on the EMR cluster as a step: submit, status, stop, logs.

    python -m scripts.emr_steps submit [--available-now | --trigger-interval "10 seconds"]
    python -m scripts.emr_steps status
    python -m scripts.emr_steps stop [--force]
    python -m scripts.emr_steps logs [--step-id s-…]

Every AWS name is a flag; a flag left out is read from the Terraform outputs of ``infra/``
(``emr_cluster_id``, ``artifacts_bucket_name``, ``lake_uri``, ``glue_database_name``,
``msk_cluster_arn``, ``aws_region``).
The job is never a Terraform ``step`` block: that would replace the cluster.

``submit`` adds one ``command-runner.jar`` step that runs ``spark-submit --deploy-mode cluster``
with the jars, ``--py-files`` and entry script of an upload of ``scripts.artifacts`` (the latest
by default), Python 3.11 (``spark.pyspark.python``), and the job's settings: bootstrap brokers
(``BootstrapBrokerStringSaslIam`` of ``kafka.get_bootstrap_brokers``), trigger and auth mode as
job flags; region, topics, ``JOB_PUBLISH_METRICS`` and the lake (``LAKE_URI``,
``LAKE_CATALOG=glue``, ``LAKE_DATABASE=<Glue database>``, which the job validates together) as
driver environment (``spark.yarn.appMasterEnv.*``). No Iceberg jar is shipped: the cluster's own
Iceberg (``iceberg-defaults`` in infra/modules/emr) serves the ``lake`` catalog. It refuses while
a step of the same name is pending or running: two queries on one checkpoint would fail each
other.

``stop`` cancels the step. In cluster mode, cancelling a running step ends only the
``spark-submit`` client, not the driver in YARN, so for a running step ``stop`` also adds a
short step that kills the YARN application by name. The query resumes from its checkpoint on
the next ``submit``, without loss or duplicates.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from emr_jobs.core.kafka import KafkaSettings, default_topics
from emr_jobs.core.settings import SettingsError
from emr_jobs.settings import JobSettings
from scripts.artifacts import ArtifactsError, read_manifest
from scripts.terraform_outputs import INFRA_DIR, OutputsError, aws_region, terraform_output

JOB_NAME = "smartcity-streaming-job"
#: EMR 7.x ships Python 3.9 (the default) and 3.11; the job is built and tested on 3.11.
EMR_PYTHON = "/usr/bin/python3.11"
ACTIVE_STATES = ("PENDING", "RUNNING", "CANCEL_PENDING")
#: On EMR the lake's Iceberg catalog is the Glue Data Catalog (tables made by infra/modules/glue).
LAKE_CATALOG = "glue"


class StepError(RuntimeError):
    """The command cannot do what was asked; the message says why."""


class StepConflict(StepError):
    """A step of the same name is already pending or running."""


@dataclass(frozen=True)
class JobStep:
    """Everything one submission of the job needs; validated like the job's own settings."""

    cluster_id: str
    artifacts_uri: str  # s3://<bucket>/artifacts/<version>/
    manifest: Mapping[str, object] = field(repr=False)
    lake_uri: str
    bootstrap_servers: str
    region: str
    database: str  # LAKE_DATABASE: the Glue database Terraform creates (output glue_database_name)
    trigger: str = "processingTime"  # processingTime | availableNow
    trigger_interval: str = JobSettings.model_fields["trigger_interval"].default
    python: str = EMR_PYTHON
    name: str = JOB_NAME
    # The contracts' topics: the ones infra/ creates and grants access to.
    topics: Mapping[str, str] = field(default_factory=lambda: default_topics({}))
    extra_env: Mapping[str, str] = field(default_factory=dict)  # more JOB_* settings

    def __post_init__(self) -> None:
        bad = [k for k in self.extra_env if not re.fullmatch(r"[A-Z][A-Z0-9_]*", k)]
        if bad:
            raise SettingsError(f"--env names must be upper-case variable names; got {bad}")
        if not self.lake_uri.startswith("s3://"):
            raise SettingsError(f"the lake on EMR must be an s3:// URI; got {self.lake_uri!r}")
        if not self.artifacts_uri.startswith("s3://") or not self.artifacts_uri.endswith("/"):
            raise SettingsError(f"artifacts_uri must be s3://…/ ; got {self.artifacts_uri!r}")
        # The job would reject these at start-up, minutes later in YARN: reject them now.
        JobSettings(
            lake_uri=self.lake_uri,
            catalog=LAKE_CATALOG,
            database=self.database,
            trigger=self.trigger,
            trigger_interval=self.trigger_interval,
        )
        KafkaSettings(
            bootstrap_servers=self.bootstrap_servers,
            auth_mode="msk-iam",
            aws_region=self.region,
            topics=self.topics,
        )

    def uri(self, key: str) -> str:
        return self.artifacts_uri + key

    def driver_environment(self) -> dict[str, str]:
        """Settings without a job flag, for the driver (``spark.yarn.appMasterEnv.*``)."""
        from emr_jobs.core.contracts import CONTRACTS

        env = {
            "AWS_REGION": self.region,
            "JOB_PUBLISH_METRICS": "true",
            # The lake's three settings travel together: JobSettings checks them as a set.
            "LAKE_URI": self.lake_uri,
            "LAKE_CATALOG": LAKE_CATALOG,
            "LAKE_DATABASE": self.database,
        }
        env.update({CONTRACTS[s].topic_env: t for s, t in sorted(self.topics.items())})
        env.update(self.extra_env)
        return env


def _manifest_keys(manifest: Mapping[str, object], entry: str) -> list[str]:
    """The artifact keys the manifest lists under ``entry`` (``jars``, ``py_files``)."""
    keys = manifest.get(entry)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ArtifactsError(
            f"the artifacts manifest's {entry!r} is not a list of keys: {keys!r}; "
            "upload the artifacts again with `python -m scripts.artifacts upload`"
        )
    return keys


def spark_submit_args(step: JobStep) -> list[str]:
    """The ``spark-submit`` command line that ``command-runner.jar`` runs on the primary node."""
    manifest = step.manifest
    args = [
        "spark-submit",
        "--master",
        "yarn",
        "--deploy-mode",
        "cluster",
        "--name",
        step.name,
        "--jars",
        ",".join(step.uri(j) for j in _manifest_keys(manifest, "jars")),
        "--py-files",
        ",".join(step.uri(p) for p in _manifest_keys(manifest, "py_files")),
        "--conf",
        f"spark.pyspark.python={step.python}",
        "--conf",
        f"spark.pyspark.driver.python={step.python}",
        "--conf",
        f"spark.executorEnv.AWS_REGION={step.region}",
    ]
    for key, value in step.driver_environment().items():
        args += ["--conf", f"spark.yarn.appMasterEnv.{key}={value}"]
    args += [
        step.uri(str(manifest["entry_point"])),
        "--bootstrap-servers",
        step.bootstrap_servers,
        "--auth-mode",
        "msk-iam",
    ]
    if step.trigger == "availableNow":
        args.append("--available-now")
    else:
        args += ["--trigger-interval", step.trigger_interval]
    return args


def step_definition(step: JobStep) -> dict[str, object]:
    return {
        "Name": step.name,
        # The cluster outlives the job: a failed job must not terminate it.
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": spark_submit_args(step)},
    }


def bootstrap_brokers(kafka, cluster_arn: str) -> str:
    """``BootstrapBrokerStringSaslIam``: the brokers' IAM listener (TLS, port 9098)."""
    response = kafka.get_bootstrap_brokers(ClusterArn=cluster_arn)
    brokers = response.get("BootstrapBrokerStringSaslIam")
    if not brokers:
        raise StepError(
            f"MSK cluster {cluster_arn} has no IAM listener "
            "(BootstrapBrokerStringSaslIam is empty): enable IAM client authentication"
        )
    return str(brokers)


# --- the step's life ---------------------------------------------------------------------------


def steps_named(emr, cluster_id: str, name: str, states: Sequence[str] = ()) -> list[dict]:
    """Steps called ``name``, newest first (the order EMR lists them in)."""
    kwargs: dict[str, object] = {"ClusterId": cluster_id}
    if states:
        kwargs["StepStates"] = list(states)
    found: list[dict] = []
    for page in emr.get_paginator("list_steps").paginate(**kwargs):
        found.extend(s for s in page["Steps"] if s["Name"] == name)
    return found


def submit(emr, step: JobStep) -> str:
    """Add the step; returns its id. Refuses while a step of the same name is active."""
    active = steps_named(emr, step.cluster_id, step.name, ACTIVE_STATES)
    if active:
        current = active[0]
        raise StepConflict(
            f"{step.name} is already {current['Status']['State']} on {step.cluster_id} "
            f"(step {current['Id']}); not submitting a second query on the same checkpoint. "
            "Stop it first: python -m scripts.emr_steps stop"
        )
    return str(
        emr.add_job_flow_steps(JobFlowId=step.cluster_id, Steps=[step_definition(step)])["StepIds"][
            0
        ]
    )


@dataclass(frozen=True)
class StepStatus:
    name: str
    cluster_id: str
    step: dict | None
    last_failure: dict | None

    @property
    def state(self) -> str:
        return self.step["Status"]["State"] if self.step else "NEVER_SUBMITTED"

    def describe(self) -> str:
        if self.step is None:
            lines = [f"{self.name} on {self.cluster_id}: never submitted"]
        else:
            timeline = self.step["Status"].get("Timeline", {})
            since = (
                timeline.get("EndDateTime")
                or timeline.get("StartDateTime")
                or timeline.get("CreationDateTime")
            )
            lines = [
                f"{self.name} on {self.cluster_id}: {self.state} (step {self.step['Id']}"
                + (f", since {since:%Y-%m-%d %H:%M:%S %Z}".rstrip() if since else "")
                + ")"
            ]
        if self.last_failure is not None:
            lines.append("last failure: " + failure_reason(self.last_failure))
        elif self.step is not None:
            lines.append("last failure: none")
        return "\n".join(lines)


def failure_reason(step: dict) -> str:
    status = step["Status"]
    details = status.get("FailureDetails") or {}
    parts = [
        details.get("Reason"),
        details.get("Message"),
        (status.get("StateChangeReason") or {}).get("Message"),
    ]
    text = " — ".join(dict.fromkeys(p for p in parts if p)) or "no reason recorded"
    ended = (status.get("Timeline") or {}).get("EndDateTime")
    when = f" at {ended:%Y-%m-%d %H:%M:%S %Z}".rstrip() if ended else ""
    log = f" (log: {details['LogFile']})" if details.get("LogFile") else ""
    return f"step {step['Id']} FAILED{when}: {text}{log}"


def status(emr, cluster_id: str, name: str = JOB_NAME) -> StepStatus:
    steps = steps_named(emr, cluster_id, name)
    failed = next((s for s in steps if s["Status"]["State"] == "FAILED"), None)
    return StepStatus(name, cluster_id, steps[0] if steps else None, failed)


def kill_application_step(name: str) -> dict[str, object]:
    """A step that kills the job's YARN application (the driver) by its name."""
    script = (
        "yarn application -list -appStates NEW,NEW_SAVING,SUBMITTED,ACCEPTED,RUNNING 2>/dev/null"
        f" | awk '$1 ~ /^application_/ && $2 == \"{name}\" {{print $1}}'"
        " | xargs -r -n1 yarn application -kill"
    )
    return {
        "Name": f"{name}-stop",
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["bash", "-c", script]},
    }


def stop(emr, cluster_id: str, name: str = JOB_NAME, *, force: bool = False) -> list[str]:
    """Cancel the job's active steps; kill its YARN application if it was running.

    Returns what was done, one line each. ``force`` cancels with ``TERMINATE_PROCESS``
    (SIGKILL) instead of ``SEND_INTERRUPT`` (SIGTERM).
    """
    active = steps_named(emr, cluster_id, name, ACTIVE_STATES)
    if not active:
        return [f"{name} is not pending or running on {cluster_id}: nothing to stop"]
    done = []
    if any(s["Status"]["State"] == "RUNNING" for s in active):
        kill_id = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=[kill_application_step(name)])[
            "StepIds"
        ][0]
        done.append(f"added step {kill_id} ({name}-stop): kills the YARN application {name}")
    response = emr.cancel_steps(
        ClusterId=cluster_id,
        StepIds=[s["Id"] for s in active],
        StepCancellationOption="TERMINATE_PROCESS" if force else "SEND_INTERRUPT",
    )
    for info in response.get("CancelStepsInfoList", []):
        reason = f": {info['Reason']}" if info.get("Reason") else ""
        done.append(f"cancel step {info['StepId']}: {info['Status']}{reason}")
    done.append("the query resumes from its checkpoint on the next submit")
    return done


# --- logs ----------------------------------------------------------------------------------------

_APPLICATION_ID = re.compile(r"application_\d+_\d+")


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    return bucket, key


def log_locations(emr, cluster_id: str, step_id: str, s3=None) -> dict[str, str]:
    """Where the step's and the driver's logs are (EMR copies them to S3 every few minutes).

    With an S3 client it reads the step's ``stderr.gz`` for the YARN application id and finds
    the driver's container (the application master, ``…_000001``) under ``containers/``.
    """
    log_uri = emr.describe_cluster(ClusterId=cluster_id)["Cluster"].get("LogUri")
    if not log_uri:
        raise StepError(f"cluster {cluster_id} has no log URI: its logs are not copied to S3")
    base = re.sub(r"^s3[an]?://", "s3://", log_uri).rstrip("/") + f"/{cluster_id}/"
    found = {
        "step": f"{base}steps/{step_id}/",
        "step_stderr": f"{base}steps/{step_id}/stderr.gz",
        "containers": f"{base}containers/",
    }
    if s3 is None:
        return found
    bucket, key = _split_s3(found["step_stderr"])
    try:
        stderr = gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except Exception:  # noqa: BLE001 - not copied yet, or not readable: report what is known
        return found
    match = _APPLICATION_ID.search(stderr.decode(errors="replace"))
    if not match:
        return found
    app = match.group(0)
    found["application_id"] = app
    found["application"] = f"{base}containers/{app}/"
    bucket, prefix = _split_s3(found["application"])
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, Delimiter="/")
    drivers = sorted(
        p["Prefix"]
        for p in listing.get("CommonPrefixes", [])
        if p["Prefix"].rstrip("/").endswith("_000001")
    )
    if drivers:
        found["driver"] = f"s3://{bucket}/{drivers[-1]}"  # the last application attempt
    return found


# --- command line --------------------------------------------------------------------------------


def _output(value: str | None, name: str, flag: str, infra_dir: Path) -> str:
    return value or str(terraform_output(name, flag=flag, infra_dir=infra_dir))


def _env_pairs(items: Sequence[str]) -> dict[str, str]:
    missing = [item for item in items if "=" not in item]
    if missing:
        raise SettingsError(f"--env takes NAME=VALUE; got {missing}")
    return dict(item.split("=", 1) for item in items)


def build_step(args: argparse.Namespace, s3, kafka) -> JobStep:
    infra = args.infra_dir
    cluster_id = _output(args.cluster_id, "emr_cluster_id", "--cluster-id", infra)
    bucket = _output(args.artifacts_bucket, "artifacts_bucket_name", "--artifacts-bucket", infra)
    manifest = read_manifest(s3, bucket, args.artifacts_version or "", prefix=args.artifacts_prefix)
    lake_uri = _output(args.lake_uri, "lake_uri", "--lake-uri", infra)
    database = _output(args.glue_database, "glue_database_name", "--glue-database", infra)
    brokers = args.bootstrap_servers or bootstrap_brokers(
        kafka, _output(args.msk_cluster_arn, "msk_cluster_arn", "--msk-cluster-arn", infra)
    )
    return JobStep(
        cluster_id=cluster_id,
        artifacts_uri=f"s3://{bucket}/{args.artifacts_prefix.strip('/')}/{manifest['version']}/",
        manifest=manifest,
        lake_uri=lake_uri,
        bootstrap_servers=brokers,
        region=args.region,
        database=database,
        trigger="availableNow" if args.available_now else "processingTime",
        trigger_interval=args.setting_trigger_interval or JobStep.trigger_interval,
        python=args.python,
        name=args.name,
        extra_env=_env_pairs(args.env),
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.emr_steps", description=__doc__.split("\n")[0]
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cluster-id", help="[terraform output emr_cluster_id]")
    common.add_argument("--name", default=JOB_NAME, help=f"step and YARN name (default {JOB_NAME})")
    common.add_argument("--region", help="[AWS_REGION, else terraform output aws_region]")
    common.add_argument("--infra-dir", type=Path, default=INFRA_DIR, help="Terraform root (infra/)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("submit", parents=[common], help="add the streaming job as a step")
    p.add_argument("--artifacts-bucket", help="[terraform output artifacts_bucket_name]")
    p.add_argument("--artifacts-prefix", default="artifacts")
    p.add_argument("--artifacts-version", help="an uploaded version (default: the latest upload)")
    p.add_argument("--lake-uri", help="s3://<lake bucket> [terraform output lake_uri]")
    p.add_argument(
        "--glue-database",
        help="LAKE_DATABASE, the Iceberg tables' Glue database "
        "[terraform output glue_database_name]",
    )
    p.add_argument("--msk-cluster-arn", help="[terraform output msk_cluster_arn]")
    p.add_argument("--bootstrap-servers", help="skip the get_bootstrap_brokers look-up")
    p.add_argument(
        "--available-now",
        action="store_true",
        help="process what is in the topics, then stop (default: run continuously)",
    )
    JobSettings.add_flags(p, "trigger_interval")
    p.add_argument("--python", default=EMR_PYTHON, help=f"Python on the nodes ({EMR_PYTHON})")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="more driver environment, e.g. JOB_STARTING_OFFSETS=latest (repeatable)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the step, submit nothing")
    sub.add_parser("status", parents=[common], help="state of the step and its last failure")
    p = sub.add_parser("stop", parents=[common], help="cancel the step (and its YARN application)")
    p.add_argument("--force", action="store_true", help="SIGKILL (TERMINATE_PROCESS), not SIGTERM")
    p = sub.add_parser("logs", parents=[common], help="where the step's and the driver's logs are")
    p.add_argument("--step-id", help="default: the newest step of --name")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import boto3

    try:
        args.region = aws_region(args.region, infra_dir=args.infra_dir)
        emr = boto3.client("emr", region_name=args.region)
        if args.command == "submit":
            step = build_step(
                args,
                boto3.client("s3", region_name=args.region),
                boto3.client("kafka", region_name=args.region),
            )
            if args.dry_run:
                print(json.dumps(step_definition(step), indent=2))
                return 0
            step_id = submit(emr, step)
            print(
                f"submitted {step.name} as step {step_id} on {step.cluster_id} "
                f"(artifacts {step.manifest['version']})"
            )
            print("follow it: python -m scripts.emr_steps status | logs")
            return 0
        cluster_id = _output(args.cluster_id, "emr_cluster_id", "--cluster-id", args.infra_dir)
        if args.command == "status":
            print(status(emr, cluster_id, args.name).describe())
        elif args.command == "stop":
            print("\n".join(stop(emr, cluster_id, args.name, force=args.force)))
        else:
            logged_id: str | None = args.step_id or (
                status(emr, cluster_id, args.name).step or {}
            ).get("Id")
            if not logged_id:
                raise StepError(f"{args.name} was never submitted on {cluster_id}; pass --step-id")
            s3 = boto3.client("s3", region_name=args.region)
            print(format_logs(log_locations(emr, cluster_id, logged_id, s3)))
    except StepConflict as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (StepError, SettingsError, OutputsError, ArtifactsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def format_logs(where: Mapping[str, str]) -> str:
    lines = [f"step logs (spark-submit's output):  {where['step']}  (stderr.gz, stdout.gz)"]
    if "driver" in where:
        lines.append(f"driver logs (YARN application master): {where['driver']}  (stderr.gz)")
    elif "application" in where:
        lines.append(f"driver logs: {where['application']}<container ending in _000001>/stderr.gz")
    else:
        lines.append(
            f"driver logs: {where['containers']}<application id>/<container ending in "
            "_000001>/stderr.gz; the application id is in the step's stderr.gz"
        )
    if "application_id" in where:
        lines.append(f"on the primary node: yarn logs -applicationId {where['application_id']}")
    lines.append(f"read one: aws s3 cp {where['step_stderr']} - | gunzip | tail -n 50")
    lines.append("EMR copies logs to S3 about every five minutes.")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
