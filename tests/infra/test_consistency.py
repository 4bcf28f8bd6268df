"""Terraform and the code agree: topics, IAM resources, lake prefixes, Spark version, Glue columns,
the lag metric and the settings passed as environment variables.

The Terraform side is evaluated from the .tf files (see conftest.py), with a realistic MSK cluster
ARN and bucket names standing in for what AWS assigns at apply time.
"""

from __future__ import annotations

import json
import re
import tomllib

import pytest

from emr_jobs.contracts import CONTRACTS, GLUE_TYPES, LAKE, STREAMS
from emr_jobs.kafka_options import KafkaSettings, default_topics, spark_kafka_options
from emr_jobs.settings import JobSettings

#: Spark version of each EMR release this project has been pinned to (EMR release notes).
EMR_SPARK_VERSIONS = {
    "emr-7.13.0": "3.5.6",
}

LAKE_AREAS = (LAKE.data_prefix, LAKE.quarantine_prefix, LAKE.checkpoints_prefix)


def _env(entries: list[dict[str, object]]) -> dict[str, str]:
    return {e["name"]: str(e["value"]) for e in entries}


def _kafka_grants(statements: list[dict]) -> dict[str, set[str]]:
    """kafka-cluster action -> the resources it is granted on."""
    grants: dict[str, set[str]] = {}
    for st in statements:
        for action in st["actions"]:
            if action.startswith("kafka-cluster:"):
                grants.setdefault(action.removeprefix("kafka-cluster:"), set()).update(
                    st["resources"]
                )
    return grants


@pytest.fixture(scope="module")
def arns(fake):
    cluster = fake.msk_cluster_arn
    topic_prefix = cluster.replace(":cluster/", ":topic/")
    return {
        "cluster": cluster,
        "topics": {f"{topic_prefix}/{CONTRACTS[s].default_topic}" for s in STREAMS},
        "group": cluster.replace(":cluster/", ":group/") + f"/{LAKE.consumer_group_prefix}*",
    }


# ------------------------------------------------------------------------------------------ topics


def test_terraform_streams_and_topics_are_the_code_s(root):
    assert sorted(root.local("streams")) == sorted(STREAMS)
    assert (
        root.local("topics")
        == default_topics({})
        == {s: CONTRACTS[s].default_topic for s in STREAMS}
    )
    assert root.output("kafka_topic_names") == default_topics({})


def test_no_topic_name_is_typed_in_terraform(tf):
    names = {CONTRACTS[s].default_topic for s in STREAMS}
    hits = [
        f"{p.relative_to(tf.INFRA)}: {n}"
        for p in tf.files
        for n in names
        if n in p.read_text(encoding="utf-8")
    ]
    assert not hits, "topic names must come from the contracts, not be retyped:\n" + "\n".join(hits)


def test_producer_and_topics_task_read_the_same_topics_as_the_job(modules):
    ecs = modules["ecs"]
    for container in ("producer_container", "topics_admin_container"):
        env = _env(ecs.local(container)["environment"])
        env["KAFKA_BOOTSTRAP_SERVERS"] = "b-1.example.kafka.eu-west-2.amazonaws.com:9098"
        settings = KafkaSettings.from_env(env)
        assert settings.auth_mode == "msk-iam"
        assert dict(settings.topics) == default_topics({}), container


# ----------------------------------------------------------------------------------- IAM and Kafka


def test_the_job_reads_exactly_the_topics_with_its_consumer_group_prefix(modules, arns):
    grants = _kafka_grants(modules["iam"].policy_statements("emr_ec2"))
    assert grants == {
        "Connect": {arns["cluster"]},
        "DescribeTopic": arns["topics"],
        "ReadData": arns["topics"],
        "DescribeGroup": {arns["group"]},
        "AlterGroup": {arns["group"]},
    }
    # Spark's Kafka source names its groups <groupIdPrefix>-<uuid>-<n>; the ARN covers them.
    assert spark_kafka_options(KafkaSettings())["groupIdPrefix"] == LAKE.consumer_group_prefix


def test_the_producer_writes_exactly_the_topics(modules, arns):
    grants = _kafka_grants(modules["iam"].policy_statements("ecs_producer"))
    assert grants == {
        "Connect": {arns["cluster"]},
        "WriteDataIdempotently": {arns["cluster"]},
        "DescribeTopic": arns["topics"],
        "WriteData": arns["topics"],
    }


def test_the_topics_task_manages_exactly_the_topics(modules, arns):
    grants = _kafka_grants(modules["iam"].policy_statements("ecs_topics_admin"))
    assert grants == {
        "Connect": {arns["cluster"]},
        "CreateTopic": arns["topics"],
        "DescribeTopic": arns["topics"],
        "AlterTopic": arns["topics"],
    }


def test_topic_and_group_arns_carry_the_cluster_name_and_uuid(arns, fake):
    name_and_uuid = fake.msk_cluster_arn.split(":cluster/", 1)[1]
    assert name_and_uuid.count("/") == 1
    for arn in arns["topics"] | {arns["group"]}:
        assert f"/{name_and_uuid}/" in arn


def test_no_other_role_touches_kafka(modules):
    for rtype, name in modules["iam"].data:
        if rtype == "aws_iam_policy_document" and name not in (
            "emr_ec2",
            "ecs_producer",
            "ecs_topics_admin",
        ):
            assert not _kafka_grants(modules["iam"].policy_statements(name)), name


# --------------------------------------------------------------------------------------- S3 layout


def _statement(statements: list[dict], sid: str) -> dict:
    (found,) = [s for s in statements if s["sid"] == sid]
    return found


def test_the_job_reads_and_writes_exactly_its_lake_prefixes(modules, fake):
    statements = modules["iam"].policy_statements("emr_ec2")
    lake = fake.bucket_arns["lake"]
    settings = JobSettings(lake_uri=f"s3://{fake.bucket_names['lake']}")
    # The job's own path builder, turned into ARNs: <lake>/<area>/<stream>/...
    expected = {
        settings.path(area, stream).replace("s3://", "arn:aws:s3:::") + "/*"
        for area in LAKE_AREAS
        for stream in STREAMS
    }
    read_write = _statement(statements, "LakeReadWrite")
    assert set(read_write["resources"]) == expected
    assert {"s3:GetObject", "s3:PutObject"} <= read_write["actions"]
    assert "s3:DeleteObject" not in read_write["actions"]
    lake_grants = [r for st in statements for r in st["resources"] if str(r).startswith(lake)]
    assert f"{lake}/*" not in lake_grants, "no statement may cover the whole lake bucket"


def test_deletes_are_granted_only_on_spark_metadata_and_checkpoints(modules, fake):
    statements = modules["iam"].policy_statements("emr_ec2")
    lake = fake.bucket_arns["lake"]
    deletes = {
        r for st in statements if "s3:DeleteObject" in st["actions"] for r in st["resources"]
    }
    assert deletes == (
        {f"{lake}/{LAKE.data_prefix}/{s}/_spark_metadata/*" for s in STREAMS}
        | {f"{lake}/{LAKE.quarantine_prefix}/{s}/_spark_metadata/*" for s in STREAMS}
        | {f"{lake}/{LAKE.checkpoints_prefix}/{s}/*" for s in STREAMS}
    )


def test_the_job_lists_only_the_lake_areas(modules):
    listing = _statement(modules["iam"].policy_statements("emr_ec2"), "LakeList")
    (condition,) = listing["conditions"]
    assert condition["variable"] == "s3:prefix"
    assert {v.split("/")[0] for v in condition["values"]} == set(LAKE_AREAS)


def test_emr_logs_go_where_the_instances_may_write(root, modules, fake):
    log_uri = modules["emr"].var("log_uri")
    writable = _statement(modules["iam"].policy_statements("emr_ec2"), "ClusterLogs")["resources"]
    assert log_uri.startswith(f"s3://{fake.bucket_names['logs']}/")
    assert writable == [log_uri.replace("s3://", "arn:aws:s3:::") + "*"]


def test_quarantine_lifecycle_rule_targets_the_quarantine_prefix(modules):
    rules = modules["s3"].local("expiration_rules")["lake"]
    assert [r["prefix"] for r in rules] == [f"{LAKE.quarantine_prefix}/"]


# ----------------------------------------------------------------------------------- Spark version


def test_emr_release_runs_the_pinned_pyspark(tf, modules):
    release = modules["emr"].local("release_label")
    assert release in EMR_SPARK_VERSIONS, f"add {release}'s Spark version to EMR_SPARK_VERSIONS"
    project = tomllib.loads((tf.REPO / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [
        m.group(1)
        for group in project["project"]["optional-dependencies"].values()
        for dep in group
        if (m := re.fullmatch(r"pyspark\s*==\s*([\w.]+)", dep))
    ]
    assert pins == [EMR_SPARK_VERSIONS[release]], (
        f"pyproject pins pyspark {pins}, {release} runs {EMR_SPARK_VERSIONS[release]}"
    )
    assert modules["emr"].one("aws_emr_cluster", "this")["release_label"] == release


# -------------------------------------------------------------------------------------------- Glue


def test_terraform_type_map_equals_glue_types(modules):
    assert modules["glue"].local("glue_types") == GLUE_TYPES


def _columns(instance) -> list[tuple[str, str, str]]:
    (storage,) = instance.blocks("storage_descriptor")
    return [(c["name"], c["type"], c["comment"]) for c in storage.blocks("columns")]


def test_glue_data_tables_have_the_contract_columns_then_the_metadata(modules, fake):
    tables = modules["glue"].instances("aws_glue_catalog_table", "data")
    assert set(tables) == set(STREAMS)
    for stream, table in tables.items():
        contract = CONTRACTS[stream]
        expected = [(f.name, GLUE_TYPES[f.type], f.description) for f in contract.fields]
        expected += [
            (c["name"], GLUE_TYPES[c["type"]], c["description"]) for c in LAKE.metadata_columns
        ]
        assert _columns(table) == expected, stream
        partitions = [(p["name"], p["type"]) for p in table.blocks("partition_keys")]
        assert partitions == [(c["name"], GLUE_TYPES[c["type"]]) for c in LAKE.partition_columns]
        (storage,) = table.blocks("storage_descriptor")
        assert (
            storage["location"] == f"s3://{fake.bucket_names['lake']}/{LAKE.data_prefix}/{stream}/"
        )


def test_glue_quarantine_tables_have_the_quarantine_columns(modules, fake):
    tables = modules["glue"].instances("aws_glue_catalog_table", "quarantine")
    assert set(tables) == set(STREAMS)
    for stream, table in tables.items():
        assert table["name"] == f"{stream}_quarantine"
        expected = [
            (c["name"], GLUE_TYPES[c["type"]], c["description"]) for c in LAKE.quarantine_columns
        ]
        assert _columns(table) == expected
        partitions = [(p["name"], p["type"]) for p in table.blocks("partition_keys")]
        assert partitions == [
            (c["name"], GLUE_TYPES[c["type"]]) for c in LAKE.quarantine_partition_columns
        ]
        (storage,) = table.blocks("storage_descriptor")
        assert (
            storage["location"]
            == f"s3://{fake.bucket_names['lake']}/{LAKE.quarantine_prefix}/{stream}/"
        )


def test_partition_projection_matches_the_lake_layout(modules, fake):
    for stream, table in modules["glue"].instances("aws_glue_catalog_table", "data").items():
        params = table["parameters"]
        assert params["projection.enabled"] == "true"
        keys = [c["name"] for c in LAKE.partition_columns]
        template = f"s3://{fake.bucket_names['lake']}/{LAKE.data_prefix}/{stream}/" + "".join(
            f"{k}=${{{k}}}/" for k in keys
        )
        assert params["storage.location.template"] == template
        assert params["projection.date.type"] == "date"
        assert params["projection.date.format"] == "yyyy-MM-dd"  # the job writes date=yyyy-MM-dd
        assert params["projection.hour.type"] == "integer"
        assert params["projection.hour.range"] == "0,23"
        assert {f"projection.{k}.type" for k in keys} <= set(params)


# -------------------------------------------------------------------------------------- lag metric


def test_lag_alarms_watch_the_metric_the_job_publishes(modules):
    alarms = modules["observability"].instances("aws_cloudwatch_metric_alarm", "job_lag")
    assert set(alarms) == set(STREAMS)
    for stream, alarm in alarms.items():
        assert alarm["namespace"] == LAKE.metrics_namespace
        assert alarm["metric_name"] == LAKE.lag_metric
        assert alarm["dimensions"] == {LAKE.metrics_dimension: stream}
        assert alarm["statistic"] == "Maximum"


def test_the_job_publishes_the_metric_the_alarms_watch(modules, monkeypatch):
    """Run the job's own publisher against moto and compare with the alarm definitions."""
    pytest.importorskip("pyspark")
    moto = pytest.importorskip("moto")
    import boto3

    from emr_jobs.job import publish_lag_metric

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-2",
    }.items():
        monkeypatch.setenv(key, value)
    alarm = modules["observability"].instances("aws_cloudwatch_metric_alarm", "job_lag")["vehicle"]
    with moto.mock_aws():
        progress = {
            "name": f"vehicle:{LAKE.data_prefix}",
            "sources": [{"metrics": {"maxOffsetsBehindLatest": "42"}}],
        }
        publish_lag_metric(progress, "eu-west-2")
        (metric,) = boto3.client("cloudwatch", region_name="eu-west-2").list_metrics()["Metrics"]
    assert metric["Namespace"] == alarm["namespace"]
    assert metric["MetricName"] == alarm["metric_name"]
    assert {d["Name"]: d["Value"] for d in metric["Dimensions"]} == alarm["dimensions"]


def test_the_job_may_publish_its_metric_namespace(modules):
    (statement,) = [
        s
        for s in modules["iam"].policy_statements("emr_ec2")
        if "cloudwatch:PutMetricData" in s["actions"]
    ]
    (condition,) = statement["conditions"]
    assert (condition["variable"], condition["values"]) == (
        "cloudwatch:namespace",
        [LAKE.metrics_namespace],
    )


# ---------------------------------------------------------------------------------------- settings


def test_emr_job_environment_is_accepted_by_the_job_settings(root, fake):
    env = dict(root.output("emr_job_environment"))
    assert set(env) >= {
        "LAKE_URI",
        "KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_AUTH_MODE",
        "AWS_REGION",
        "JOB_PUBLISH_METRICS",
    }
    env["KAFKA_BOOTSTRAP_SERVERS"] = "b-1.example.kafka.eu-west-2.amazonaws.com:9098"
    job = JobSettings.from_env(env)
    assert job.lake_uri == f"s3://{fake.bucket_names['lake']}"
    assert job.publish_metrics is True
    kafka = KafkaSettings.from_env(env)
    assert (kafka.auth_mode, kafka.aws_region) == ("msk-iam", root.var("aws_region"))


def test_producer_environment_is_accepted_by_the_producer_settings(modules):
    from producer.settings import ProducerSettings

    env = _env(modules["ecs"].local("producer_container")["environment"])
    assert ProducerSettings.from_env(env).pace == "realtime"
    assert not any(re.search(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY", k) for k in env), (
        "no secrets in task environment"
    )


def test_topics_task_applies_the_terraform_topic_settings(root, modules):
    pytest.importorskip("confluent_kafka")
    from scripts.topics import TopicSpec

    env = _env(modules["ecs"].local("topics_admin_container")["environment"])
    spec = TopicSpec.from_env(env)
    topics = root.var("topics")
    assert (spec.partitions, spec.replication_factor, spec.retention_hours) == (
        topics["partitions"],
        topics["replication_factor"],
        topics["retention_hours"],
    )
    container = modules["ecs"].local("topics_admin_container")
    assert container["entryPoint"] == ["python", "-m", "scripts.topics"] and container[
        "command"
    ] == ["create"]


# -------------------------------------------------------------------------------------- log groups


def _log_groups(modules) -> dict[str, object]:
    """The ``log_group`` module each concern calls, keyed by the concern."""
    return {
        name: module.child(call_name)
        for name, module in modules.items()
        for call_name, call in module.module_calls.items()
        if call["source"] == "../log_group"
    }


def test_each_log_group_key_lets_cloudwatch_logs_encrypt_that_log_group_only(root, modules, fake):
    log_groups = _log_groups(modules)
    assert set(log_groups) == {"ecs", "msk", "network"}
    for name, log_group in log_groups.items():
        group = log_group.one("aws_cloudwatch_log_group", "this")
        assert group["retention_in_days"] == root.var("log_retention_days"), name
        key = log_group.one("aws_kms_key", "this")
        assert key["enable_key_rotation"] is True, name
        statements = json.loads(key["policy"])["Statement"]
        assert [s["Principal"] for s in statements] == [
            {"AWS": f"arn:aws:iam::{fake.account}:root"},
            {"Service": f"logs.{fake.region}.amazonaws.com"},
        ], name
        assert statements[1]["Condition"] == {
            "ArnEquals": {
                "kms:EncryptionContext:aws:logs:arn": (
                    f"arn:aws:logs:{fake.region}:{fake.account}:log-group:{group['name']}"
                )
            }
        }, name


def test_ecs_tasks_log_to_their_log_group_and_the_execution_role_may_write_there(modules, fake):
    ecs_group = _log_groups(modules)["ecs"].one("aws_cloudwatch_log_group", "this")["name"]
    assert modules["ecs"].local("log_options")["awslogs-group"] == ecs_group
    write_logs = _statement(modules["iam"].policy_statements("ecs_task_execution"), "WriteLogs")
    assert write_logs["resources"] == [
        f"arn:aws:logs:{fake.region}:{fake.account}:log-group:{ecs_group}:log-stream:*"
    ]
