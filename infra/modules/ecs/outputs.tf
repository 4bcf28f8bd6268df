output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "ecr_repository_url" {
  description = "URL of the ECR repository to push the producer image to (<account>.dkr.ecr.<region>.amazonaws.com/<name>)."
  value       = aws_ecr_repository.this.repository_url
}

output "ecr_repository_arn" {
  description = "ARN of the ECR repository."
  value       = aws_ecr_repository.this.arn
}

output "producer_task_definition_arn" {
  description = "ARN (with revision) of the producer task definition."
  value       = aws_ecs_task_definition.this["producer"].arn
}

output "topics_admin_task_definition_arn" {
  description = "ARN (with revision) of the topics-admin task definition, run once with `aws ecs run-task` to create the topics."
  value       = aws_ecs_task_definition.this["topics-admin"].arn
}

output "alert_forwarder_task_definition_arn" {
  description = "ARN (with revision) of the alert forwarder task definition (python -m scripts.alerts forward)."
  value       = aws_ecs_task_definition.this["alert-forwarder"].arn
}

output "alert_forwarder_service_name" {
  description = "Name of the alert forwarder ECS service."
  value       = aws_ecs_service.this["alert-forwarder"].name
}

output "alert_forwarder_security_group_id" {
  description = "ID of the alert forwarder's security group (MSK admits it on 9098)."
  value       = aws_security_group.this["alert-forwarder"].id
}

output "service_name" {
  description = "Name of the producer ECS service."
  value       = aws_ecs_service.this["producer"].name
}

output "task_security_group_id" {
  description = "ID of the tasks' security group (pass it to run-task; MSK admits it on 9098)."
  value       = aws_security_group.this["tasks"].id
}

output "log_group_name" {
  description = "Name of the CloudWatch log group of the tasks."
  value       = module.log_group.log_group_name
}
