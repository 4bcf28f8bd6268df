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
  description = "Streams to catalogue; each needs emr_jobs/contracts/<stream>.json. One table per stream over data/<stream>/, one <stream>_quarantine over quarantine/<stream>/."
  type        = list(string)
  default     = []
}

variable "lake_bucket_name" {
  description = "Name of the lake bucket."
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
  description = "ARN of the KMS key that encrypts Athena query results."
  type        = string
  default     = ""
}

variable "projection_start_date" {
  description = "First date (yyyy-MM-dd) Athena's partition projection considers; the range ends today (NOW)."
  type        = string
  default     = "2025-01-01"
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
