provider "aws" {
  region = var.aws_region
}

locals {
  name = "${var.project}-${var.environment}"
  tags = merge(var.tags, {
    Project     = var.project
    Environment = var.environment
    ManagedBy   = "terraform"
  })

  # Streams and topics come from the contracts the producer and the job use.
  contracts_dir = "${path.module}/../emr_jobs/core/contracts"
  streams       = sort([for f in fileset(local.contracts_dir, "*.json") : trimsuffix(f, ".json") if !startswith(f, "_")])
  contracts     = { for s in local.streams : s => jsondecode(file("${local.contracts_dir}/${s}.json")) }
  topics        = { for s, c in local.contracts : s => c.default_topic }
  # Who writes each topic: "producer" (the five sensor streams) or "job" (what the job derives).
  topic_writers = { for s, c in local.contracts : s => c.produced_by }

  # Read by emr_jobs/core/kafka.py in the producer, the topics command, the job and the forwarder.
  kafka_connection = {
    KAFKA_BOOTSTRAP_SERVERS = module.msk.cluster_bootstrap_brokers_sasl_iam
    KAFKA_AUTH_MODE         = "msk-iam"
    AWS_REGION              = var.aws_region
  }
  kafka_environment = merge(
    local.kafka_connection,
    { for s, c in local.contracts : c.topic_env => c.default_topic },
  )

  # The alert forwarder (python -m scripts.alerts forward) reads the stream whose topic variable
  # is ALERTS_TOPIC, with its own consumer group, and remembers each alert id it notified for as
  # long as the topic keeps records, so a replay from the earliest offset notifies nobody twice.
  alert_stream          = one([for s, c in local.contracts : s if c.topic_env == "ALERTS_TOPIC"])
  alert_dedupe_ttl_days = ceil(var.topics.retention_hours / 24)
  alert_forwarder_environment = merge(local.kafka_connection, {
    (local.contracts[local.alert_stream].topic_env) = local.topics[local.alert_stream]
    ALERT_FORWARDER_GROUP                           = var.alert_forwarder.consumer_group
    ALERT_SNS_TOPIC_ARN                             = module.alerts.sns_topic_arn
    ALERT_DEDUPE_TABLE                              = module.alerts.ledger_table_name
    ALERT_DEDUPE_TTL_DAYS                           = tostring(local.alert_dedupe_ttl_days)
  })

  # Glue names allow no hyphens: smartcity_dev. The job's LAKE_DATABASE (emr_job_environment).
  glue_database_name = replace(local.name, "-", "_")

  ecr_repository_name = local.name
  ecs_log_group_name  = "/ecs/${local.name}"
  emr_log_prefix      = "emr"
}

module "network" {
  source = "./modules/network"

  name                    = local.name
  cidr_block              = var.network.cidr_block
  enable_nat_gateway      = var.network.enable_nat_gateway
  interface_endpoints     = var.network.interface_endpoints # null keeps the module's list
  flow_log_retention_days = var.log_retention_days

  tags = local.tags
}

module "s3" {
  source = "./modules/s3"

  name          = local.name
  force_destroy = var.force_destroy

  tags = local.tags
}

module "msk" {
  source = "./modules/msk"

  name                 = local.name
  vpc_id               = module.network.vpc_id
  subnet_ids           = module.network.private_subnet_ids
  kafka_version        = var.msk.kafka_version
  broker_instance_type = var.msk.broker_instance_type
  broker_volume_size   = var.msk.broker_volume_size
  enhanced_monitoring  = var.msk.enhanced_monitoring
  default_partitions   = var.topics.partitions
  log_retention_days   = var.log_retention_days
  client_security_group_ids = {
    emr_master      = module.emr.master_security_group_id
    emr_core        = module.emr.core_security_group_id
    ecs_tasks       = module.ecs.task_security_group_id
    alert_forwarder = module.ecs.alert_forwarder_security_group_id
  }

  tags = local.tags
}

module "iam" {
  source = "./modules/iam"

  name                 = local.name
  msk_cluster_arn      = module.msk.cluster_arn
  topics               = local.topics
  topic_writers        = local.topic_writers
  lake_bucket_arn      = module.s3.lake_bucket_arn
  artifacts_bucket_arn = module.s3.artifacts_bucket_arn
  logs_bucket_arn      = module.s3.logs_bucket_arn
  emr_log_prefix       = local.emr_log_prefix
  s3_kms_key_arn       = module.s3.kms_key_arn
  glue_database_name   = local.glue_database_name
  glue_table_names     = module.glue.table_names
  ecr_repository_name  = local.ecr_repository_name
  ecs_log_group_name   = local.ecs_log_group_name
  alert_forwarder = {
    topic            = local.topics[local.alert_stream]
    consumer_group   = var.alert_forwarder.consumer_group
    sns_topic_arn    = module.alerts.sns_topic_arn
    ledger_table_arn = module.alerts.ledger_table_arn
    kms_key_arn      = module.alerts.kms_key_arn
  }

  tags = local.tags
}

module "emr" {
  source = "./modules/emr"

  name                    = local.name
  vpc_id                  = module.network.vpc_id
  subnet_id               = module.network.private_subnet_ids[0]
  service_role_arn        = module.iam.emr_service_role_arn
  instance_profile_arn    = module.iam.emr_instance_profile_arn
  log_uri                 = "s3://${module.s3.logs_bucket_name}/${local.emr_log_prefix}/"
  artifacts_bucket_name   = module.s3.artifacts_bucket_name
  lake_bucket_name        = module.s3.lake_bucket_name
  kms_key_arn             = module.s3.kms_key_arn
  tls_certificates_s3_uri = "s3://${module.s3.artifacts_bucket_name}/${var.emr.tls_certificates_key}"
  master_instance_type    = var.emr.master_instance_type
  core_instance_type      = var.emr.core_instance_type
  core_instance_count     = var.emr.core_instance_count
  ebs_volume_size         = var.emr.ebs_volume_size
  idle_timeout_seconds    = var.emr.idle_timeout_seconds
  managed_scaling         = var.emr.managed_scaling

  tags = local.tags
}

module "ecs" {
  source = "./modules/ecs"

  name                       = local.name
  vpc_id                     = module.network.vpc_id
  vpc_cidr_block             = module.network.vpc_cidr_block
  subnet_ids                 = module.network.private_subnet_ids
  s3_prefix_list_id          = module.network.s3_prefix_list_id
  dynamodb_prefix_list_id    = module.network.dynamodb_prefix_list_id
  ecr_repository_name        = local.ecr_repository_name
  image_tag                  = var.producer.image_tag
  log_group_name             = local.ecs_log_group_name
  log_retention_days         = var.log_retention_days
  execution_role_arn         = module.iam.ecs_task_execution_role_arn
  producer_task_role_arn     = module.iam.ecs_producer_task_role_arn
  topics_admin_task_role_arn = module.iam.ecs_topics_admin_task_role_arn
  kafka_environment          = local.kafka_environment
  producer_environment       = var.producer.environment
  producer_desired_count     = var.producer.desired_count
  force_destroy              = var.force_destroy
  task_size = {
    cpu              = var.producer.cpu
    memory           = var.producer.memory
    cpu_architecture = var.producer.cpu_architecture
  }
  # Read by scripts/topics.py (TopicSpec.from_env).
  topics_admin_environment = {
    TOPIC_PARTITIONS         = tostring(var.topics.partitions)
    TOPIC_REPLICATION_FACTOR = tostring(var.topics.replication_factor)
    TOPIC_RETENTION_HOURS    = tostring(var.topics.retention_hours)
  }
  alert_forwarder_task_role_arn = module.iam.ecs_alert_forwarder_task_role_arn
  alert_forwarder_environment   = local.alert_forwarder_environment
  alert_forwarder_desired_count = var.alert_forwarder.desired_count
  alert_forwarder_task_size = {
    cpu    = var.alert_forwarder.cpu
    memory = var.alert_forwarder.memory
  }

  tags = local.tags
}

module "alerts" {
  source = "./modules/alerts"

  name                = local.name
  forwarder_role_arn  = module.iam.ecs_alert_forwarder_task_role_arn
  email_subscriptions = var.alert_email_subscriptions
  force_destroy       = var.force_destroy

  tags = local.tags
}

module "glue" {
  source = "./modules/glue"

  name                       = local.glue_database_name
  streams                    = local.streams
  lake_bucket_name           = module.s3.lake_bucket_name
  athena_results_bucket_name = module.s3.logs_bucket_name
  kms_key_arn                = module.s3.kms_key_arn
  optimizer_role_arn         = module.iam.glue_optimizer_role_arn
  maintenance                = var.lake_maintenance
  force_destroy              = var.force_destroy

  tags = local.tags
}

module "observability" {
  source = "./modules/observability"

  name                            = local.name
  msk_cluster_name                = module.msk.cluster_name
  msk_broker_count                = module.msk.cluster_broker_count
  emr_cluster_id                  = module.emr.cluster_id
  alarm_email                     = var.alarms.email
  lag_threshold                   = var.alarms.lag_threshold
  msk_disk_used_percent_threshold = var.alarms.msk_disk_used_percent
  msk_cpu_percent_threshold       = var.alarms.msk_cpu_percent

  tags = local.tags
}
