data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  # Consumer-group prefix, lake layout and metric namespace are shared with the job.
  lake = jsondecode(file("${path.module}/../../../emr_jobs/core/contracts/_lake.json"))

  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region
  account_id = data.aws_caller_identity.current.account_id

  # arn:...:cluster/<name>/<uuid>  ->  arn:...:topic/<name>/<uuid>/<topic>, arn:...:group/<name>/<uuid>/<group>
  topic_arn_prefix = replace(var.msk_cluster_arn, ":cluster/", ":topic/")
  group_arn_prefix = replace(var.msk_cluster_arn, ":cluster/", ":group/")
  topic_arns       = [for stream, topic in var.topics : "${local.topic_arn_prefix}/${topic}"]
  # Each topic has one writer, its contract's produced_by: the producer writes the sensor
  # streams, the job what it derives from them (alerts, road conditions).
  producer_topic_arns = [for stream, topic in var.topics : "${local.topic_arn_prefix}/${topic}" if var.topic_writers[stream] == "producer"]
  job_topic_arns      = [for stream, topic in var.topics : "${local.topic_arn_prefix}/${topic}" if var.topic_writers[stream] == "job"]
  # Spark's Kafka source uses groupIdPrefix, so its group IDs are <prefix>-<uuid>-<n>.
  consumer_group_arn = "${local.group_arn_prefix}/${local.lake.consumer_group_prefix}*"

  # The alert forwarder reads one topic with one consumer group, both named exactly.
  alert_topic_arn           = "${local.topic_arn_prefix}/${var.alert_forwarder.topic}"
  alert_forwarder_group_arn = "${local.group_arn_prefix}/${var.alert_forwarder.consumer_group}"

  # The Iceberg tables (modules/glue) at s3://<lake>/tables/<table>, and the streaming checkpoints.
  table_prefixes      = [for t in var.glue_table_names : "${local.lake.layout.tables}/${t}"]
  table_object_arns   = [for p in local.table_prefixes : "${var.lake_bucket_arn}/${p}/*"]
  table_list_prefixes = flatten([for p in local.table_prefixes : [p, "${p}/", "${p}/*"]])
  checkpoints_prefix  = local.lake.layout.checkpoints
  lake_object_arns    = concat(local.table_object_arns, ["${var.lake_bucket_arn}/${local.checkpoints_prefix}/*"])
  lake_list_prefixes  = concat(local.table_list_prefixes, [local.checkpoints_prefix, "${local.checkpoints_prefix}/", "${local.checkpoints_prefix}/*"])

  # Glue Data Catalog ARNs: a table action is authorised on the catalog, the database and the table.
  glue_catalog_arn  = "arn:${local.partition}:glue:${local.region}:${local.account_id}:catalog"
  glue_database_arn = "arn:${local.partition}:glue:${local.region}:${local.account_id}:database/${var.glue_database_name}"
  glue_table_arns   = [for t in var.glue_table_names : "arn:${local.partition}:glue:${local.region}:${local.account_id}:table/${var.glue_database_name}/${t}"]
  # Where the Glue table optimizers write their run logs (fixed names, one per optimizer type).
  optimizer_log_group_arns = [
    for g in ["iceberg-compaction", "iceberg-retention", "iceberg-orphan-file-deletion"] :
    "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws-glue/${g}/logs:*"
  ]

  ecr_repository_arn = "arn:${local.partition}:ecr:${local.region}:${local.account_id}:repository/${var.ecr_repository_name}"
  ecs_log_group_arn  = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${var.ecs_log_group_name}"
}

# ---------------------------------------------------------------- trust policies

data "aws_iam_policy_document" "emr_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["elasticmapreduce.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# ---------------------------------------------------------------- EMR service role

data "aws_iam_policy_document" "emr_service" {
  statement {
    sid       = "PassInstanceRole"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.emr_ec2.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ec2.amazonaws.com"]
    }
  }

  # EBS encryption of the cluster's volumes (security configuration EnableEbsEncryption).
  statement {
    sid       = "EncryptClusterVolumes"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = [var.s3_kms_key_arn]
  }

  statement {
    sid       = "GrantClusterVolumes"
    actions   = ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"]
    resources = [var.s3_kms_key_arn]
    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }
}

resource "aws_iam_role" "emr_service" {
  name               = "${var.name}-emr-service"
  assume_role_policy = data.aws_iam_policy_document.emr_assume.json

  tags = var.tags
}

# AWS's scoped v2 policy: it acts only on resources tagged for-use-with-amazon-emr-managed-policies=true.
resource "aws_iam_role_policy_attachment" "this" {
  role       = aws_iam_role.emr_service.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonEMRServicePolicy_v2"
}

resource "aws_iam_role_policy" "emr_service" {
  name   = "pass-role-and-ebs-encryption"
  role   = aws_iam_role.emr_service.id
  policy = data.aws_iam_policy_document.emr_service.json
}

# ---------------------------------------------------------------- EMR EC2 instance profile (the Spark job)

data "aws_iam_policy_document" "emr_ec2" {
  # WriteDataIdempotently is a cluster action: Spark's Kafka sink (kafka-clients 3.x, idempotent
  # by default) calls InitProducerId, which MSK does not infer from WriteData on some topics.
  statement {
    sid       = "KafkaConnect"
    actions   = ["kafka-cluster:Connect", "kafka-cluster:WriteDataIdempotently"]
    resources = [var.msk_cluster_arn]
  }

  # The lake writer reads every topic, the derived ones included.
  statement {
    sid       = "KafkaReadTopics"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"]
    resources = local.topic_arns
  }

  statement {
    sid       = "KafkaWriteDerivedTopics"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"]
    resources = local.job_topic_arns
  }

  statement {
    sid       = "KafkaConsumerGroups"
    actions   = ["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"]
    resources = [local.consumer_group_arn]
  }

  statement {
    sid       = "ArtifactsList"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [var.artifacts_bucket_arn]
  }

  statement {
    sid       = "ArtifactsRead"
    actions   = ["s3:GetObject"]
    resources = ["${var.artifacts_bucket_arn}/*"]
  }

  statement {
    sid       = "LakeList"
    actions   = ["s3:ListBucket"]
    resources = [var.lake_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = local.lake_list_prefixes
    }
  }

  statement {
    sid       = "LakeBucketLocation"
    actions   = ["s3:GetBucketLocation"]
    resources = [var.lake_bucket_arn]
  }

  # Iceberg writes data and metadata files under each table's location and deletes its own
  # leftovers (files of a failed commit, old metadata.json); Spark renames checkpoint files.
  statement {
    sid = "LakeTablesAndCheckpoints"
    actions = [
      "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
    ]
    resources = local.lake_object_arns
  }

  # The Iceberg catalog: DESCRIBE NAMESPACE checks the job's database at start-up (GetDatabase on
  # it alone), and each table is loaded by name and committed with UpdateTable (Glue's optimistic
  # lock: no DynamoDB lock table).
  # No glue:CreateTable and no glue:GetTables: Terraform creates every table (with its
  # optimizers), so a missing table must fail the job by name, not be created without them.
  statement {
    sid       = "IcebergCatalogDatabase"
    actions   = ["glue:GetDatabase"]
    resources = [local.glue_catalog_arn, local.glue_database_arn]
  }

  statement {
    sid       = "IcebergTableCommits"
    actions   = ["glue:GetTable", "glue:UpdateTable"]
    resources = concat([local.glue_catalog_arn, local.glue_database_arn], local.glue_table_arns)
  }

  statement {
    sid       = "ClusterLogs"
    actions   = ["s3:PutObject"]
    resources = ["${var.logs_bucket_arn}/${var.emr_log_prefix}/*"]
  }

  # EMR's own packages and bootstrap helpers, read through the S3 gateway endpoint.
  statement {
    sid     = "EmrPlatformRead"
    actions = ["s3:GetObject"]
    resources = [
      "arn:${local.partition}:s3:::${local.region}.elasticmapreduce/*",
      "arn:${local.partition}:s3:::repo.${local.region}.emr.amazonaws.com/*",
      "arn:${local.partition}:s3:::prod.${local.region}.appinfo.src/*",
    ]
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.s3_kms_key_arn]
  }

  # PutMetricData has no resource-level permissions; the namespace condition scopes it.
  statement {
    sid       = "PublishLagMetric"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [local.lake.metrics.namespace]
    }
  }
}

resource "aws_iam_role" "emr_ec2" {
  name               = "${var.name}-emr-ec2"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy" "emr_ec2" {
  name   = "streaming-job"
  role   = aws_iam_role.emr_ec2.id
  policy = data.aws_iam_policy_document.emr_ec2.json
}

resource "aws_iam_instance_profile" "this" {
  name = "${var.name}-emr-ec2"
  role = aws_iam_role.emr_ec2.name

  tags = var.tags
}

# ---------------------------------------------------------------- Glue table optimizers (compaction, snapshot expiry, orphan files)

# Glue documents no source-account condition for the optimizers' role, so the trust names the service only.
data "aws_iam_policy_document" "glue_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["glue.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "glue_optimizer" {
  statement {
    sid       = "LakeTablesList"
    actions   = ["s3:ListBucket"]
    resources = [var.lake_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = local.table_list_prefixes
    }
  }

  # Compaction rewrites files, expiry and orphan removal delete them: only under the tables.
  statement {
    sid       = "LakeTablesReadWriteDelete"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = local.table_object_arns
  }

  statement {
    sid       = "CatalogTables"
    actions   = ["glue:GetTable", "glue:UpdateTable"]
    resources = concat([local.glue_catalog_arn, local.glue_database_arn], local.glue_table_arns)
  }

  statement {
    sid       = "UseLakeKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.s3_kms_key_arn]
  }

  statement {
    sid       = "OptimizerLogs"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
    resources = local.optimizer_log_group_arns
  }
}

resource "aws_iam_role" "glue_optimizer" {
  name               = "${var.name}-glue-table-optimizer"
  assume_role_policy = data.aws_iam_policy_document.glue_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy" "glue_optimizer" {
  name   = "maintain-lake-tables"
  role   = aws_iam_role.glue_optimizer.id
  policy = data.aws_iam_policy_document.glue_optimizer.json
}

# ---------------------------------------------------------------- ECS execution role (pull image, write logs)

data "aws_iam_policy_document" "ecs_task_execution" {
  # GetAuthorizationToken has no resource-level permissions.
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "EcrPull"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = [local.ecr_repository_arn]
  }

  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${local.ecs_log_group_arn}:log-stream:*"]
  }
}

resource "aws_iam_role" "ecs_task_execution" {
  name               = "${var.name}-ecs-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy" "ecs_task_execution" {
  name   = "pull-image-write-logs"
  role   = aws_iam_role.ecs_task_execution.id
  policy = data.aws_iam_policy_document.ecs_task_execution.json
}

# ---------------------------------------------------------------- ECS producer task role

data "aws_iam_policy_document" "ecs_producer" {
  # WriteDataIdempotently is a cluster action: the idempotent producer's InitProducerId.
  statement {
    sid       = "KafkaConnect"
    actions   = ["kafka-cluster:Connect", "kafka-cluster:WriteDataIdempotently"]
    resources = [var.msk_cluster_arn]
  }

  # The sensor streams only: the job alone writes what it derives.
  statement {
    sid       = "KafkaWriteTopics"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"]
    resources = local.producer_topic_arns
  }
}

resource "aws_iam_role" "ecs_producer" {
  name               = "${var.name}-ecs-producer"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy" "ecs_producer" {
  name   = "produce-to-topics"
  role   = aws_iam_role.ecs_producer.id
  policy = data.aws_iam_policy_document.ecs_producer.json
}

# ---------------------------------------------------------------- ECS topics-admin task role (python -m scripts.topics create)

data "aws_iam_policy_document" "ecs_topics_admin" {
  statement {
    sid       = "KafkaConnect"
    actions   = ["kafka-cluster:Connect"]
    resources = [var.msk_cluster_arn]
  }

  statement {
    sid       = "KafkaManageTopics"
    actions   = ["kafka-cluster:CreateTopic", "kafka-cluster:DescribeTopic", "kafka-cluster:AlterTopic"]
    resources = local.topic_arns
  }
}

resource "aws_iam_role" "ecs_topics_admin" {
  name               = "${var.name}-ecs-topics-admin"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy" "ecs_topics_admin" {
  name   = "manage-topics"
  role   = aws_iam_role.ecs_topics_admin.id
  policy = data.aws_iam_policy_document.ecs_topics_admin.json
}

# ---------------------------------------------------------------- ECS alert-forwarder task role (python -m scripts.alerts forward)

data "aws_iam_policy_document" "ecs_alert_forwarder" {
  statement {
    sid       = "KafkaConnect"
    actions   = ["kafka-cluster:Connect"]
    resources = [var.msk_cluster_arn]
  }

  statement {
    sid       = "KafkaReadAlerts"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"]
    resources = [local.alert_topic_arn]
  }

  statement {
    sid       = "KafkaForwarderGroup"
    actions   = ["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"]
    resources = [local.alert_forwarder_group_arn]
  }

  statement {
    sid       = "PublishAlerts"
    actions   = ["sns:Publish"]
    resources = [var.alert_forwarder.sns_topic_arn]
  }

  # The once-only ledger: the forwarder reads (start-up check) and conditionally updates an id;
  # no put, delete, scan, query or table change.
  statement {
    sid       = "AlertLedger"
    actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    resources = [var.alert_forwarder.ledger_table_arn]
  }

  # SNS asks for a data key per message, DynamoDB decrypts the table key, both with the caller's
  # credentials; the key serves the forwarder through those two services only.
  statement {
    sid       = "AlertKeyThroughSnsAndDynamoDb"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.alert_forwarder.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sns.${local.region}.amazonaws.com", "dynamodb.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "ecs_alert_forwarder" {
  name               = "${var.name}-ecs-alert-forwarder"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json

  tags = var.tags
}

resource "aws_iam_role_policy" "ecs_alert_forwarder" {
  name   = "forward-alerts"
  role   = aws_iam_role.ecs_alert_forwarder.id
  policy = data.aws_iam_policy_document.ecs_alert_forwarder.json
}
