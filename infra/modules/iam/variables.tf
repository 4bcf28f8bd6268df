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
  description = "Kafka topic per stream (stream name -> topic name, from the contracts' default_topic). The job reads them all, the topics task creates them all; topic_writers says who writes each."
  type        = map(string)
  default     = {}
}

variable "topic_writers" {
  description = "Who writes each stream's topic (stream -> the contract's produced_by): \"producer\" (the ECS producer) or \"job\" (the EMR job). Nothing else may write a topic."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for w in values(var.topic_writers) : contains(["producer", "job"], w)])
    error_message = "topic_writers values (the contracts' produced_by) must be \"producer\" or \"job\": any other value leaves a topic that nobody may write."
  }
}

variable "alert_forwarder" {
  description = "What the alert forwarder (python -m scripts.alerts forward) may touch: the Kafka topic it reads and its consumer group (names), the SNS topic it publishes to, its DynamoDB ledger table and the KMS key of both (ARNs, modules/alerts)."
  type = object({
    topic            = optional(string, "")
    consumer_group   = optional(string, "")
    sns_topic_arn    = optional(string, "")
    ledger_table_arn = optional(string, "")
    kms_key_arn      = optional(string, "")
  })
  default = {}
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
