"""The alert path on AWS, held to the forwarder's code: the SNS topic and the DynamoDB ledger
(modules/alerts), the forwarder's ECS service (modules/ecs) and its task role (modules/iam).

``python -m scripts.alerts forward`` consumes the alerts topic with its own consumer group and
publishes each alert once to SNS, with a DynamoDB table as its once-only ledger. The Terraform
side is what tfparse evaluates from the .tf files (conftest.py), with realistic ARNs for what AWS
assigns.
"""

from __future__ import annotations

import fnmatch
import json
import re

import pytest

from emr_jobs.core.contracts import ALL_STREAMS, CONTRACTS, DERIVED_STREAMS, LAKE
from emr_jobs.core.kafka import KafkaSettings
from scripts.alerts import LEDGER_KEY, LEDGER_TTL_ATTRIBUTE

#: The stream the forwarder reads: the contract whose topic variable is ALERTS_TOPIC.
(ALERT_STREAM,) = [s for s in ALL_STREAMS if CONTRACTS[s].topic_env == "ALERTS_TOPIC"]
#: The forwarder's command line in the producer image.
FORWARD = ["python", "-m", "scripts.alerts", "forward"]
#: What the task must set: the alert path's names and the Kafka connection (as for the producer).
FORWARDER_NEEDS = {
    "ALERTS_TOPIC",
    "ALERT_FORWARDER_GROUP",
    "ALERT_SNS_TOPIC_ARN",
    "ALERT_DEDUPE_TABLE",
    "KAFKA_AUTH_MODE",
    "KAFKA_BOOTSTRAP_SERVERS",
    "AWS_REGION",
}
#: ... and what it may set besides: how long the ledger remembers an id.
FORWARDER_READS = FORWARDER_NEEDS | {"ALERT_DEDUPE_TTL_DAYS"}
BOOTSTRAP = "b-1.example.kafka.eu-west-2.amazonaws.com:9098"
#: Topic settings and a consumer group other than the defaults, for the checks that they carry.
SETTINGS = {
    "topics": {"partitions": 12, "replication_factor": 2, "retention_hours": 240},
    "alert_forwarder": {"consumer_group": "smartcity-alert-forwarder-blue"},
}


def _env(entries: list[dict[str, object]]) -> dict[str, str]:
    return {e["name"]: str(e["value"]) for e in entries}


@pytest.fixture(scope="module")
def alerts(modules):
    return modules["alerts"]


@pytest.fixture(scope="module")
def container(modules):
    return modules["ecs"].local("alert_forwarder_container")


@pytest.fixture(scope="module")
def forwarder_env(container) -> dict[str, str]:
    return _env(container["environment"])


@pytest.fixture(scope="module")
def kafka_arns(fake) -> dict[str, str]:
    cluster = fake.msk_cluster_arn
    return {
        "cluster": cluster,
        "topic": cluster.replace(":cluster/", ":topic/")
        + f"/{CONTRACTS[ALERT_STREAM].default_topic}",
        "group": cluster.replace(":cluster/", ":group/") + "/smartcity-alert-forwarder",
    }


EGRESS = ("aws_vpc_security_group_egress_rule", "this")


def _grants(statements: list[dict]) -> dict[str, set[str]]:
    """action -> the resources it is granted on."""
    grants: dict[str, set[str]] = {}
    for st in statements:
        assert st["effect"] == "Allow", st["sid"]
        for action in st["actions"]:
            grants.setdefault(action, set()).update(str(r) for r in st["resources"])
    return grants


# ------------------------------------------------------------------------------------ the stream


def test_the_forwarder_reads_a_stream_the_job_writes():
    assert ALERT_STREAM in DERIVED_STREAMS
    assert CONTRACTS[ALERT_STREAM].produced_by == "job"


# ------------------------------------------------------------------------------------------- IAM


def test_the_forwarder_role_grants_each_action_on_exactly_its_resources(modules, kafka_arns, fake):
    statements = modules["iam"].policy_statements("ecs_alert_forwarder")
    table, topic, key = (
        fake.alerts[k] for k in ("ledger_table_arn", "sns_topic_arn", "kms_key_arn")
    )
    assert _grants(statements) == {
        "kafka-cluster:Connect": {kafka_arns["cluster"]},
        "kafka-cluster:DescribeTopic": {kafka_arns["topic"]},
        "kafka-cluster:ReadData": {kafka_arns["topic"]},
        "kafka-cluster:DescribeGroup": {kafka_arns["group"]},
        "kafka-cluster:AlterGroup": {kafka_arns["group"]},
        "sns:Publish": {topic},
        "dynamodb:GetItem": {table},
        "dynamodb:UpdateItem": {table},
        "kms:GenerateDataKey": {key},
        "kms:Decrypt": {key},
    }


def test_the_forwarder_role_names_every_resource_without_a_wildcard(modules):
    for st in modules["iam"].policy_statements("ecs_alert_forwarder"):
        for resource in st["resources"]:
            assert "*" not in resource and resource.startswith("arn:aws:"), (st["sid"], resource)
        assert not any("*" in a for a in st["actions"]), st["sid"]


def test_the_forwarder_uses_the_key_only_through_sns_and_dynamodb(modules, fake):
    statements = modules["iam"].policy_statements("ecs_alert_forwarder")
    (kms,) = [st for st in statements if any(a.startswith("kms:") for a in st["actions"])]
    assert kms["conditions"] == [
        {
            "test": "StringEquals",
            "variable": "kms:ViaService",
            "values": [f"sns.{fake.region}.amazonaws.com", f"dynamodb.{fake.region}.amazonaws.com"],
        }
    ]
    assert all(not st["conditions"] for st in statements if st is not kms)


def test_the_forwarder_s_role_is_its_own_and_trusts_ecs_tasks_only(modules, fake):
    iam = modules["iam"]
    role = iam.one("aws_iam_role", "ecs_alert_forwarder")
    assert role["name"] == "smartcity-dev-ecs-alert-forwarder"
    # A data source's json is known after apply: tfparse stands the document's id in for it.
    assert (
        role["assume_role_policy"]
        == iam.one("aws_iam_policy_document", "ecs_tasks_assume", "data")["id"]
    )
    (trust,) = iam.policy_statements("ecs_tasks_assume")
    assert (trust["actions"], trust["principals"]) == (
        {"sts:AssumeRole"},
        [{"type": "Service", "identifiers": ["ecs-tasks.amazonaws.com"]}],
    )
    policy = iam.one("aws_iam_role_policy", "ecs_alert_forwarder")
    assert (policy["role"], policy["policy"]) == (
        role["id"],
        iam.one("aws_iam_policy_document", "ecs_alert_forwarder", "data")["id"],
    )
    assert iam.output("ecs_alert_forwarder_task_role_arn") == fake.alerts["forwarder_role_arn"]
    task = modules["ecs"].instances("aws_ecs_task_definition", "this")
    assert task["alert-forwarder"]["task_role_arn"] == fake.alerts["forwarder_role_arn"]
    assert task["producer"]["task_role_arn"] != task["alert-forwarder"]["task_role_arn"]


def test_every_aws_call_the_forwarder_makes_is_granted(modules, tf):
    """The DynamoDB and SNS operations scripts/alerts calls, read from its source, are all in
    the role (it may grant more: the issue's ledger actions)."""
    source = "\n".join(
        p.read_text(encoding="utf-8") for p in sorted((tf.REPO / "scripts" / "alerts").glob("*.py"))
    )
    dynamodb = {
        "dynamodb:" + "".join(w.title() for w in op.split("_"))
        for op in re.findall(
            r"[\"'.](get_item|put_item|update_item|delete_item|query|scan|batch_get_item|"
            r"batch_write_item|transact_get_items|transact_write_items)[\"'(]",
            source,
        )
    }
    sns = {"sns:Publish"} if re.search(r"\bclient\.publish\(", source) else set()
    assert dynamodb and sns, "scripts/alerts no longer calls DynamoDB and SNS as expected"
    granted = set(_grants(modules["iam"].policy_statements("ecs_alert_forwarder")))
    assert dynamodb | sns <= granted, sorted((dynamodb | sns) - granted)


def test_the_forwarder_s_group_is_its_own(root, modules, kafka_arns, forwarder_env, tf):
    """The job's groups are <prefix>-<uuid>-<n>: its wildcard must not reach the forwarder's
    group, nor the forwarder's ARN the job's."""
    job_group_arn = kafka_arns["group"].rsplit("/", 1)[0] + f"/{LAKE.consumer_group_prefix}*"
    assert not fnmatch.fnmatchcase(kafka_arns["group"], job_group_arn)
    group = modules["iam"].var("alert_forwarder")["consumer_group"]  # var.alert_forwarder's
    assert group == forwarder_env["ALERT_FORWARDER_GROUP"]
    assert kafka_arns["group"].endswith("/" + forwarder_env["ALERT_FORWARDER_GROUP"])
    # Another group in var.alert_forwarder: the task and its role's group ARN follow.
    configured = tf.Module(inputs=SETTINGS)
    env = _env(configured.child("ecs").local("alert_forwarder_container")["environment"])
    assert env["ALERT_FORWARDER_GROUP"] == "smartcity-alert-forwarder-blue"
    groups = tf.grants(configured.child("iam").policy_statements("ecs_alert_forwarder"))
    assert groups["kafka-cluster:AlterGroup"] == {
        kafka_arns["group"].rsplit("/", 1)[0] + "/smartcity-alert-forwarder-blue"
    }


# ------------------------------------------------------------------------------ SNS and DynamoDB


def test_the_ledger_table_has_the_forwarder_s_key_and_ttl_attribute(alerts):
    table = alerts.one("aws_dynamodb_table", "this")
    assert table["hash_key"] == LEDGER_KEY
    assert "range_key" not in table, "the forwarder's items have a partition key only"
    assert [(a["name"], a["type"]) for a in table.blocks("attribute")] == [(LEDGER_KEY, "S")]
    (ttl,) = table.blocks("ttl")
    assert (ttl["attribute_name"], ttl["enabled"]) == (LEDGER_TTL_ATTRIBUTE, True)


def test_the_ledger_table_is_on_demand_recoverable_and_protected(alerts, root):
    table = alerts.one("aws_dynamodb_table", "this")
    assert table["name"] == f"{root.local('name')}-alert-ledger"
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    (pitr,) = table.blocks("point_in_time_recovery")
    assert pitr["enabled"] is True
    assert table["deletion_protection_enabled"] is True  # until force_destroy = true


def test_the_topic_and_the_ledger_are_encrypted_with_the_module_s_own_rotating_key(alerts, fake):
    key_arn = fake.alerts["kms_key_arn"]
    key = alerts.one("aws_kms_key", "this")
    assert key["enable_key_rotation"] is True
    assert alerts.output("kms_key_arn") == key_arn
    topic = alerts.one("aws_sns_topic", "this")
    assert topic["kms_master_key_id"] == key_arn, "a customer managed key, not alias/aws/sns"
    (sse,) = alerts.one("aws_dynamodb_table", "this").blocks("server_side_encryption")
    assert (sse["enabled"], sse["kms_key_arn"]) == (True, key_arn)


def test_the_key_policy_lets_the_forwarder_use_it_through_sns_and_dynamodb_only(alerts, fake):
    statements = json.loads(alerts.one("aws_kms_key", "this")["policy"])["Statement"]
    admin, forwarder = statements
    assert admin["Sid"] == "AccountAdministration"
    assert admin["Principal"] == {"AWS": f"arn:aws:iam::{fake.account}:root"}
    assert forwarder == {
        "Sid": "AlertForwarderThroughSnsAndDynamoDb",
        "Effect": "Allow",
        "Principal": {"AWS": fake.alerts["forwarder_role_arn"]},
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": "*",
        "Condition": {
            "StringEquals": {
                "kms:ViaService": [
                    f"sns.{fake.region}.amazonaws.com",
                    f"dynamodb.{fake.region}.amazonaws.com",
                ]
            }
        },
    }


def test_only_the_forwarder_publishes_to_the_alert_topic_and_only_over_tls(alerts, fake):
    policy = alerts.one("aws_sns_topic_policy", "this")
    assert policy["arn"] == fake.alerts["sns_topic_arn"]
    statements = {s["Sid"]: s for s in json.loads(policy["policy"])["Statement"]}
    assert {s["Effect"] for s in statements.values()} == {"Deny"}
    assert statements["DenyInsecureTransport"]["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
    assert statements["OnlyTheForwarderPublishes"]["Condition"] == {
        "ArnNotEquals": {"aws:PrincipalArn": fake.alerts["forwarder_role_arn"]}
    }
    for statement in statements.values():
        assert (statement["Action"], statement["Resource"]) == (
            "sns:Publish",
            fake.alerts["sns_topic_arn"],
        )


def test_alert_email_subscriptions_subscribe_each_address_by_email(root, tf, fake):
    assert root.var("alert_email_subscriptions") == []
    assert root.child("alerts").instances("aws_sns_topic_subscription", "this") == {}
    addresses = ["oncall@example.com", "roads@example.com"]
    configured = tf.Module(inputs={"alert_email_subscriptions": addresses}).child("alerts")
    subscriptions = configured.instances("aws_sns_topic_subscription", "this")
    assert sorted(subscriptions) == addresses
    for address, subscription in subscriptions.items():
        assert subscription["protocol"] == "email"
        assert subscription["endpoint"] == address
        assert subscription["topic_arn"] == fake.alerts["sns_topic_arn"]


def test_the_alert_topic_is_not_the_alarm_topic(root, alerts, modules):
    assert alerts.one("aws_sns_topic", "this")["name"] == f"{root.local('name')}-alerts"
    alarms = modules["observability"].one("aws_sns_topic", "this")["name"]
    assert alarms != alerts.one("aws_sns_topic", "this")["name"]
    assert root.output("alerts_sns_topic_arn") == modules["alerts"].output("sns_topic_arn")


# -------------------------------------------------------------------------------------------- ECS


def test_the_forwarder_task_s_environment_is_what_the_forwarder_reads(
    root, container, forwarder_env, fake
):
    from scripts.alerts import ForwarderSettings

    assert FORWARDER_NEEDS <= set(forwarder_env) <= FORWARDER_READS
    assert not any(re.search(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY", k) for k in forwarder_env)
    env = {**forwarder_env, "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP}
    kafka = KafkaSettings.from_env(env)
    assert (kafka.auth_mode, kafka.aws_region) == ("msk-iam", fake.region)
    assert kafka.topic(ALERT_STREAM) == CONTRACTS[ALERT_STREAM].default_topic
    settings = ForwarderSettings.from_env(env)
    assert settings.group == ForwarderSettings().group == "smartcity-alert-forwarder"
    assert settings.sns_topic_arn == fake.alerts["sns_topic_arn"]
    assert settings.dedupe_table == fake.alerts["ledger_table_name"]
    assert settings.aws_region == fake.region


def test_the_forwarder_s_kafka_connection_is_the_producer_s(modules, forwarder_env):
    producer = _env(modules["ecs"].local("producer_container")["environment"])
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_AUTH_MODE", "AWS_REGION"):
        assert forwarder_env[name] == producer[name], name


def test_the_ledger_remembers_an_alert_as_long_as_the_topic_keeps_it(modules, forwarder_env, tf):
    """A consumer group whose offsets are lost starts again from the earliest record: every
    alert the topic still holds must still be in the ledger, or it would be notified twice."""
    topics = _env(modules["ecs"].local("topics_admin_container")["environment"])
    retention_hours = int(topics["TOPIC_RETENTION_HOURS"])  # var.topics.retention_hours
    assert int(forwarder_env["ALERT_DEDUPE_TTL_DAYS"]) * 24 >= retention_hours
    assert int(forwarder_env["ALERT_DEDUPE_TTL_DAYS"]) == 7  # the forwarder's own default
    # Topics kept longer (240 hours): the ledger remembers longer too.
    ecs = tf.Module(inputs=SETTINGS).child("ecs")
    topics = _env(ecs.local("topics_admin_container")["environment"])
    env = _env(ecs.local("alert_forwarder_container")["environment"])
    assert int(env["ALERT_DEDUPE_TTL_DAYS"]) * 24 >= int(topics["TOPIC_RETENTION_HOURS"]) == 240


def test_the_forwarder_runs_the_producer_image_read_only_as_a_non_root_user(modules, container):
    producer = modules["ecs"].local("producer_container")
    assert container["image"] == producer["image"]
    assert container["entryPoint"] + container["command"] == FORWARD
    assert container["readonlyRootFilesystem"] is True
    assert container["user"] == producer["user"] != "0"
    options = container["logConfiguration"]["options"]
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    assert options["awslogs-group"] == producer["logConfiguration"]["options"]["awslogs-group"]
    assert options["awslogs-stream-prefix"] == "alert-forwarder"


def test_the_forwarder_logs_to_the_kms_encrypted_ecs_log_group(modules, container):
    log_group = modules["ecs"].child("log_group")
    group = log_group.one("aws_cloudwatch_log_group", "this")
    key_arn = log_group.output("kms_key_arn")
    assert group["kms_key_id"] == key_arn == log_group.one("aws_kms_key", "this")["arn"]
    assert container["logConfiguration"]["options"]["awslogs-group"] == group["name"]


def test_the_forwarder_is_a_fargate_service_beside_the_producer(modules, root):
    ecs = modules["ecs"]
    services = ecs.instances("aws_ecs_service", "this")
    assert set(services) == {"producer", "alert-forwarder"}
    forwarder, producer = services["alert-forwarder"], services["producer"]
    assert forwarder["name"] == f"{root.local('name')}-alert-forwarder"
    assert producer["name"] == f"{root.local('name')}-producer"
    assert forwarder["launch_type"] == "FARGATE"
    assert forwarder["cluster"] == producer["cluster"] == ecs.one("aws_ecs_cluster", "this")["id"]
    tasks = ecs.instances("aws_ecs_task_definition", "this")
    assert forwarder["task_definition"] == tasks["alert-forwarder"]["arn"]
    # var.alert_forwarder.desired_count, as the root passes it
    assert forwarder["desired_count"] == ecs.var("alert_forwarder_desired_count") == 0
    (network,) = forwarder.blocks("network_configuration")
    (producer_network,) = producer.blocks("network_configuration")
    assert network["subnets"] == producer_network["subnets"] == ecs.var("subnet_ids")
    assert network["assign_public_ip"] is False
    groups = ecs.instances("aws_security_group", "this")
    assert network["security_groups"] == [groups["alert-forwarder"]["id"]]
    task = tasks["alert-forwarder"]
    assert task["requires_compatibilities"] == ["FARGATE"]
    assert task["network_mode"] == "awsvpc"
    assert json.loads(task["container_definitions"])[0]["name"] == "alert-forwarder"


def test_the_forwarder_s_security_group_reaches_msk_the_endpoints_s3_and_dynamodb_only(modules, tf):
    ecs, network = modules["ecs"], modules["network"]
    groups = ecs.instances("aws_security_group", "this")
    assert set(groups) == {"tasks", "alert-forwarder"}
    assert groups["alert-forwarder"]["name"] == "smartcity-dev-alert-forwarder"
    assert not groups["alert-forwarder"].blocks("ingress")
    # tfparse does not expand a for_each over values that hold a null (a rule's cidr or prefix
    # list), so the rules are its evaluated collection, and how a rule uses one its source.
    (rules,) = {json.dumps(r["for_each"]) for r in ecs.instances(*EGRESS).values()}
    rules = json.loads(rules)
    doc = tf.load(tf.MODULES_DIR / "ecs" / "main.tf")
    (source,) = [e[EGRESS[0]][EGRESS[1]] for e in doc["resource"] if EGRESS[0] in e]
    assert {k: source[k] for k in source if k not in ("for_each", "description", "tags")} == {
        "security_group_id": "${aws_security_group.this[each.value.group].id}",
        "ip_protocol": "tcp",
        "from_port": "${each.value.port}",
        "to_port": "${each.value.port}",
        "cidr_ipv4": "${each.value.cidr}",
        "prefix_list_id": "${each.value.prefix_list}",
    }
    forwarder = {
        k.split(".", 1)[1]: r for k, r in rules.items() if k.startswith("alert-forwarder.")
    }
    assert set(forwarder) == {"kafka_iam", "endpoints", "s3_image_layer", "dynamodb"}
    vpc = ecs.var("vpc_cidr_block")
    expected = {
        "kafka_iam": (9098, vpc, None),
        "endpoints": (443, vpc, None),
        "s3_image_layer": (443, None, network.output("s3_prefix_list_id")),
        "dynamodb": (443, None, network.output("dynamodb_prefix_list_id")),
    }
    for key, rule in forwarder.items():
        assert (rule["port"], rule["cidr"], rule["prefix_list"]) == expected[key], key
        assert rule["group"] == "alert-forwarder", key
    # The producer's group keeps its three rules: nothing to DynamoDB.
    assert {k for k in rules if k.startswith("tasks.")} == {
        "tasks.kafka_iam",
        "tasks.endpoints",
        "tasks.s3_image_layer",
    }


def test_msk_admits_the_forwarder_s_security_group(modules):
    rules = modules["msk"].instances("aws_vpc_security_group_ingress_rule", "this")
    group = modules["ecs"].instances("aws_security_group", "this")["alert-forwarder"]
    assert (
        rules["alert_forwarder"]["referenced_security_group_id"]
        == modules["ecs"].output("alert_forwarder_security_group_id")
        == group["id"]
    )


def test_the_private_subnets_reach_sns_and_dynamodb(root, modules):
    network = modules["network"]
    # The root passes var.network's interface_endpoints, null unless set (tfparse leaves it
    # unevaluated): the module's variable, not nullable, then keeps its default.
    variable = network["variable.interface_endpoints"]
    assert root.var("network") == {} and variable["nullable"] is False
    assert "sns" in variable["default"]
    dynamodb = network.one("aws_vpc_endpoint", "dynamodb")
    assert dynamodb["vpc_endpoint_type"] == "Gateway"
    assert dynamodb["service_name"].endswith(".dynamodb")
    assert dynamodb["route_table_ids"] == network.one("aws_vpc_endpoint", "s3")["route_table_ids"]


def test_the_producer_s_service_and_security_group_are_moved_not_replaced(tf):
    """They became for_each instances: `moved` blocks keep them (and the running service)."""
    moved = {
        (m["from"], m["to"]) for m in tf.load(tf.MODULES_DIR / "ecs" / "main.tf").get("moved", [])
    }
    assert moved == {
        ("${aws_ecs_service.this}", '${aws_ecs_service.this["producer"]}'),
        ("${aws_security_group.this}", '${aws_security_group.this["tasks"]}'),
        *(
            (
                f'${{aws_vpc_security_group_egress_rule.this["{k}"]}}',
                f'${{aws_vpc_security_group_egress_rule.this["tasks.{k}"]}}',
            )
            for k in ("kafka_iam", "endpoints", "s3_image_layer")
        ),
    }


def test_root_outputs_name_the_alert_path(root, modules, fake):
    assert root.output("alerts_sns_topic_arn") == fake.alerts["sns_topic_arn"]
    assert root.output("alert_ledger_table_name") == fake.alerts["ledger_table_name"]
    service = modules["ecs"].instances("aws_ecs_service", "this")["alert-forwarder"]
    assert root.output("ecs_alert_forwarder_service_name") == service["name"]
