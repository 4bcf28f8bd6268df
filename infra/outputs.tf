output "aws_region" {
  description = "Region everything was deployed to."
  value       = var.aws_region
}

output "vpc_private_subnet_ids" {
  description = "Private subnets (one per zone), for one-off ECS tasks."
  value       = module.network.private_subnet_ids
}

output "msk_cluster_arn" {
  description = "ARN of the MSK cluster."
  value       = module.msk.cluster_arn
}

output "msk_bootstrap_brokers_sasl_iam" {
  description = "KAFKA_BOOTSTRAP_SERVERS for IAM authentication over TLS (port 9098)."
  value       = module.msk.cluster_bootstrap_brokers_sasl_iam
}

output "kafka_topic_names" {
  description = "Kafka topic per stream, from the contracts' default_topic."
  value       = local.topics
}

output "lake_bucket_name" {
  description = "Name of the lake bucket: the Iceberg tables under tables/<table>/, the job's checkpoints under checkpoints/."
  value       = module.s3.lake_bucket_name
}

output "lake_uri" {
  description = "LAKE_URI for the job on EMR (s3://<lake bucket>)."
  value       = "s3://${module.s3.lake_bucket_name}"
}

output "artifacts_bucket_name" {
  description = "Name of the artifacts bucket: job code, jars, bootstrap scripts and the EMR TLS certificates zip."
  value       = module.s3.artifacts_bucket_name
}

output "logs_bucket_name" {
  description = "Name of the logs bucket: EMR logs under emr/, Athena results under athena-results/."
  value       = module.s3.logs_bucket_name
}

output "emr_cluster_id" {
  description = "ID of the EMR cluster the step script submits the job to."
  value       = module.emr.cluster_id
}

output "emr_job_environment" {
  description = "Environment the EMR step passes to the job (read by emr_jobs/settings.py and emr_jobs/core/kafka.py)."
  value = merge(local.kafka_environment, {
    LAKE_URI            = "s3://${module.s3.lake_bucket_name}"
    LAKE_CATALOG        = "glue"
    LAKE_DATABASE       = local.glue_database_name
    JOB_PUBLISH_METRICS = "true"
  })
}

output "ecr_repository_url" {
  description = "ECR repository to push the producer image to."
  value       = module.ecs.ecr_repository_url
}

output "ecs_cluster_name" {
  description = "Name of the ECS cluster."
  value       = module.ecs.cluster_name
}

output "ecs_producer_service_name" {
  description = "Name of the producer ECS service."
  value       = module.ecs.service_name
}

output "ecs_topics_admin_task_definition_arn" {
  description = "Task definition that creates the topics (python -m scripts.topics create)."
  value       = module.ecs.topics_admin_task_definition_arn
}

output "ecs_task_security_group_id" {
  description = "Security group for ECS tasks (admitted by MSK on 9098)."
  value       = module.ecs.task_security_group_id
}

output "ecs_topics_admin_run_task_command" {
  description = "AWS CLI command that creates the topics from inside the VPC, as a one-off Fargate task."
  value = join(" ", [
    "aws ecs run-task --region ${var.aws_region}",
    "--cluster ${module.ecs.cluster_name}",
    "--task-definition ${module.ecs.topics_admin_task_definition_arn}",
    "--launch-type FARGATE",
    "--network-configuration 'awsvpcConfiguration={subnets=[${join(",", module.network.private_subnet_ids)}],securityGroups=[${module.ecs.task_security_group_id}],assignPublicIp=DISABLED}'",
  ])
}

output "ecs_alert_forwarder_service_name" {
  description = "Name of the alert forwarder ECS service (python -m scripts.alerts forward)."
  value       = module.ecs.alert_forwarder_service_name
}

output "glue_database_name" {
  description = "Glue database of the Iceberg tables (<stream>, <stream>_quarantine, duplicates, for every contract); LAKE_DATABASE for the job."
  value       = module.glue.database_name
}

output "glue_table_names" {
  description = "Every Iceberg table the job writes, each kept by Glue table optimizers (compaction, snapshot expiry, orphan files)."
  value       = module.glue.table_names
}

output "athena_workgroup_name" {
  description = "Athena workgroup to query the lake with (results encrypted with the lake's KMS key)."
  value       = module.glue.athena_workgroup_name
}

output "athena_named_query_ids" {
  description = "Saved Athena queries in that workgroup, by name (latest_vehicle_positions, average_speed_per_hour, ...)."
  value       = module.glue.athena_named_query_ids
}

output "alarms_sns_topic_arn" {
  description = "SNS topic of every alarm; subscribe to it."
  value       = module.observability.sns_topic_arn
}

output "alerts_sns_topic_arn" {
  description = "SNS topic the alert forwarder publishes each alert to, once (KMS-encrypted); alert_email_subscriptions subscribes e-mail addresses, or subscribe by any means SNS supports."
  value       = module.alerts.sns_topic_arn
}

output "alert_ledger_table_name" {
  description = "DynamoDB table in which the alert forwarder records every alert id it notified (ALERT_DEDUPE_TABLE)."
  value       = module.alerts.ledger_table_name
}
