"""What AWS would assign, for tests/infra/conftest.py: tfparse knows no ``arn``, ``id`` or
account, so a copy of ``infra/`` is evaluated with these set, as ``terraform test`` does with
``override_data`` / ``override_resource``. The bucket names follow the s3 module's pattern
``<name>-<purpose>-<account>-<region>``; change both together.
"""

from __future__ import annotations

from types import SimpleNamespace

ACCOUNT, REGION, NAME = "123456789012", "eu-west-2", "smartcity-dev"
ARN = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:{{}}".format
FAKE_BUCKETS = {b: f"{NAME}-{b}-{ACCOUNT}-{REGION}" for b in ("lake", "artifacts", "logs")}
FAKE = SimpleNamespace(
    account=ACCOUNT,
    region=REGION,
    msk_cluster_arn=ARN("kafka", f"cluster/{NAME}/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b-3"),
    bucket_names=FAKE_BUCKETS,
    bucket_arns={b: f"arn:aws:s3:::{n}" for b, n in FAKE_BUCKETS.items()},
    alerts={
        "sns_topic_arn": ARN("sns", f"{NAME}-alerts"),
        "ledger_table_name": f"{NAME}-alert-ledger",
        "ledger_table_arn": ARN("dynamodb", f"table/{NAME}-alert-ledger"),
        "kms_key_arn": ARN("kms", "key/1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"),
        "forwarder_role_arn": f"arn:aws:iam::{ACCOUNT}:role/{NAME}-ecs-alert-forwarder",
    },
)
A = FAKE.alerts
ZONES = 'names = [for s in var.availability_zone_suffixes : "eu-west-2${s}"]'  # as filtered
#: (module, "*" for every one; block header; an attribute AWS would give the block, in HCL)
EXTERNALS = [
    ("*", 'data "aws_partition" "current"', 'partition = "aws"'),
    ("*", 'data "aws_region" "current"', f'region = "{REGION}"'),
    ("*", 'data "aws_caller_identity" "current"', f'account_id = "{ACCOUNT}"'),
    ("network", 'data "aws_availability_zones" "this"', ZONES),
    ("network", 'resource "aws_vpc_endpoint" "s3"', 'prefix_list_id = "pl-7ca54015"'),
    ("network", 'resource "aws_vpc_endpoint" "dynamodb"', 'prefix_list_id = "pl-b3a742da"'),
    ("msk", 'resource "aws_msk_cluster" "this"', f'arn = "{FAKE.msk_cluster_arn}"'),
    ("msk", 'resource "aws_msk_cluster" "this"', 'bootstrap_brokers_sasl_iam = "b-1.msk:9098"'),
    (
        "s3",
        'resource "aws_s3_bucket" "this"',
        'arn = "arn:aws:s3:::${each.value}"\nid = each.value',
    ),
    ("log_group", 'resource "aws_kms_key" "this"', f'arn = "{ARN("kms", "key${var.name}")}"'),
    ("iam", 'resource "aws_iam_role" "ecs_alert_forwarder"', f'arn = "{A["forwarder_role_arn"]}"'),
    ("ecs", 'resource "aws_ecr_repository" "this"', 'repository_url = "ecr/${var.name}"'),
    ("ecs", 'resource "aws_security_group" "this"', f'arn = "{ARN("ec2", "sg/${each.key}")}"'),
    ("ecs", 'resource "aws_ecs_task_definition" "this"', f'arn = "{ARN("ecs", "td/${each.key}")}"'),
    ("alerts", 'resource "aws_sns_topic" "this"', f'arn = "{A["sns_topic_arn"]}"'),
    ("alerts", 'resource "aws_dynamodb_table" "this"', f'arn = "{A["ledger_table_arn"]}"'),
    ("alerts", 'resource "aws_kms_key" "this"', f'arn = "{A["kms_key_arn"]}"'),
]
