output "emr_service_role_arn" {
  description = "ARN of the EMR service role."
  value       = aws_iam_role.emr_service.arn
}

output "emr_ec2_role_arn" {
  description = "ARN of the role of the EMR instances, which the Spark job runs as."
  value       = aws_iam_role.emr_ec2.arn
}

output "emr_instance_profile_arn" {
  description = "ARN of the EMR EC2 instance profile."
  value       = aws_iam_instance_profile.this.arn
}

output "ecs_task_execution_role_arn" {
  description = "ARN of the ECS execution role (image pull, logs); separate from the task roles."
  value       = aws_iam_role.ecs_task_execution.arn
}

output "ecs_producer_task_role_arn" {
  description = "ARN of the producer task role (connect and write the sensor streams' topics)."
  value       = aws_iam_role.ecs_producer.arn
}

output "ecs_topics_admin_task_role_arn" {
  description = "ARN of the topics-admin task role (create, describe and alter the topics)."
  value       = aws_iam_role.ecs_topics_admin.arn
}

output "ecs_alert_forwarder_task_role_arn" {
  description = "ARN of the alert forwarder's task role (read the alerts topic with its group, publish to the alert topic, use the ledger table)."
  value       = aws_iam_role.ecs_alert_forwarder.arn
}

output "glue_optimizer_role_arn" {
  description = "ARN of the role the Glue table optimizers assume (the lake tables only); ready once its policy is attached."
  value       = aws_iam_role.glue_optimizer.arn
  depends_on  = [aws_iam_role_policy.glue_optimizer]
}
