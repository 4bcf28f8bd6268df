variable "name" {
  description = "Prefix of the topic, table and key names, for example \"smartcity-dev\"."
  type        = string
  default     = "smartcity"
}

variable "tags" {
  description = "Tags merged onto every resource."
  type        = map(string)
  default     = {}
}

variable "forwarder_role_arn" {
  description = "ARN of the alert forwarder's task role (modules/iam): the only principal that may publish to the topic, and the one the key policy lets use the key through SNS and DynamoDB."
  type        = string
  default     = ""
}

variable "email_subscriptions" {
  description = "E-mail addresses subscribed to the alert topic; each must follow the link in the confirmation e-mail SNS sends. Empty for none."
  type        = list(string)
  default     = []
}

variable "force_destroy" {
  description = "true turns off the ledger table's deletion protection, so terraform destroy may delete it."
  type        = bool
  default     = false
}
