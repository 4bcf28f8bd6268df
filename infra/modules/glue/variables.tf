variable "name" {
  description = "Name of the Glue database and the Athena workgroup; letters, digits and underscores, for example \"smartcity_dev\"."
  type        = string
  default     = "smartcity"
}

variable "tags" {
  description = "Tags merged onto every resource."
  type        = map(string)
  default     = {}
}

variable "streams" {
  description = "Streams to catalogue; each needs emr_jobs/core/contracts/<stream>.json. Each gets an Iceberg table <stream> and <stream>_quarantine at s3://<lake bucket>/tables/<table>; one duplicates table serves all."
  type        = list(string)
  default     = []
}

variable "lake_bucket_name" {
  description = "Name of the lake bucket; the tables live under its tables/ prefix."
  type        = string
  default     = ""
}

variable "athena_results_bucket_name" {
  description = "Name of the bucket for Athena query results (the logs bucket)."
  type        = string
  default     = ""
}

variable "athena_results_prefix" {
  description = "Key prefix, without slashes, of Athena query results in that bucket."
  type        = string
  default     = "athena-results"
}

variable "kms_key_arn" {
  description = "ARN of the lake's KMS key, which also encrypts Athena query results (SSE_KMS)."
  type        = string
  default     = ""
}

variable "optimizer_role_arn" {
  description = "ARN of the role the Glue table optimizers assume (modules/iam: the lake's tables/ prefix, these tables, the lake key)."
  type        = string
  default     = ""
}

variable "maintenance" {
  description = "Glue table optimizers on every table: enabled; snapshot expiry after snapshot_retention_days (also how far back FOR TIMESTAMP AS OF reaches) keeping at least snapshots_to_retain (at least 10: the job's exactly-once guard reads recent snapshots); orphan files removed after orphan_file_retention_days. Compaction (bin-pack) needs no setting here: Glue sizes files from the table's write.target-file-size-bytes."
  type = object({
    enabled                    = optional(bool, true)
    snapshot_retention_days    = optional(number, 7)
    snapshots_to_retain        = optional(number, 10)
    orphan_file_retention_days = optional(number, 3)
  })
  default = {}

  validation {
    condition     = var.maintenance.snapshots_to_retain >= 10 && var.maintenance.snapshot_retention_days >= 1 && var.maintenance.orphan_file_retention_days >= 1
    error_message = "maintenance.snapshots_to_retain must be at least 10 (a replayed batch finds its own commit in recent snapshots; fewer risks writing it twice), and the retention days at least 1."
  }
}

variable "bytes_scanned_cutoff_per_query" {
  description = "Athena cancels a query in this workgroup after scanning this many bytes (a cost guard; at least 10485760)."
  type        = number
  default     = 10737418240
}

variable "force_destroy" {
  description = "true lets terraform destroy delete the Athena workgroup with its saved queries and history."
  type        = bool
  default     = false
}
