output "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the buckets, EMR local disks and Athena results."
  value       = aws_kms_key.this.arn
}

output "lake_bucket_name" {
  description = "Name of the lake bucket (tables/<table>/ for the Iceberg tables, checkpoints/)."
  value       = aws_s3_bucket.this["lake"].id
}

output "lake_bucket_arn" {
  description = "ARN of the lake bucket."
  value       = aws_s3_bucket.this["lake"].arn
}

output "artifacts_bucket_name" {
  description = "Name of the artifacts bucket (job code, jars, bootstrap scripts, EMR TLS certificates)."
  value       = aws_s3_bucket.this["artifacts"].id
}

output "artifacts_bucket_arn" {
  description = "ARN of the artifacts bucket."
  value       = aws_s3_bucket.this["artifacts"].arn
}

output "logs_bucket_name" {
  description = "Name of the logs bucket (EMR logs, Athena query results)."
  value       = aws_s3_bucket.this["logs"].id
}

output "logs_bucket_arn" {
  description = "ARN of the logs bucket."
  value       = aws_s3_bucket.this["logs"].arn
}
