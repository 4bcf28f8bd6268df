"""The EMR step commands: the exact step, idempotent submit, status, stop and logs.

moto plays EMR and S3. Where moto lacks an action (``kafka.get_bootstrap_brokers``,
``emr.cancel_steps``) botocore's ``Stubber`` answers and checks the exact request.
"""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from emr_jobs.core.settings import SettingsError
from scripts import emr_steps
from scripts.artifacts import build, find_jars, upload
from scripts.emr_steps import (
    JOB_NAME,
    JobStep,
    StepConflict,
    StepError,
    bootstrap_brokers,
    log_locations,
    spark_submit_args,
    status,
    step_definition,
    stop,
    submit,
)

REGION = "eu-west-2"
ARTIFACTS = "smartcity-dev-artifacts-123456789012"
LOGS = "smartcity-dev-logs-123456789012"
LAKE_URI = "s3://smartcity-dev-lake-123456789012"
GLUE_DATABASE = "smartcity_dev"
MSK_ARN = "arn:aws:kafka:eu-west-2:123456789012:cluster/smartcity-dev/0f1e2d3c-aaaa-bbbb-cccc-1"
MSK_BROKERS = (
    "b-1.smartcitydev.abc123.c2.kafka.eu-west-2.amazonaws.com:9098,"
    "b-2.smartcitydev.abc123.c2.kafka.eu-west-2.amazonaws.com:9098"
)
JARS = (  # sorted, as the manifest lists them
    "aws-msk-iam-auth-2.3.2.jar",
    "commons-pool2-2.11.1.jar",
    "kafka-clients-3.4.1.jar",
    "spark-sql-kafka-0-10_2.12-3.5.7.jar",
    "spark-token-provider-kafka-0-10_2.12-3.5.7.jar",
)


@pytest.fixture
def aws(fake_aws_credentials, tmp_path):
    """moto EMR cluster (logs to s3n://<logs>/emr/), artifacts uploaded to S3."""
    jars_dir = tmp_path / "jars"
    jars_dir.mkdir()
    for name in JARS:
        (jars_dir / name).write_bytes(b"fake " + name.encode())
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (ARTIFACTS, LOGS):
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
        bundle = build(jars=find_jars(jars_dir))
        upload(s3, bundle, ARTIFACTS)
        emr = boto3.client("emr", region_name=REGION)
        cluster_id = emr.run_job_flow(
            Name="smartcity-dev",
            ReleaseLabel="emr-7.13.0",
            LogUri=f"s3n://{LOGS}/emr/",
            Instances={
                "MasterInstanceType": "m5.xlarge",
                "SlaveInstanceType": "m5.xlarge",
                "InstanceCount": 3,
                "KeepJobFlowAliveWhenNoSteps": True,
            },
            JobFlowRole="smartcity-dev-emr-ec2",
            ServiceRole="smartcity-dev-emr-service",
        )["JobFlowId"]
        yield {
            "s3": s3,
            "emr": emr,
            "cluster_id": cluster_id,
            "version": bundle.version,
            "manifest": bundle.manifest,
        }


def job_step(aws, **overrides) -> JobStep:
    values = {
        "cluster_id": aws["cluster_id"],
        "artifacts_uri": f"s3://{ARTIFACTS}/artifacts/{aws['version']}/",
        "manifest": aws["manifest"],
        "lake_uri": LAKE_URI,
        "bootstrap_servers": MSK_BROKERS,
        "region": REGION,
        "database": GLUE_DATABASE,
    }
    return JobStep(**{**values, **overrides})


def expected_args(version: str, trigger: list[str]) -> list[str]:
    base = f"s3://{ARTIFACTS}/artifacts/{version}/"
    return [
        "spark-submit",
        "--master",
        "yarn",
        "--deploy-mode",
        "cluster",
        "--name",
        "smartcity-streaming-job",
        "--jars",
        ",".join(f"{base}jars/{name}" for name in JARS),
        "--py-files",
        f"{base}emr_jobs.zip",
        "--conf",
        "spark.pyspark.python=/usr/bin/python3.11",
        "--conf",
        "spark.pyspark.driver.python=/usr/bin/python3.11",
        "--conf",
        "spark.executorEnv.AWS_REGION=eu-west-2",
        "--conf",
        "spark.yarn.appMasterEnv.AWS_REGION=eu-west-2",
        "--conf",
        "spark.yarn.appMasterEnv.JOB_PUBLISH_METRICS=true",
        "--conf",
        f"spark.yarn.appMasterEnv.LAKE_URI={LAKE_URI}",
        "--conf",
        "spark.yarn.appMasterEnv.LAKE_CATALOG=glue",
        "--conf",
        f"spark.yarn.appMasterEnv.LAKE_DATABASE={GLUE_DATABASE}",
        # Every contract's topic, the derived ones the job writes included, in stream order.
        "--conf",
        "spark.yarn.appMasterEnv.ALERTS_TOPIC=alerts",
        "--conf",
        "spark.yarn.appMasterEnv.EMERGENCY_TOPIC=emergency_data",
        "--conf",
        "spark.yarn.appMasterEnv.GPS_TOPIC=gps_data",
        "--conf",
        "spark.yarn.appMasterEnv.ROAD_CONDITIONS_TOPIC=road_conditions",
        "--conf",
        "spark.yarn.appMasterEnv.TRAFFIC_TOPIC=traffic_data",
        "--conf",
        "spark.yarn.appMasterEnv.VEHICLE_TOPIC=vehicle_data",
        "--conf",
        "spark.yarn.appMasterEnv.WEATHER_TOPIC=weather_data",
        f"{base}job.py",
        "--bootstrap-servers",
        MSK_BROKERS,
        "--auth-mode",
        "msk-iam",
        *trigger,
    ]


# --- the step ---


def test_the_step_runs_spark_submit_in_cluster_mode_with_exact_arguments(aws):
    step = job_step(aws)
    assert step_definition(step) == {
        "Name": "smartcity-streaming-job",
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {
            "Jar": "command-runner.jar",
            "Args": expected_args(aws["version"], ["--trigger-interval", "10 seconds"]),
        },
    }


def test_an_available_now_step_passes_the_flag_instead_of_an_interval(aws):
    args = spark_submit_args(job_step(aws, trigger="availableNow"))
    assert args == expected_args(aws["version"], ["--available-now"])


def test_the_driver_gets_settings_the_job_accepts(monkeypatch):
    """With the step's driver environment (spark.yarn.appMasterEnv.*) and the flags after the
    entry script, emr_jobs/job.py's own parser yields the intended settings."""
    from emr_jobs.job import parse_args, settings_from

    args = expected_args("v", ["--trigger-interval", "30 seconds"])
    for name in [n for n in os.environ if n.startswith(("KAFKA_", "JOB_", "LAKE_", "AWS_"))]:
        monkeypatch.delenv(name)
    prefix = "spark.yarn.appMasterEnv."
    for flag, conf in zip(args, args[1:], strict=False):
        if flag == "--conf" and conf.startswith(prefix):
            name, _, value = conf[len(prefix) :].partition("=")
            monkeypatch.setenv(name, value)
    job_args = args[args.index(f"s3://{ARTIFACTS}/artifacts/v/job.py") + 1 :]
    kafka, job, streams = settings_from(parse_args(job_args))
    assert (kafka.auth_mode, kafka.bootstrap_servers, kafka.aws_region) == (
        "msk-iam",
        MSK_BROKERS,
        REGION,
    )
    assert kafka.topics["vehicle"] == "vehicle_data"
    assert (job.lake_uri, job.trigger, job.trigger_interval, job.publish_metrics) == (
        LAKE_URI,
        "processingTime",
        "30 seconds",
        True,
    )
    # The Glue catalog Terraform made, through EMR's own Iceberg (no jar of ours on the cluster).
    assert (job.catalog, job.database) == ("glue", GLUE_DATABASE)


def test_the_driver_gets_the_topic_of_every_contract(aws):
    from emr_jobs.core.contracts import CONTRACTS

    env = job_step(aws).driver_environment()
    assert {c.topic_env: env.get(c.topic_env) for c in CONTRACTS.values()} == {
        c.topic_env: c.default_topic for c in CONTRACTS.values()
    }


def test_the_step_runs_the_python_the_bootstrap_action_gives_the_packages(aws):
    """pandas and pyarrow (applyInPandasWithState) are in the cluster's Python 3.11 only."""
    from scripts.artifacts import EMR_PYTHON_VERSION

    args = spark_submit_args(job_step(aws))
    for setting in ("spark.pyspark.python", "spark.pyspark.driver.python"):
        assert f"{setting}=/usr/bin/python{EMR_PYTHON_VERSION}" in args


def test_the_step_ships_no_iceberg_or_sqlite_jar_of_its_own(aws):
    """EMR's Iceberg (iceberg-defaults) serves the catalog; a second runtime would clash."""
    jars = [a for a in spark_submit_args(job_step(aws)) if ".jar" in a]
    assert jars and not any("iceberg" in j or "sqlite" in j for j in ",".join(jars).split(","))


def test_the_step_sets_the_catalog_the_emr_cluster_configures(aws):
    """The job on EMR uses LAKE_CATALOG=glue; the driver never gets a JDBC catalog URI."""
    env = job_step(aws).driver_environment()
    assert env["LAKE_CATALOG"] == "glue" and env["LAKE_DATABASE"] == GLUE_DATABASE
    assert "LAKE_CATALOG_URI" not in env


def test_wrong_settings_are_refused_before_anything_is_submitted(aws):
    with pytest.raises(SettingsError, match="s3://"):
        job_step(aws, lake_uri="s3a://lake")
    with pytest.raises(SettingsError, match="KAFKA_BOOTSTRAP_SERVERS"):
        job_step(aws, bootstrap_servers="b-1.example")
    with pytest.raises(SettingsError, match="JOB_TRIGGER_INTERVAL"):
        job_step(aws, trigger_interval="often")
    with pytest.raises(SettingsError, match="LAKE_DATABASE"):
        job_step(aws, database="smartcity-dev")  # a hyphen: not a Glue database name


def test_the_brokers_are_the_iam_listener_of_the_msk_cluster(fake_aws_credentials):
    kafka = boto3.client("kafka", region_name=REGION)
    with Stubber(kafka) as stub:
        stub.add_response(
            "get_bootstrap_brokers",
            {
                "BootstrapBrokerStringSaslIam": MSK_BROKERS,
                "BootstrapBrokerStringTls": MSK_BROKERS.replace(":9098", ":9094"),
            },
            {"ClusterArn": MSK_ARN},
        )
        assert bootstrap_brokers(kafka, MSK_ARN) == MSK_BROKERS
        stub.add_response(
            "get_bootstrap_brokers",
            {"BootstrapBrokerStringTls": "b-1.x:9094"},
            {"ClusterArn": MSK_ARN},
        )
        with pytest.raises(StepError, match="BootstrapBrokerStringSaslIam"):
            bootstrap_brokers(kafka, MSK_ARN)
        stub.assert_no_pending_responses()


# --- submit ---


def test_submit_adds_exactly_that_step(aws):
    step = job_step(aws)
    step_id = submit(aws["emr"], step)
    described = aws["emr"].describe_step(ClusterId=aws["cluster_id"], StepId=step_id)["Step"]
    assert described["Name"] == JOB_NAME
    assert described["ActionOnFailure"] == "CONTINUE"
    assert described["Config"]["Jar"] == "command-runner.jar"
    assert described["Config"]["Args"] == expected_args(
        aws["version"], ["--trigger-interval", "10 seconds"]
    )


def test_a_second_submit_is_refused_while_the_first_runs(aws):
    first = submit(aws["emr"], job_step(aws))
    with pytest.raises(StepConflict) as refused:
        submit(aws["emr"], job_step(aws))
    message = str(refused.value)
    assert f"already RUNNING on {aws['cluster_id']} (step {first})" in message
    assert "python -m scripts.emr_steps stop" in message
    steps = aws["emr"].list_steps(ClusterId=aws["cluster_id"])["Steps"]
    assert [s["Id"] for s in steps if s["Name"] == JOB_NAME] == [first]


def test_a_pending_step_also_blocks_a_second_submit(aws):
    aws["emr"].add_job_flow_steps(
        JobFlowId=aws["cluster_id"],
        Steps=[
            {
                "Name": "maintenance",
                "ActionOnFailure": "CONTINUE",
                "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["true"]},
            }
        ],
    )
    submit(aws["emr"], job_step(aws))  # queued behind the maintenance step: PENDING
    with pytest.raises(StepConflict, match="already PENDING"):
        submit(aws["emr"], job_step(aws))


def test_another_job_name_can_run_beside_it(aws):
    submit(aws["emr"], job_step(aws))
    other = submit(aws["emr"], job_step(aws, name="smartcity-backfill"))
    assert other


# --- status ---


def test_status_of_a_job_never_submitted(aws):
    result = status(aws["emr"], aws["cluster_id"])
    assert result.state == "NEVER_SUBMITTED"
    assert result.describe() == f"{JOB_NAME} on {aws['cluster_id']}: never submitted"


def test_status_of_a_running_job(aws):
    step_id = submit(aws["emr"], job_step(aws))
    result = status(aws["emr"], aws["cluster_id"])
    assert result.state == "RUNNING"
    lines = result.describe().splitlines()
    assert lines[0].startswith(f"{JOB_NAME} on {aws['cluster_id']}: RUNNING (step {step_id}")
    assert lines[1] == "last failure: none"


def test_status_reports_the_reason_of_the_last_failure(fake_aws_credentials):
    emr = boto3.client("emr", region_name=REGION)
    ended = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)

    def summary(step_id, state, **status_extra):
        return {
            "Id": step_id,
            "Name": JOB_NAME,
            "ActionOnFailure": "CONTINUE",
            "Config": {"Jar": "command-runner.jar", "Args": []},
            "Status": {"State": state, "Timeline": {"CreationDateTime": ended}, **status_extra},
        }

    failed = summary(
        "s-2FAILED",
        "FAILED",
        FailureDetails={
            "Reason": "Unknown Error.",
            "Message": "SaslAuthenticationException: Access denied",
            "LogFile": f"s3://{LOGS}/emr/j-1/steps/s-2FAILED/stderr.gz",
        },
        StateChangeReason={"Message": "Step failed"},
        Timeline={"CreationDateTime": ended, "EndDateTime": ended},
    )
    with Stubber(emr) as stub:
        stub.add_response(
            "list_steps",
            {"Steps": [summary("s-3NEW", "PENDING"), failed, summary("s-1OLD", "FAILED")]},
            {"ClusterId": "j-1"},
        )
        result = status(emr, "j-1")
    assert result.state == "PENDING"
    assert result.describe().splitlines()[1] == (
        "last failure: step s-2FAILED FAILED at 2026-01-05 09:30:00 UTC: Unknown Error. — "
        "SaslAuthenticationException: Access denied — Step failed "
        f"(log: s3://{LOGS}/emr/j-1/steps/s-2FAILED/stderr.gz)"
    )


# --- stop ---


class CancelThroughStub:
    """The moto client, except ``cancel_steps`` (which moto lacks) goes to a stubbed client."""

    def __init__(self, real, stubbed) -> None:
        self.real, self.stubbed = real, stubbed

    def __getattr__(self, name):
        return getattr(self.stubbed if name == "cancel_steps" else self.real, name)


def test_stop_cancels_the_step_and_kills_its_yarn_application(aws):
    step_id = submit(aws["emr"], job_step(aws))
    cancel = boto3.client("emr", region_name=REGION)
    with Stubber(cancel) as stub:
        stub.add_response(
            "cancel_steps",
            {"CancelStepsInfoList": [{"StepId": step_id, "Status": "SUBMITTED", "Reason": ""}]},
            {
                "ClusterId": aws["cluster_id"],
                "StepIds": [step_id],
                "StepCancellationOption": "SEND_INTERRUPT",
            },
        )
        done = stop(CancelThroughStub(aws["emr"], cancel), aws["cluster_id"])
        stub.assert_no_pending_responses()
    assert done[1] == f"cancel step {step_id}: SUBMITTED"
    assert "resumes from its checkpoint" in done[-1]
    (kill,) = [
        s
        for s in aws["emr"].list_steps(ClusterId=aws["cluster_id"])["Steps"]
        if s["Name"] == f"{JOB_NAME}-stop"
    ]
    assert done[0].startswith(f"added step {kill['Id']} ")
    args = kill["Config"]["Args"]
    assert args[:2] == ["bash", "-c"]
    assert f'$2 == "{JOB_NAME}"' in args[2] and "yarn application -kill" in args[2]


def test_stop_force_uses_terminate_process_and_a_pending_step_needs_no_kill(aws):
    aws["emr"].add_job_flow_steps(
        JobFlowId=aws["cluster_id"],
        Steps=[
            {
                "Name": "maintenance",
                "ActionOnFailure": "CONTINUE",
                "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["true"]},
            }
        ],
    )
    step_id = submit(aws["emr"], job_step(aws))  # PENDING
    cancel = boto3.client("emr", region_name=REGION)
    with Stubber(cancel) as stub:
        stub.add_response(
            "cancel_steps",
            {"CancelStepsInfoList": [{"StepId": step_id, "Status": "SUBMITTED"}]},
            {
                "ClusterId": aws["cluster_id"],
                "StepIds": [step_id],
                "StepCancellationOption": "TERMINATE_PROCESS",
            },
        )
        done = stop(CancelThroughStub(aws["emr"], cancel), aws["cluster_id"], force=True)
    assert done[0] == f"cancel step {step_id}: SUBMITTED"
    names = [s["Name"] for s in aws["emr"].list_steps(ClusterId=aws["cluster_id"])["Steps"]]
    assert f"{JOB_NAME}-stop" not in names


def test_stop_with_nothing_running_does_nothing(aws):
    cancel = boto3.client("emr", region_name=REGION)
    with Stubber(cancel):  # any cancel_steps call would fail: no response is queued
        done = stop(CancelThroughStub(aws["emr"], cancel), aws["cluster_id"])
    assert done == [f"{JOB_NAME} is not pending or running on {aws['cluster_id']}: nothing to stop"]


# --- logs ---

APP = "application_1767600000000_0001"


def test_logs_point_at_the_step_and_the_driver_container(aws):
    step_id = submit(aws["emr"], job_step(aws))
    base = f"emr/{aws['cluster_id']}/"
    s3 = aws["s3"]
    s3.put_object(
        Bucket=LOGS,
        Key=f"{base}steps/{step_id}/stderr.gz",
        Body=gzip.compress(
            f"25/01/05 09:00:01 INFO Client: Submitted application {APP}\n".encode()
        ),
    )
    for container in (
        "container_1767600000000_0001_01_000001",
        "container_1767600000000_0001_01_000002",
    ):
        s3.put_object(Bucket=LOGS, Key=f"{base}containers/{APP}/{container}/stderr.gz", Body=b"x")
    where = log_locations(aws["emr"], aws["cluster_id"], step_id, s3)
    assert where["step"] == f"s3://{LOGS}/{base}steps/{step_id}/"
    assert where["application_id"] == APP
    assert where["driver"] == (
        f"s3://{LOGS}/{base}containers/{APP}/container_1767600000000_0001_01_000001/"
    )
    text = emr_steps.format_logs(where)
    assert where["driver"] in text and f"yarn logs -applicationId {APP}" in text


def test_logs_before_emr_has_copied_them_still_say_where_to_look(aws):
    step_id = submit(aws["emr"], job_step(aws))
    where = log_locations(aws["emr"], aws["cluster_id"], step_id, aws["s3"])
    assert where == {
        "step": f"s3://{LOGS}/emr/{aws['cluster_id']}/steps/{step_id}/",
        "step_stderr": f"s3://{LOGS}/emr/{aws['cluster_id']}/steps/{step_id}/stderr.gz",
        "containers": f"s3://{LOGS}/emr/{aws['cluster_id']}/containers/",
    }
    assert "the application id is in the step's stderr.gz" in emr_steps.format_logs(where)


# --- the command line ---


@pytest.fixture
def terraform_outputs(aws, tmp_path, monkeypatch):
    outputs = {
        "emr_cluster_id": aws["cluster_id"],
        "artifacts_bucket_name": ARTIFACTS,
        "lake_uri": LAKE_URI,
        "glue_database_name": GLUE_DATABASE,
        "msk_cluster_arn": MSK_ARN,
        "aws_region": REGION,
    }
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    cases = "".join(f"  {k}) printf '%s' '{v}';;\n" for k, v in outputs.items())
    script: Path = bin_dir / "terraform"
    script.write_text(
        '#!/bin/sh\nfor last; do :; done\ncase "$last" in\n'
        + cases
        + '  *) echo "Error: Output not found" >&2; exit 1;;\nesac\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return outputs


def test_the_commands_take_everything_from_the_terraform_outputs(aws, terraform_outputs, capsys):
    assert emr_steps.main(["submit", "--bootstrap-servers", MSK_BROKERS, "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["HadoopJarStep"]["Args"] == expected_args(
        aws["version"], ["--trigger-interval", "10 seconds"]
    )
    assert (
        emr_steps.main(
            [
                "submit",
                "--bootstrap-servers",
                MSK_BROKERS,
                "--dry-run",
                "--env",
                "JOB_STARTING_OFFSETS=latest",
            ]
        )
        == 0
    )
    args = json.loads(capsys.readouterr().out)["HadoopJarStep"]["Args"]
    conf = "spark.yarn.appMasterEnv.JOB_STARTING_OFFSETS=latest"
    assert args[args.index(conf) - 1] == "--conf"
    assert args.index(conf) < args.index(f"s3://{ARTIFACTS}/artifacts/{aws['version']}/job.py")
    assert (
        emr_steps.main(
            ["submit", "--bootstrap-servers", MSK_BROKERS, "--dry-run", "--env", "lower=x"]
        )
        == 2
    )
    assert "upper-case" in capsys.readouterr().err
    assert aws["emr"].list_steps(ClusterId=aws["cluster_id"])["Steps"] == []

    assert emr_steps.main(["submit", "--bootstrap-servers", MSK_BROKERS]) == 0
    assert f"on {aws['cluster_id']} (artifacts {aws['version']})" in capsys.readouterr().out
    assert emr_steps.main(["submit", "--bootstrap-servers", MSK_BROKERS]) == 1
    assert "is already RUNNING" in capsys.readouterr().err

    assert emr_steps.main(["status"]) == 0
    assert ": RUNNING (step s-" in capsys.readouterr().out
    assert emr_steps.main(["logs"]) == 0
    assert f"s3://{LOGS}/emr/{aws['cluster_id']}/steps/s-" in capsys.readouterr().out


def test_submit_explains_missing_artifacts(aws, terraform_outputs, capsys):
    aws["s3"].delete_object(Bucket=ARTIFACTS, Key="artifacts/latest.json")
    assert emr_steps.main(["submit", "--bootstrap-servers", MSK_BROKERS]) == 2
    assert "python -m scripts.artifacts upload" in capsys.readouterr().err


def test_submit_looks_the_brokers_up_from_the_msk_cluster_of_the_outputs(aws, terraform_outputs):
    kafka = boto3.client("kafka", region_name=REGION)
    with Stubber(kafka) as stub:
        stub.add_response(
            "get_bootstrap_brokers",
            {"BootstrapBrokerStringSaslIam": MSK_BROKERS},
            {"ClusterArn": MSK_ARN},
        )
        args = emr_steps.parse_args(["submit", "--region", REGION])
        step = emr_steps.build_step(args, aws["s3"], kafka)
        stub.assert_no_pending_responses()
    assert step_definition(step) == step_definition(job_step(aws))
