output "log_group_name" {
  description = "Name of the CloudWatch log group."
  value       = aws_cloudwatch_log_group.this.name
}

output "log_group_arn" {
  description = "ARN of the CloudWatch log group (without the trailing :*)."
  value       = aws_cloudwatch_log_group.this.arn
}

output "kms_key_arn" {
  description = "ARN of the KMS key encrypting the log group; the caller may use it for its other data (ECR, MSK at rest)."
  value       = aws_kms_key.this.arn
}
