output "cluster_arn" {
  description = "ARN of the MSK cluster (arn:...:cluster/<name>/<uuid>); topic and group ARNs share its name and UUID."
  value       = aws_msk_cluster.this.arn
}

output "cluster_name" {
  description = "Name of the MSK cluster (the \"Cluster Name\" dimension of its CloudWatch metrics)."
  value       = aws_msk_cluster.this.cluster_name
}

output "cluster_bootstrap_brokers_sasl_iam" {
  description = "Comma-separated host:9098 list for clients using IAM authentication over TLS."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_iam
}

output "cluster_broker_count" {
  description = "Number of brokers; broker IDs run from 1 to this number."
  value       = aws_msk_cluster.this.number_of_broker_nodes
}

output "configuration_arn" {
  description = "ARN of the MSK configuration (server properties)."
  value       = aws_msk_configuration.this.arn
}

output "security_group_id" {
  description = "ID of the brokers' security group."
  value       = aws_security_group.this.id
}

output "kms_key_arn" {
  description = "ARN of the KMS key for data at rest and broker logs."
  value       = module.log_group.kms_key_arn
}

output "log_group_name" {
  description = "Name of the CloudWatch log group receiving broker logs."
  value       = module.log_group.log_group_name
}
