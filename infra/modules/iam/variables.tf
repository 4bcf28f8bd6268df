variable "name" {
  description = "Name prefix of the roles, for example \"smartcity-dev\"."
  type        = string
  default     = "smartcity"
}

variable "tags" {
  description = "Tags merged onto every resource."
  type        = map(string)
  default     = {}
}

variable "msk_cluster_arn" {
  description = "ARN of the MSK cluster (arn:<partition>:kafka:<region>:<account>:cluster/<name>/<uuid>). Topic and group ARNs are derived from it, so they carry the cluster UUID."
  type        = string
  default     = ""
}

variable "topics" {
  description = "Kafka topic per stream (stream name -> topic name, from the contracts' default_topic). The job reads them, the producer writes them, the topics task creates them."
  type        = map(string)
  default     = {}
}

variable "lake_bucket_arn" {
  description = "ARN of the lake bucket."
  type        = string
  default     = ""
}

variable "artifacts_bucket_arn" {
  description = "ARN of the artifacts bucket (job code, jars, bootstrap scripts, EMR TLS certificates)."
  type        = string
  default     = ""
}

variable "logs_bucket_arn" {
  description = "ARN of the logs bucket."
  type        = string
  default     = ""
}

variable "emr_log_prefix" {
  description = "Key prefix, without slashes, under which EMR writes cluster logs in the logs bucket."
  type        = string
  default     = "emr"
}

variable "s3_kms_key_arn" {
  description = "ARN of the KMS key of the buckets, also used for EMR local disks."
  type        = string
  default     = ""
}

variable "ecr_repository_name" {
  description = "Name of the ECR repository the ECS tasks pull the producer image from."
  type        = string
  default     = "smartcity"
}

variable "ecs_log_group_name" {
  description = "Name of the CloudWatch log group the ECS tasks write to."
  type        = string
  default     = "/ecs/smartcity"
}

variable "glue_database_name" {
  description = "Name of the Glue database of the Iceberg tables (modules/glue), for example \"smartcity_dev\"."
  type        = string
  default     = "smartcity"
}

variable "glue_table_names" {
  description = "Iceberg tables the job commits to and the optimizers maintain (modules/glue table_names): <stream>, <stream>_quarantine, duplicates. Each lives at s3://<lake bucket>/tables/<table>."
  type        = list(string)
  default     = []
}
