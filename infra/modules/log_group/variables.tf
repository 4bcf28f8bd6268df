variable "name" {
  description = "Name of the CloudWatch log group, for example \"/ecs/smartcity-dev\"."
  type        = string
  default     = "/smartcity/logs"
}

variable "tags" {
  description = "Tags merged onto every resource."
  type        = map(string)
  default     = {}
}

variable "retention_in_days" {
  description = "Days to keep the logs (a value CloudWatch accepts, for example 30, 90, 365)."
  type        = number
  default     = 365
}

variable "kms_key_description" {
  description = "Description of the KMS key: what it encrypts, for example \"smartcity-dev: VPC flow logs\"."
  type        = string
  default     = "CloudWatch log group"
}
