variable "name" {
  description = "Name prefix for the buckets and the key, for example \"smartcity-dev\". Bucket names add the account ID and region to be globally unique."
  type        = string
  default     = "smartcity"
}

variable "tags" {
  description = "Tags merged onto every resource."
  type        = map(string)
  default     = {}
}

variable "force_destroy" {
  description = "true lets terraform destroy delete buckets that still hold objects (every version). Keep false outside throw-away environments."
  type        = bool
  default     = false
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Days after which incomplete multipart uploads are aborted, in every bucket."
  type        = number
  default     = 7
}

variable "noncurrent_version_expiration_days" {
  description = "Days a noncurrent object version is kept, in every bucket (Spark's checkpoint renames, and Iceberg's compaction, snapshot expiry and orphan-file removal, leave one per deleted object)."
  type        = number
  default     = 30
}

variable "log_expiration_days" {
  description = "Days objects are kept in the logs bucket (EMR logs, Athena query results)."
  type        = number
  default     = 90
}
