output "sns_topic_arn" {
  description = "ARN of the SNS topic the forwarder publishes each alert to (ALERT_SNS_TOPIC_ARN)."
  value       = aws_sns_topic.this.arn
}

output "ledger_table_name" {
  description = "Name of the DynamoDB table the forwarder records notified alert ids in (ALERT_DEDUPE_TABLE)."
  value       = aws_dynamodb_table.this.name
}

output "ledger_table_arn" {
  description = "ARN of the ledger table, for the forwarder's IAM policy."
  value       = aws_dynamodb_table.this.arn
}

output "kms_key_arn" {
  description = "ARN of the KMS key encrypting the topic and the ledger table."
  value       = aws_kms_key.this.arn
}
